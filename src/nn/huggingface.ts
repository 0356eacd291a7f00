// BERT checkpoints in Hugging Face's layout (a folder with config.json + model.safetensors, as
// `save_pretrained` writes and the hub serves) as kdistill BertEncoders, and back. Hugging Face's
// BertModel is the same network as src/nn/zoo/transformer.ts (post-LN layers, erf GELU,
// LayerNorm eps from the config, tanh pooler on [CLS], dropout → linear classifier); only the
// parameter names differ, and kdistill adds token-type embeddings when the config has them.
// Every tensor of the file is either mapped, or one of the known heads a classifier does not use
// (next-sentence prediction, TinyBERT's fit_denses), or an error naming it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { loadSafetensors } from './safetensors.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { BertEncoder, initStudentFromTeacher, LN_EPS, type BertSpec } from './zoo/transformer.js';

/** The config.json fields kdistill reads (Hugging Face's BertConfig names). */
export interface HfBertConfig {
  model_type?: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size?: number;
  layer_norm_eps?: number;
  hidden_act?: string;
  hidden_dropout_prob?: number;
  pad_token_id?: number;
  position_embedding_type?: string;
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  problem_type?: string;
  [k: string]: unknown;
}

/** True when `dir` is a folder in Hugging Face's layout (it has config.json). */
export function isHfFolder(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'run.json'));
}

export function readHfConfig(dir: string): HfBertConfig {
  const f = join(dir, 'config.json');
  let c: HfBertConfig;
  try {
    c = JSON.parse(readFileSync(f, 'utf8')) as HfBertConfig;
  } catch (e) {
    throw new Error(`${f}: cannot read Hugging Face config: ${(e as Error).message}`);
  }
  const bad = (field: string, want: string): never => {
    throw new Error(`${f}: '${field}' must be ${want}, got ${JSON.stringify(c[field])}`);
  };
  // TinyBERT's general-distillation configs carry no model_type; they are BERTs.
  if (c.model_type !== undefined && c.model_type !== 'bert') bad('model_type', "'bert' (other model families are not mapped onto kdistill's BERT)");
  for (const k of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings']) {
    if (typeof c[k] !== 'number' || !Number.isInteger(c[k]) || (c[k] as number) < 1) bad(k, 'a positive integer');
  }
  if (c.hidden_size % c.num_attention_heads !== 0) bad('hidden_size', `divisible by num_attention_heads (${c.num_attention_heads})`);
  // 'gelu' is the erf GELU in transformers' ACT2FN, which kdistill's layers compute.
  if ((c.hidden_act ?? 'gelu') !== 'gelu') bad('hidden_act', "'gelu' (the erf form kdistill's BERT computes)");
  if ((c.position_embedding_type ?? 'absolute') !== 'absolute') bad('position_embedding_type', "'absolute'");
  // kdistill derives the attention mask from id 0; Hugging Face's BERT vocabularies put [PAD] there.
  if ((c.pad_token_id ?? 0) !== 0) bad('pad_token_id', '0 (kdistill masks id 0 as padding)');
  if (c.type_vocab_size !== undefined && (!Number.isInteger(c.type_vocab_size) || c.type_vocab_size < 0)) bad('type_vocab_size', 'an integer ≥ 0');
  if (c.layer_norm_eps !== undefined && !(c.layer_norm_eps > 0)) bad('layer_norm_eps', 'a number > 0');
  return c;
}

/** The labels of config.json's id2label in id order, when it names them all. */
export function hfLabels(c: HfBertConfig): string[] | undefined {
  if (!c.id2label) return undefined;
  const n = Object.keys(c.id2label).length;
  const names = Array.from({ length: n }, (_, i) => c.id2label![String(i)]);
  return names.every((x): x is string => typeof x === 'string') ? names : undefined;
}

/**
 * kdistill parameter name → Hugging Face name (BertForSequenceClassification / BertForMaskedLM,
 * without the 'bert.' prefix of the encoder part; `prefix` adds it).
 */
export function hfBertNames(spec: BertSpec, prefix = 'bert.'): Map<string, string> {
  const m = new Map<string, string>();
  const pair = (ours: string, theirs: string): void => {
    m.set(`${ours}.weight`, `${theirs}.weight`);
    m.set(`${ours}.bias`, `${theirs}.bias`);
  };
  const e = `${prefix}embeddings.`;
  m.set('embeddings.word.weight', `${e}word_embeddings.weight`);
  m.set('embeddings.position.weight', `${e}position_embeddings.weight`);
  if (spec.typeVocabSize) m.set('embeddings.tokenType.weight', `${e}token_type_embeddings.weight`);
  pair('embeddings.norm', `${e}LayerNorm`);
  for (let i = 0; i < spec.layers; i++) {
    const l = `${prefix}encoder.layer.${i}.`;
    for (const p of ['query', 'key', 'value']) pair(`layer${i}.attention.${p}`, `${l}attention.self.${p}`);
    pair(`layer${i}.attention.output`, `${l}attention.output.dense`);
    pair(`layer${i}.attnNorm`, `${l}attention.output.LayerNorm`);
    pair(`layer${i}.intermediate`, `${l}intermediate.dense`);
    pair(`layer${i}.output`, `${l}output.dense`);
    pair(`layer${i}.outNorm`, `${l}output.LayerNorm`);
  }
  pair('pooler.dense', `${prefix}pooler.dense`);
  pair('classifier', 'classifier');
  if (spec.mlm) {
    pair('mlm.dense', 'cls.predictions.transform.dense');
    pair('mlm.norm', 'cls.predictions.transform.LayerNorm');
    m.set('mlm.bias', 'cls.predictions.bias');
  }
  return m;
}

/** Tensors a Hugging Face BERT file may hold that a classifier does not use. */
const UNUSED = [
  /^(bert\.)?embeddings\.position_ids$/, // a buffer older transformers versions saved
  /^cls\.seq_relationship\./, // next-sentence prediction head
  /^cls\.predictions\./, // the MLM head, when the student has none (and its tied decoder always)
  /^fit_denses?\./, // TinyBERT's general-distillation projections
];

export interface HfBertLoadOptions {
  /** Classes of the head; default the file's classifier rows, else config.json's labels. */
  numClasses?: number;
  /** Multi-label head; default config.json's problem_type. */
  multiLabel?: boolean;
  /** Build and load the MLM head (cls.predictions) too. */
  mlm?: boolean;
  /** Fail when the file has no classifier (a teacher needs one; an initialisation does not). */
  requireClassifier?: boolean;
}

export interface HfBert {
  model: BertEncoder;
  config: HfBertConfig;
  /** config.json's id2label in id order, when complete. */
  classNames?: string[];
  /** Whether the classifier came from the file (else it is freshly initialised). */
  classifierLoaded: boolean;
}

/** Builds kdistill's BERT from a Hugging Face folder and loads its weights, every name checked. */
export function loadHfBert(dir: string, o: HfBertLoadOptions = {}): HfBert {
  const c = readHfConfig(dir);
  const file = join(dir, 'model.safetensors');
  if (!existsSync(file)) {
    const bin = existsSync(join(dir, 'pytorch_model.bin')) ? ' (it has pytorch_model.bin, a pickle kdistill does not read: convert it once in Python with ' +
      "`from safetensors.torch import save_file; import torch; save_file(torch.load('pytorch_model.bin'), 'model.safetensors')`)" : '';
    throw new Error(`${dir}: no model.safetensors${bin}`);
  }
  const { tensors } = loadSafetensors(file);
  try {
    const prefix = [...tensors.keys()].some((k) => k.startsWith('bert.')) ? 'bert.' : '';
    const cls = tensors.get('classifier.weight');
    const labels = hfLabels(c);
    const numClasses = o.numClasses ?? cls?.shape[0] ?? labels?.length;
    if (numClasses === undefined) throw new Error(`${dir}: no classifier in model.safetensors and no id2label in config.json: give the number of classes`);
    const classifierFits = cls !== undefined && cls.shape[0] === numClasses;
    if (o.requireClassifier && !classifierFits) {
      throw new Error(`${file}: ${cls ? `the classifier has ${cls.shape[0]} outputs, not ${numClasses}` : "no 'classifier.weight'"}: a teacher needs a fine-tuned classification head (BertForSequenceClassification)`);
    }
    const spec: BertSpec = {
      arch: 'bert', vocabSize: c.vocab_size, maxLen: c.max_position_embeddings, layers: c.num_hidden_layers, hidden: c.hidden_size,
      heads: c.num_attention_heads, ffn: c.intermediate_size, numClasses, multiLabel: o.multiLabel ?? c.problem_type === 'multi_label_classification',
      dropout: c.hidden_dropout_prob ?? 0.1, mlm: o.mlm ?? false,
      ...((c.type_vocab_size ?? 2) > 0 ? { typeVocabSize: c.type_vocab_size ?? 2 } : {}),
      ...((c.layer_norm_eps ?? LN_EPS) !== LN_EPS ? { layerNormEps: c.layer_norm_eps! } : {}),
    };
    const names = hfBertNames(spec, prefix);
    if (!classifierFits) {
      names.delete('classifier.weight');
      names.delete('classifier.bias');
    }
    const used = new Set(names.values());
    const unknown = [...tensors.keys()].filter((k) => !used.has(k) && !(k.startsWith('classifier.') && !classifierFits) && !UNUSED.some((r) => r.test(k)));
    if (unknown.length) throw new Error(`${file}: tensors not in a BERT (${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? `, … ${unknown.length} in all` : ''})`);
    const missing = [...names.values()].filter((k) => !tensors.has(k));
    if (missing.length) throw new Error(`${file}: missing BERT tensors ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? `, … ${missing.length} in all` : ''}`);
    const model = new BertEncoder(spec);
    try {
      const state = new Map<string, Tensor>();
      for (const [ours, theirs] of names) state.set(ours, tensors.get(theirs)!);
      // Non-strict: the classifier stays freshly initialised when the file has none.
      const own = model.stateDict();
      for (const [k, t] of state) {
        const want = own.get(k)!;
        if (want.shape.join() !== t.shape.join()) throw new Error(`${file}: '${names.get(k)}' has shape [${t.shape.join(', ')}], config.json implies [${want.shape.join(', ')}]`);
      }
      model.loadStateDict(state, false);
    } catch (e) {
      model.dispose();
      throw e;
    }
    model.eval();
    return { model, config: c, ...(labels && labels.length === numClasses ? { classNames: labels } : {}), classifierLoaded: classifierFits };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/**
 * A student's starting weights from a Hugging Face BERT (e.g. TinyBERT's general-distillation
 * checkpoint before task distillation): DistilBERT's copy (initStudentFromTeacher: checkpoint
 * layer `layers[i]` into student layer i, default the same layer when the depths agree, else every
 * other one; narrower students take leading slices). A student without token-type embeddings gets
 * the checkpoint's type-0 row added to its position embeddings, which is exact for single-segment
 * inputs. The classifier is copied only when the file has one of the student's width.
 */
export function initStudentFromHf(student: BertEncoder, dir: string, layers?: number[]): string[] {
  if (!existsSync(dir)) throw new Error(`Hugging Face checkpoint not found: ${dir}`);
  const S = student.spec;
  const hf = loadHfBert(dir, { numClasses: S.numClasses, multiLabel: S.multiLabel });
  try {
    const T = hf.model.spec;
    if (S.vocabSize !== T.vocabSize) {
      throw new Error(`${join(dir, 'config.json')}: vocab_size ${T.vocabSize}, but the student's tokenizer has ${S.vocabSize} tokens: tokenize with the checkpoint's own vocabulary (data.text.tokenizer: ${join(dir, 'vocab.txt')} or tokenizer.json)`);
    }
    const map = layers ?? (S.layers === T.layers ? Array.from({ length: S.layers }, (_, i) => i) : undefined);
    const fresh = hf.classifierLoaded ? null : new Map([...student.classifier.stateDict()].map(([k, t]) => [k, noGrad(() => t.clone())]));
    const copied = initStudentFromTeacher(student, hf.model, map);
    if (fresh) {
      // The checkpoint has no head of this width: keep the student's own initialisation.
      student.classifier.loadStateDict(fresh, true);
      for (const t of fresh.values()) t.dispose();
    }
    const typeRow = hf.model.embeddings.tokenType;
    if (typeRow && !student.embeddings.tokenType) {
      noGrad(() => tidy(() => { student.embeddings.position.weight.add_(typeRow.weight.select(0, 0).narrow(0, 0, S.hidden)); }));
    }
    return fresh ? copied.filter((n) => !n.startsWith('classifier.')) : copied;
  } finally {
    hf.model.dispose();
  }
}

/** config.json in Hugging Face's layout for a kdistill BERT (what transformers and transformers.js read). */
export function hfBertConfig(spec: BertSpec, labels: string[]): HfBertConfig {
  return {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: spec.vocabSize,
    hidden_size: spec.hidden,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    intermediate_size: spec.ffn,
    max_position_embeddings: spec.maxLen,
    type_vocab_size: spec.typeVocabSize ?? 0,
    layer_norm_eps: spec.layerNormEps ?? LN_EPS,
    hidden_act: 'gelu',
    hidden_dropout_prob: spec.dropout,
    attention_probs_dropout_prob: spec.dropout,
    initializer_range: 0.02,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    ...(spec.multiLabel ? { problem_type: 'multi_label_classification' } : { problem_type: 'single_label_classification' }),
  };
}
