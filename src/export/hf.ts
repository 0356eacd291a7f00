// `kdistill export run/ --format hf`: a text student as a Hugging Face model folder that
// transformers.js (and Hugging Face's tokenizers) load offline: config.json (model_type bert,
// id2label/label2id, problem_type), tokenizer.json + tokenizer_config.json, and onnx/model.onnx
// with Hugging Face's inputs (input_ids, attention_mask, token_type_ids; any length up to maxLen)
// and output logits. transformers.js's text-classification pipeline applies softmax, or sigmoid
// per label when problem_type is multi_label_classification, as kdistill eval does.
// With --quantize int8, onnx/model_quantized.onnx is the INT8 (QDQ) student, where transformers.js
// looks for it (`dtype: 'q8'`): a quantization-aware run's as trained, or a float run calibrated
// on --calibrate N training samples; model.onnx stays the float graph.
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
import { classesFor, exportInt8, type Int8Report } from './index.js';
import { isQuantized, quantizationOf } from '../nn/quantize.js';
import { DEFAULT_OPSET, exportOnnx } from './onnx.js';

export interface HfExportResult {
  dir: string;
  files: string[];
  labels: string[];
  /** --quantize int8: onnx/model_quantized.onnx and what its check measured. */
  int8?: Int8Report;
}

export interface HfExportOptions {
  out?: string;
  opset?: number;
  /** Also write the INT8 student as onnx/model_quantized.onnx (needs the run folder: its data calibrates and checks it). */
  quantize?: 'int8';
  /** Post-training quantization of a float run on this many training samples. */
  calibrate?: number;
  /** Check the INT8 file against kdistill's fake-quantized model in onnxruntime-node (default true). */
  verify?: boolean;
  verifySamples?: number;
}

/** Writes the BERT student of `source` (a run folder or its model.safetensors) as a Hugging Face model folder. */
export async function exportHf(source: string, o: HfExportOptions = {}): Promise<HfExportResult> {
  const src = resolve(source);
  if (!existsSync(src)) throw new Error(`export: ${source} not found (give a run folder or a model .safetensors file)`);
  const runDir = statSync(src).isDirectory() ? src : dirname(src);
  const modelFile = statSync(src).isDirectory() ? join(src, 'model.safetensors') : src;
  if (!existsSync(modelFile)) throw new Error(`export: ${source} has no model.safetensors yet (has the run finished?)`);
  const tokFile = runTokenizer(runDir);
  const { model } = loadModel(modelFile);
  try {
    // Eval mode: a QAT model's observers must not move while the INT8 file is written and checked.
    model.eval();
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
    const qat = quantizationOf(model) !== null;
    if (qat && !isQuantized(model)) throw new Error(`export: ${modelFile} has quantizers that were never switched on (did the run stop before quantize.startEpoch?)`);
    if (o.calibrate !== undefined && o.quantize !== 'int8') throw new Error('export: --calibrate applies to --quantize int8');
    if (o.quantize && !e) throw new Error(`export: --quantize int8 needs a run folder with its experiment (its data calibrates and checks the INT8 model); ${source} is not one`);
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
    const written = files.map(([f]) => join(out, f));
    if (!o.quantize) return { dir: out, files: written, labels };
    const opset = o.opset ?? DEFAULT_OPSET;
    const int8 = await exportInt8(model, e!, runDir, out, opset, { name: e!.name, classes: labels }, o, qat,
      { file: join('onnx', 'model_quantized.onnx'), floatFile: join('onnx', 'model.onnx'), huggingfaceInputs: true });
    return { dir: out, files: [...written, int8.file], labels, int8 };
  } finally {
    model.dispose();
  }
}
