// `kdistill export run/ --format hf`: a text student as a Hugging Face model folder that
// transformers.js (and Hugging Face's tokenizers) load offline: config.json (model_type bert,
// id2label/label2id, problem_type), tokenizer.json + tokenizer_config.json, and onnx/model.onnx
// with Hugging Face's inputs (input_ids, attention_mask, token_type_ids; any length up to maxLen)
// and output logits. transformers.js's text-classification pipeline applies softmax, or sigmoid
// per label when problem_type is multi_label_classification, as kdistill eval does.
//
// Image students are refused: transformers.js's image-classification pipeline runs Hugging Face
// model types (ViT, ResNet of transformers, ...) whose weights and preprocessing kdistill's CNNs
// do not have; their ONNX file (--format onnx) runs directly in onnxruntime (README, "Export").
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadModel } from '../nn/safetensors.js';
import { BertEncoder } from '../nn/zoo/transformer.js';
import { hfBertConfig } from '../nn/huggingface.js';
import { runTokenizer } from '../text/prepare.js';
import { WordPieceTokenizer } from '../text/tokenizer.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import { runExperimentOf } from '../report/data.js';
import { classesFor } from './index.js';
import { DEFAULT_OPSET, exportOnnx } from './onnx.js';

export interface HfExportResult {
  dir: string;
  files: string[];
  labels: string[];
}

/** Writes the BERT student of `source` (a run folder or its model.safetensors) as a Hugging Face model folder. */
export function exportHf(source: string, o: { out?: string; opset?: number } = {}): HfExportResult {
  const src = resolve(source);
  if (!existsSync(src)) throw new Error(`export: ${source} not found (give a run folder or a model .safetensors file)`);
  const runDir = statSync(src).isDirectory() ? src : dirname(src);
  const modelFile = statSync(src).isDirectory() ? join(src, 'model.safetensors') : src;
  if (!existsSync(modelFile)) throw new Error(`export: ${source} has no model.safetensors yet (has the run finished?)`);
  const tokFile = runTokenizer(runDir);
  const { model } = loadModel(modelFile);
  try {
    if (!(model instanceof BertEncoder)) {
      throw new Error(`export --format hf: ${modelFile} is a ${String(model.spec.arch)} model; the Hugging Face layout is written for text classifiers (arch 'bert'). ` +
        "transformers.js's image pipelines run Hugging Face's own image models, not kdistill's: export with --format onnx and run the file in onnxruntime (see the README)");
    }
    if (!tokFile) throw new Error(`export --format hf: ${runDir} has no tokenizer.json: the token ids mean nothing without it`);
    const tok = WordPieceTokenizer.load(tokFile);
    if (tok.vocabSize !== model.spec.vocabSize) throw new Error(`export --format hf: ${tokFile} has ${tok.vocabSize} tokens, the model ${model.spec.vocabSize}`);
    let e = null;
    try {
      e = runExperimentOf(runDir);
    } catch {
      // Class names then come from result.json, else are the class indices.
    }
    const labels = classesFor(model, e, runDir);
    const out = resolve(o.out ?? join(runDir, 'export-hf'));
    ensureDir(out, o.out !== undefined ? 'export: --out' : 'export');
    ensureDir(join(out, 'onnx'), 'export');
    const maxLen = model.spec.maxLen;
    const files: [string, string | Uint8Array][] = [
      ['config.json', JSON.stringify(hfBertConfig(model.spec, labels), null, 2) + '\n'],
      ['tokenizer.json', JSON.stringify(tok.hfJSON(maxLen))],
      ['tokenizer_config.json', JSON.stringify({
        tokenizer_class: 'BertTokenizer', do_lower_case: tok.lowercase, model_max_length: maxLen, clean_up_tokenization_spaces: true,
        cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', ...(tok.maskId !== null ? { mask_token: '[MASK]' } : {}),
      }, null, 2) + '\n'],
      [join('onnx', 'model.onnx'), exportOnnx(model, { opset: o.opset ?? DEFAULT_OPSET, huggingfaceInputs: true })],
    ];
    for (const [f, data] of files) atomicWrite(join(out, f), data);
    return { dir: out, files: files.map(([f]) => join(out, f)), labels };
  } finally {
    model.dispose();
  }
}
