// A text distillation experiment end to end: read a corpus, split it (seeded), train the
// WordPiece tokenizer on the training split, pre-train the teacher with MLM and fine-tune it,
// then train students of one architecture with several methods on the same budget, and report
// parameters, inference speed and quality in one table. The experiment-file schema of
// src/config covers image/CSV datasets only, so text experiments are described by this config.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { manualSeed } from '../tensor/torch.js';
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { createModel } from '../nn/zoo/index.js';
import { BertEncoder, initStudentFromTeacher } from '../nn/zoo/transformer.js';
import { saveModel } from '../nn/safetensors.js';
import { ModuleTeacher } from '../teachers/sources.js';
import { getMethod } from '../methods/registry.js';
import { resolveParams, type Params } from '../methods/method.js';
import { train, type BatchSource, type OptimizerSpec } from '../train/trainer.js';
import { predict } from '../train/evaluate.js';
import { argmaxAll } from '../train/metrics.js';
import { evaluateMultiLabel, type MultiLabelMetrics } from '../train/multilabel-metrics.js';
import { readDebtags, readSpamAssassin } from './corpora.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { MultiLabelBatches, multiLabelDataset, multiLabelSubset, textDataset, type MultiLabelDataset } from './data.js';
import { pretrainMlm } from './pretrain.js';

export interface ArchSpec { layers: number; hidden: number; heads: number; ffn: number }

export interface StudentRun {
  label: string;
  method: string;
  params?: Params;
  /** 'teacher': every other teacher layer (weight-selected when narrower); 'random': fresh init. */
  init?: 'teacher' | 'random';
}

export interface TextExperimentConfig {
  name: string;
  task: 'spam' | 'debtags';
  /** spam: the package directory (default: node resolution / KDISTILL_SPAM_ASSASSIN). */
  dataDir?: string;
  /** debtags: labels = this many most frequent tags; examples subsampled to maxExamples. */
  topTags?: number;
  excludeTags?: string[];
  maxExamples?: number;
  /** Fractions of the examples held out for validation and test. */
  valFraction: number;
  testFraction: number;
  seed: number;
  vocabSize: number;
  maxLen: number;
  /** Characters of each text the tokenizer is trained on (mails can be long; only maxLen tokens are used). */
  tokenizerChars?: number;
  teacher: ArchSpec & { mlmEpochs: number; epochs: number; lr: number };
  student: ArchSpec;
  studentEpochs: number;
  studentLr: number;
  batchSize: number;
  dropout: number;
  runs: StudentRun[];
}

export interface ResultRow {
  model: string;
  params: number;
  msPerSample: number;
  /** spam: accuracy, spam F1; debtags: micro/macro F1, subset accuracy, mAP at the chosen threshold. */
  quality: Record<string, number>;
  seconds: number;
}

interface Prepared {
  train: Dataset | MultiLabelDataset;
  val: Dataset | MultiLabelDataset;
  test: Dataset | MultiLabelDataset;
  numClasses: number;
  multiLabel: boolean;
  tokenizer: WordPieceTokenizer;
  describe: string;
}

function splitIndices(n: number, cfg: TextExperimentConfig): { train: number[]; val: number[]; test: number[] } {
  const perm = Array.from(new Rng(cfg.seed, 0x5e7).permutation(n));
  const nv = Math.round(n * cfg.valFraction), nt = Math.round(n * cfg.testFraction);
  return { val: perm.slice(0, nv), test: perm.slice(nv, nv + nt), train: perm.slice(nv + nt) };
}

export function prepareText(cfg: TextExperimentConfig, log: (s: string) => void): Prepared {
  const chars = cfg.tokenizerChars ?? 2000;
  if (cfg.task === 'spam') {
    const ex = readSpamAssassin(cfg.dataDir);
    const s = splitIndices(ex.length, cfg);
    const tok = WordPieceTokenizer.train(s.train.map((i) => ex[i]!.text.slice(0, chars)), { vocabSize: cfg.vocabSize });
    const mk = (idx: number[], part: string): Dataset => textDataset(tok, idx.map((i) => ex[i]!.text), idx.map((i) => ex[i]!.label),
      { maxLen: cfg.maxLen, numClasses: 2, name: `spam-assassin/${part}`, classNames: ['ham', 'spam'] });
    const spam = ex.filter((e) => e.label === 1).length;
    log(`SpamAssassin: ${ex.length} mails (${spam} spam), train/val/test ${s.train.length}/${s.val.length}/${s.test.length}; vocabulary ${tok.vocabSize}`);
    return { train: mk(s.train, 'train'), val: mk(s.val, 'val'), test: mk(s.test, 'test'), numClasses: 2, multiLabel: false, tokenizer: tok,
      describe: `SpamAssassin, ${ex.length} mails, ${s.train.length}/${s.val.length}/${s.test.length} train/val/test` };
  }
  const corpus = readDebtags({ topTags: cfg.topTags ?? 20, ...(cfg.excludeTags ? { exclude: cfg.excludeTags } : {}) });
  let ex = corpus.examples;
  if (cfg.maxExamples && ex.length > cfg.maxExamples) {
    const keep = new Rng(cfg.seed, 0x5ab).permutation(ex.length).subarray(0, cfg.maxExamples);
    ex = Array.from(keep).sort((a, b) => a - b).map((i) => ex[i]!);
  }
  const s = splitIndices(ex.length, cfg);
  const tok = WordPieceTokenizer.train(s.train.map((i) => ex[i]!.text), { vocabSize: cfg.vocabSize });
  const all = multiLabelDataset(tok, ex.map((e) => e.text), ex.map((e) => e.labels), { maxLen: cfg.maxLen, labelNames: corpus.labelNames, name: 'debtags' });
  const card = ex.reduce((a, e) => a + e.labels.length, 0) / ex.length;
  log(`debtags: ${corpus.examples.length} tagged packages, ${ex.length} used, ${corpus.labelNames.length} labels (${corpus.labelNames.join(', ')}), ` +
    `${card.toFixed(2)} labels per package; train/val/test ${s.train.length}/${s.val.length}/${s.test.length}; vocabulary ${tok.vocabSize}`);
  return {
    train: multiLabelSubset(all, s.train, 'debtags/train'), val: multiLabelSubset(all, s.val, 'debtags/val'), test: multiLabelSubset(all, s.test, 'debtags/test'),
    numClasses: corpus.labelNames.length, multiLabel: true, tokenizer: tok,
    describe: `Debian bookworm package names + short descriptions → ${corpus.labelNames.length} most frequent debtags, ${ex.length} packages, ${s.train.length}/${s.val.length}/${s.test.length} train/val/test, ${card.toFixed(2)} labels/package`,
  };
}

/** Test-set quality: single-label accuracy and positive-class F1, or the multi-label metrics. */
function quality(model: BertEncoder, d: Prepared): Record<string, number> {
  if (d.multiLabel) {
    const m: MultiLabelMetrics = evaluateMultiLabel(model, d.val as MultiLabelDataset, d.test as MultiLabelDataset);
    return { ...m };
  }
  model.eval();
  const p = predict((x) => model.call(x), d.test);
  model.train();
  const pred = argmaxAll(p), y = d.test.y!;
  let ok = 0, tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < p.n; i++) {
    if (pred[i] === y[i]) ok++;
    if (pred[i] === 1 && y[i] === 1) tp++;
    else if (pred[i] === 1) fp++;
    else if (y[i] === 1) fn++;
  }
  return { accuracy: ok / p.n, spamF1: (2 * tp) / Math.max(1, 2 * tp + fp + fn) };
}

/** Median ms per sample of batched inference (batch 64) over the test set, 3 passes. */
function msPerSample(model: BertEncoder, data: Dataset): number {
  model.eval();
  const L = data.sampleShape[0]!, n = Math.min(data.size, 512), times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    noGrad(() => {
      for (let s = 0; s < n; s += 64) {
        const m = Math.min(64, n - s);
        tidy(() => model.call(tensor(data.x.subarray(s * L, (s + m) * L), { shape: [m, L] })).data());
      }
    });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
  }
  model.train();
  return times.sort((a, b) => a - b)[1]!;
}

function batchSource(d: Prepared, batchSize: number, seed: number): BatchSource {
  if (d.multiLabel) return new MultiLabelBatches(d.train as MultiLabelDataset, batchSize, seed);
  const dl = new DataLoader(d.train, { batchSize, seed, prefetch: 'sync' });
  return { batchesPerEpoch: dl.numBatches, batches: (e, from) => dl.epochSync(e, { startBatch: from }) };
}

export async function runTextExperiment(cfg: TextExperimentConfig, outDir: string, log: (s: string) => void = console.log): Promise<ResultRow[]> {
  mkdirSync(outDir, { recursive: true });
  const d = prepareText(cfg, log);
  d.tokenizer.save(join(outDir, 'tokenizer.json'));
  const base = { arch: 'bert', vocabSize: d.tokenizer.vocabSize, maxLen: cfg.maxLen, numClasses: d.numClasses, multiLabel: d.multiLabel, dropout: cfg.dropout };
  const adamw = (lr: number): OptimizerSpec => ({ name: 'adamw', lr, weightDecay: 0.01 });
  const sample = tensor(d.val.x.subarray(0, 8 * cfg.maxLen), { shape: [8, cfg.maxLen] }).keep();
  const rows: ResultRow[] = [];
  const scratchMethod = d.multiLabel ? 'multilabel-kd' : 'scratch';
  const fit = async (model: BertEncoder, method: string, params: Params, teacher: ModuleTeacher | null, epochs: number, lr: number, label: string): Promise<number> => {
    const t0 = Date.now();
    const spec = getMethod(method);
    await train({
      student: model, teacher, method: spec.create(resolveParams(spec, params)), train: batchSource(d, cfg.batchSize, cfg.seed),
      numClasses: d.numClasses, epochs, optimizer: adamw(lr), schedule: { name: 'cosine' }, outDir: join(outDir, label), sample, label,
      ...(d.multiLabel ? {} : { evalSet: d.val }),
      onEpoch: (r) => log(`  ${label} epoch ${r.epoch + 1}/${epochs}: ${Object.entries(r.train).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}` +
        `${r.eval ? `; val accuracy ${(r.eval.accuracy * 100).toFixed(2)}%` : ''} (${r.seconds.toFixed(1)} s)`),
    });
    return (Date.now() - t0) / 1000;
  };
  const record = (label: string, model: BertEncoder, seconds: number): void => {
    const row: ResultRow = { model: label, params: model.numInferenceParameters(), msPerSample: NaN, quality: quality(model, d), seconds };
    rows.push(row);
    log(`${label}: ${row.params} parameters, ${Object.entries(row.quality).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}, ${seconds.toFixed(0)} s`);
  };

  // Teacher: MLM pre-training on the training texts, then fine-tuning on the labels.
  manualSeed(cfg.seed);
  const T = cfg.teacher;
  const teacher = createModel({ ...base, layers: T.layers, hidden: T.hidden, heads: T.heads, ffn: T.ffn, mlm: true }) as BertEncoder;
  const t0 = Date.now();
  pretrainMlm(teacher, d.train, { epochs: T.mlmEpochs, batchSize: cfg.batchSize, lr: T.lr, seed: cfg.seed,
    onEpoch: (e, l, s) => log(`  teacher MLM epoch ${e + 1}/${T.mlmEpochs}: loss ${l.toFixed(4)} (${s.toFixed(1)} s)`) });
  const mlmSeconds = (Date.now() - t0) / 1000;
  const ft = await fit(teacher, scratchMethod, d.multiLabel ? { alpha: 0 } : {}, null, T.epochs, T.lr, 'teacher');
  saveModel(join(outDir, 'teacher', 'model.safetensors'), teacher);
  record(`teacher ${T.layers}L-${T.hidden}H`, teacher, mlmSeconds + ft);
  const frozen = new ModuleTeacher(teacher, d.numClasses, 'fine-tuned teacher', 'teacher');

  const S = cfg.student;
  for (const run of cfg.runs) {
    manualSeed(cfg.seed + 1);
    const student = createModel({ ...base, layers: S.layers, hidden: S.hidden, heads: S.heads, ffn: S.ffn }) as BertEncoder;
    if (run.init === 'teacher') initStudentFromTeacher(student, teacher);
    const spec = getMethod(run.method);
    const secs = await fit(student, run.method, run.params ?? {}, spec.needsTeacher || run.method === 'multilabel-kd' && (run.params?.alpha ?? 0.5) !== 0 ? frozen : null,
      cfg.studentEpochs, cfg.studentLr, run.label);
    record(`student ${S.layers}L-${S.hidden}H ${run.label}`, student, secs);
    student.dispose();
  }
  sample.dispose();
  // Speed depends on the architecture only: measured once per architecture after training, both
  // in the same conditions (alternating, median of 5), so a busy moment during one run cannot
  // make one student look slower than its twin.
  const archs = { teacher: { layers: T.layers, hidden: T.hidden, heads: T.heads, ffn: T.ffn }, student: { layers: S.layers, hidden: S.hidden, heads: S.heads, ffn: S.ffn } };
  const speed: Record<string, number[]> = { teacher: [], student: [] };
  const nets = Object.fromEntries(Object.entries(archs).map(([k, a]) => [k, createModel({ ...base, ...a }) as BertEncoder]));
  for (let r = 0; r < 5; r++) for (const k of r % 2 ? ['student', 'teacher'] : ['teacher', 'student']) speed[k]!.push(msPerSample(nets[k]!, d.test));
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const row of rows) row.msPerSample = med(speed[row.model.startsWith('teacher') ? 'teacher' : 'student']!);
  for (const n of Object.values(nets)) n.dispose();
  writeFileSync(join(outDir, 'results.json'), JSON.stringify({ config: cfg, data: d.describe, rows }, null, 2));
  log(resultsTable(rows));
  return rows;
}

export function resultsTable(rows: ResultRow[]): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.quality)))];
  const head = ['model', 'params', 'ms/sample', ...keys, 'train s'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    lines.push(`| ${[r.model, r.params.toLocaleString('en-US'), r.msPerSample.toFixed(3), ...keys.map((k) => (r.quality[k] === undefined ? '' : k === 'threshold' ? r.quality[k]!.toFixed(2) : r.quality[k]!.toFixed(4))), r.seconds.toFixed(0)].join(' | ')} |`);
  }
  return lines.join('\n');
}
