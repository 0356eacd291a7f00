// `kdistill export`: the student of a run (or a saved model file) as ONNX and/or safetensors,
// with config.json describing how to feed it (arch spec, classes, input shape, normalisation).
// Only the student's own module tree is written; a method's connectors and discriminators are
// not part of model.safetensors and so never reach an exported file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadModel, saveModel } from '../nn/safetensors.js';
import type { ZooModel } from '../nn/zoo/common.js';
import { BertEncoder, PAD_ID } from '../nn/zoo/transformer.js';
import { FASHION_MNIST_CLASSES, MNIST_CLASSES } from '../data/fashion-mnist.js';
import { randn, tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import { runExperimentOf } from '../report/data.js';
import type { Experiment } from '../config/experiment.js';
import { OnnxTeacher } from '../teachers/onnx.js';
import { CLASS_NAMES_KEY, NORMALIZE_KEY, recordedTraining } from '../teachers/sources.js';
import { DEFAULT_OPSET, exportOnnx } from './onnx.js';

export { exportOnnx, registerOnnxExporter, type ExportContext, type LayerExporter, type OnnxExportOptions } from './onnx.js';

export type ExportFormat = 'onnx' | 'safetensors';

/** config.json next to the exported files. */
export interface StudentConfig {
  format: 'kdistill-student';
  version: 1;
  name: string;
  /** The zoo spec: createModel(config.model) rebuilds the architecture. */
  model: Record<string, unknown>;
  classes: string[];
  /** Per-sample input shape (without the batch dimension); for arch 'bert', [maxLen]: pad ids with 0 to this length. */
  inputShape: number[];
  /** Element type of the ONNX input: float32 (images, features) or int64 (token ids, arch 'bert'). */
  inputDtype: 'float32' | 'int64';
  /**
   * float32 images: pixels are scaled to [0, 1] before normalisation; null for feature vectors
   * (e.g. CSV columns), which are fed as they are in the training file. int64 inputs: the token-id range (0 = padding).
   */
  inputRange: [number, number] | null;
  /** (x - mean) / std per channel, applied after scaling; null when the run used none. */
  normalization: { mean: number[]; std: number[] } | null;
  onnx: { file: string; input: string; output: string; opset: number } | null;
  safetensors: { file: string } | null;
  /** arch 'bert': the run's WordPiece tokenizer (src/text/tokenizer.ts), which made the token ids. */
  tokenizer?: string;
  /** The output is logits (apply softmax for probabilities). */
  output: 'logits';
  source: string;
}

export interface ExportOptions {
  out?: string;
  formats?: ExportFormat[];
  opset?: number;
  /** Check the ONNX file against kdistill with onnxruntime-node when it is installed (default true). */
  verify?: boolean;
}
export interface ExportResult {
  dir: string;
  files: string[];
  config: StudentConfig;
  /** Max |onnxruntime − kdistill| on random inputs, when verified. */
  maxAbsDiff: number | null;
  note?: string;
}

export function classesFor(model: ZooModel, e: Experiment | null, runDir: string | null): string[] {
  const n = Number(model.spec.numClasses);
  if (runDir) {
    for (const f of ['report.json', 'result.json']) {
      const rj = join(runDir, f);
      if (!existsSync(rj)) continue;
      try {
        const names = (JSON.parse(readFileSync(rj, 'utf8')) as { classNames?: string[] }).classNames;
        if (names && names.length === n) return names;
      } catch { /* fall through to the dataset's names */ }
    }
  }
  const ds = e?.data.dataset;
  if (ds === 'fashion-mnist' && n === FASHION_MNIST_CLASSES.length) return [...FASHION_MNIST_CLASSES];
  if (ds === 'mnist' && n === MNIST_CLASSES.length) return [...MNIST_CLASSES];
  return Array.from({ length: n }, (_, i) => String(i));
}

/** [0, 1] for image data (IDX images are scaled so); null for CSV features, read as written; a bare file: by its input shape. */
function pixelRange(model: ZooModel, e: Experiment | null): [number, number] | null {
  const image = e ? e.data.dataset === 'fashion-mnist' || e.data.dataset === 'mnist' : model.inputShape.length === 3;
  return image ? [0, 1] : null;
}

/** Exports `source` (a run folder or a model .safetensors file). */
export async function exportStudent(source: string, o: ExportOptions = {}): Promise<ExportResult> {
  const src = resolve(source);
  if (!existsSync(src)) throw new Error(`export: ${source} not found (give a run folder or a model .safetensors file)`);
  const isDir = statSync(src).isDirectory();
  const modelFile = isDir ? join(src, 'model.safetensors') : src;
  if (!existsSync(modelFile)) throw new Error(`export: ${source} has no model.safetensors yet (has the run finished?)`);
  const runDir = isDir ? src : existsSync(join(dirname(src), 'run.json')) ? dirname(src) : null;
  let e: Experiment | null = null;
  try {
    e = runDir ? runExperimentOf(runDir) : null;
  } catch {
    // The experiment copy only supplies class names and normalisation; the model file suffices.
  }
  const formats = o.formats ?? ['onnx', 'safetensors'];
  const bad = formats.filter((f) => f !== 'onnx' && f !== 'safetensors');
  if (bad.length || formats.length === 0) throw new Error(`export: --format takes onnx and/or safetensors, got '${formats.join(',')}'`);
  const out = resolve(o.out ?? (runDir ? join(runDir, 'export') : join(dirname(src), `${basename(src, '.safetensors')}-export`)));
  ensureDir(out, o.out !== undefined ? 'export: --out' : 'export');

  const { model, metadata } = loadModel(modelFile);
  try {
    model.eval();
    // The normalisation the model was trained with, as its run recorded it.
    const trained = recordedTraining(modelFile, metadata).normalize ?? e?.data.normalize;
    const name = e?.name ?? basename(runDir ?? src, '.safetensors');
    const opset = o.opset ?? DEFAULT_OPSET;
    const files: string[] = [];
    const tokens = model instanceof BertEncoder;
    const config: StudentConfig = {
      format: 'kdistill-student', version: 1, name, model: { ...model.spec },
      classes: classesFor(model, e, runDir), inputShape: [...model.inputShape],
      inputDtype: tokens ? 'int64' : 'float32', inputRange: tokens ? [PAD_ID, model.spec.vocabSize - 1] : pixelRange(model, e),
      normalization: tokens || !trained ? null : { mean: [...trained.mean], std: [...trained.std] }, onnx: null, safetensors: null, output: 'logits', source: modelFile,
    };
    if (formats.includes('onnx')) {
      const bytes = exportOnnx(model, { opset, metadata: { classes: JSON.stringify(config.classes), name } });
      const f = join(out, 'model.onnx');
      atomicWrite(f, bytes);
      files.push(f);
      config.onnx = { file: 'model.onnx', input: 'input', output: 'logits', opset };
    }
    if (formats.includes('safetensors')) {
      const f = join(out, 'model.safetensors');
      // The recorded inputs and classes travel with it, so the file also works as a teacher.
      saveModel(f, model, { name, [NORMALIZE_KEY]: JSON.stringify(config.normalization), ...(metadata[CLASS_NAMES_KEY] ? { [CLASS_NAMES_KEY]: metadata[CLASS_NAMES_KEY] } : {}) });
      files.push(f);
      config.safetensors = { file: 'model.safetensors' };
    }
    const tok = runDir ? join(runDir, 'tokenizer.json') : null;
    if (tokens && tok && existsSync(tok)) {
      const f = join(out, 'tokenizer.json');
      atomicWrite(f, readFileSync(tok));
      files.push(f);
      config.tokenizer = 'tokenizer.json';
    }
    const cf = join(out, 'config.json');
    atomicWrite(cf, JSON.stringify(config, null, 2) + '\n');
    files.push(cf);

    let maxAbsDiff: number | null = null, note: string | undefined;
    if (config.onnx && (o.verify ?? true)) {
      try {
        maxAbsDiff = model instanceof BertEncoder ? await verifyOnnxTokens(model, join(out, 'model.onnx')) : verifyOnnx(model, join(out, 'model.onnx'));
      } catch (err) {
        note = `not verified: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    return { dir: out, files, config, maxAbsDiff, ...(note ? { note } : {}) };
  } finally {
    model.dispose();
  }
}

/** Runs the file in onnxruntime-node and kdistill on the same random batch; returns max |diff|. */
export function verifyOnnx(model: ZooModel, file: string, batch = 4): number {
  // OnnxTeacher loads onnxruntime-node (optional) on first use and says how to install it.
  const t = new OnnxTeacher(file);
  try {
    return noGrad(() => tidy(() => {
      const x = randn([batch, ...model.inputShape]);
      const a = model.call(x).data<Float32Array>();
      const b = t.logits(x).data<Float32Array>();
      let d = 0;
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
      return d;
    }));
  } finally {
    t.dispose();
  }
}

/** Random token ids [batch, L] in 1..vocabSize-1, row i right-padded with i zeros (a fixed-seed LCG). */
export function randomTokenIds(batch: number, length: number, vocabSize: number, seed = 1): BigInt64Array {
  const ids = new BigInt64Array(batch * length);
  let s = seed >>> 0;
  for (let b = 0; b < batch; b++) {
    const real = Math.max(1, length - b);
    for (let j = 0; j < real; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      ids[b * length + j] = BigInt(1 + (s % Math.max(1, vocabSize - 1)));
    }
  }
  return ids;
}

/**
 * verifyOnnx for token-id models (int64 input, which OnnxTeacher does not take): runs the file
 * in onnxruntime-node's InferenceSession and kdistill on the same ids, some rows padded; max |diff|.
 */
export async function verifyOnnxTokens(model: BertEncoder, file: string, batch = 4): Promise<number> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch {
    throw new Error('onnxruntime-node is not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node)');
  }
  const L = model.inputShape[0]!;
  const ids = randomTokenIds(batch, L, model.spec.vocabSize);
  const want = noGrad(() => tidy(() => model.call(tensor(ids, { shape: [batch, L] })).data<Float32Array>()));
  const s = await ort.InferenceSession.create(readFileSync(file));
  try {
    const r = await s.run({ [s.inputNames[0]!]: new ort.Tensor('int64', ids, [batch, L]) });
    const got = r[s.outputNames[0]!]!.data as Float32Array;
    if (got.length !== want.length) throw new Error(`output has ${got.length} values, kdistill ${want.length}`);
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(want[i]! - got[i]!));
    return d;
  } finally {
    await s.release();
  }
}
