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
import { calibrate, DEFAULT_QUANTIZE, isQuantized, prepareQuantization, quantizationOf, setQuantization } from '../nn/quantize.js';
import { ONNX_INSTALL_HINT } from '../teachers/onnx.js';
import { prepareData } from '../run/experiment.js';
import { take } from '../data/splits.js';
import { normalizeDataset } from '../data/augment.js';
import { predict } from '../train/evaluate.js';
import type { Dataset } from '../data/dataset.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Int8Agreement, Int8Report, WebInt8Report } from '../report/types.js';
import { OrtWeb } from './web.js';
import { latencyCounts, summarizeLatency, type LatencyOptions } from './latency.js';

export { exportOnnx, registerOnnxExporter, type ExportContext, type LayerExporter, type OnnxExportOptions } from './onnx.js';

export type { Int8Agreement, Int8Report, WebInt8Report } from '../report/types.js';

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
  /** The INT8 (QDQ) model: same input and output as onnx, inputs quantized inside the graph. */
  onnxInt8?: { file: string; input: string; output: string; opset: number; method: 'qat' | 'ptq' };
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
  /**
   * 'int8': also write model.int8.onnx (QDQ) from a quantization-aware run, or (with calibrate)
   * post-training-quantize a float run; needs a run folder (its data calibrates and verifies).
   */
  quantize?: 'int8';
  /** Post-training quantization: this many training samples through the observers (min-max). */
  calibrate?: number;
  /** Test samples the INT8 file is checked on (default 1000). */
  verifySamples?: number;
  /**
   * Also check and time both files in onnxruntime-web (wasm, one thread) in headless Chromium
   * (src/export/web.ts); needs playwright-core, onnxruntime-web and Chromium.
   */
  web?: boolean;
}

export interface ExportResult {
  dir: string;
  files: string[];
  config: StudentConfig;
  /** Max |onnxruntime − kdistill| on random inputs, when verified. */
  maxAbsDiff: number | null;
  note?: string;
  int8?: Int8Report;
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

  if (o.calibrate !== undefined && o.quantize !== 'int8') throw new Error('export: --calibrate applies to --quantize int8');
  if (o.quantize !== undefined && o.quantize !== 'int8') throw new Error(`export: --quantize takes int8, got '${String(o.quantize)}'`);
  if (o.web && o.quantize !== 'int8') throw new Error('export: --web checks and times the INT8 model in onnxruntime-web; it applies to --quantize int8');
  if (o.quantize && (!runDir || !e)) throw new Error(`export: --quantize int8 needs a run folder with its experiment (its data calibrates and checks the INT8 model); ${source} is not one`);
  const { model, metadata } = loadModel(modelFile);
  try {
    model.eval();
    // model.onnx is the float model: a QAT model's quantizers are off while it is written and
    // verified (model.safetensors keeps them, on, as trained).
    const qat = quantizationOf(model) !== null;
    if (qat && !isQuantized(model)) throw new Error(`export: ${modelFile} has quantizers that were never switched on (did the run stop before quantize.startEpoch?)`);
    const asFloat = async <T>(fn: () => T | Promise<T>): Promise<T> => {
      if (qat) setQuantization(model, false);
      try {
        return await fn();
      } finally {
        if (qat) setQuantization(model, true);
      }
    };
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
      const bytes = await asFloat(() => exportOnnx(model, { opset, metadata: { classes: JSON.stringify(config.classes), name } }));
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
        maxAbsDiff = await asFloat(() => (model instanceof BertEncoder ? verifyOnnxTokens(model, join(out, 'model.onnx')) : verifyOnnx(model, join(out, 'model.onnx'))));
      } catch (err) {
        note = `not verified: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    let int8: Int8Report | undefined;
    if (o.quantize) {
      int8 = await exportInt8(model, e!, runDir!, out, opset, { name, classes: config.classes }, o, qat);
      files.splice(files.length - 1, 0, int8.file, join(out, 'int8.json'));
      config.onnxInt8 = { file: basename(int8.file), input: 'input', output: 'logits', opset, method: int8.method };
      atomicWrite(cf, JSON.stringify(config, null, 2) + '\n');
    }
    return { dir: out, files, config, maxAbsDiff, ...(note ? { note } : {}), ...(int8 ? { int8 } : {}) };
  } finally {
    model.dispose();
  }
}

/**
 * model.int8.onnx: a QAT model as trained, or a float model calibrated on `calibrate` training
 * samples (min-max observers, eval mode); then checked on test samples and timed against model.onnx.
 */
export async function exportInt8(model: ZooModel, e: Experiment, runDir: string, out: string, opset: number, meta: { name: string; classes: string[] },
  o: ExportOptions, qat: boolean, layout: { file: string; huggingfaceInputs?: boolean; floatFile: string } = { file: 'model.int8.onnx', floatFile: 'model.onnx' }): Promise<Int8Report> {
  // A BERT's Linear layers are quantized; its token ids feed an Embedding, which stays float (as its attention products).
  const data = prepareData({ ...e, output: runDir });
  if (qat && o.calibrate !== undefined) throw new Error(`export: ${runDir} trained with quantize: (quantization-aware), so its observers already hold the ranges; drop --calibrate`);
  if (!qat) {
    if (o.calibrate === undefined) throw new Error(`export: ${runDir} is a float run: --quantize int8 needs --calibrate N (N training samples set the activation ranges: post-training quantization), or train it with quantize: in the experiment`);
    if (!Number.isInteger(o.calibrate) || o.calibrate < 1 || o.calibrate > data.train.size) throw new Error(`export: --calibrate must be an integer in 1..${data.train.size} (the training samples), got ${o.calibrate}`);
    // Min-max over the calibration set: each sample is seen once, so a moving average would weigh the last batches most.
    prepareQuantization(model, { ...DEFAULT_QUANTIZE, observer: 'minmax' });
    setQuantization(model, true);
    const calib = normalizeDataset(take(data.train, o.calibrate, e.seed), e.data.normalize);
    calibrate(() => predict((x) => model.call(x), calib));
  }
  try {
    const file = join(out, layout.file);
    const floatPath = join(out, layout.floatFile);
    const floatFile = existsSync(floatPath) ? floatPath : null;
    atomicWrite(file, exportOnnx(model, {
      opset, quantize: true, ...(layout.huggingfaceInputs ? { huggingfaceInputs: true } : {}),
      metadata: { classes: JSON.stringify(meta.classes), name: meta.name, quantization: qat ? 'qat' : 'ptq' },
    }));
    const report: Int8Report = {
      file, method: qat ? 'qat' : 'ptq', calibrationSamples: qat ? null : o.calibrate!,
      bytes: { float: floatFile ? statSync(floatFile).size : 0, int8: statSync(file).size }, latencyMs: null, check: null,
    };
    const test = data.test.size > (o.verifySamples ?? 1000) ? take(data.test, o.verifySamples ?? 1000, e.seed) : data.test;
    if (o.verify ?? true) {
      try {
        report.check = await checkInt8(model, file, test);
        const sample = test.x.subarray(0, test.sampleShape.reduce((a, b) => a * b, 1));
        if (floatFile) {
          const t = await timeBoth((f) => ortLatency(f, sample, [1, ...test.sampleShape]), floatFile, file);
          report.latencyMs = t.median;
          report.latencyP90Ms = t.p90;
          report.timing = { ...latencyCounts(), threads: NODE_THREADS };
        }
      } catch (err) {
        report.note = `not verified: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    // Asked for explicitly, so a browser that cannot start is an error, not a note.
    if (o.web) report.web = await checkInt8Web(model, file, floatFile, test);
    atomicWrite(join(out, 'int8.json'), JSON.stringify(report, null, 2) + '\n');
    return report;
  } finally {
    // A calibrated float model goes back to float (the caller disposes it; a QAT model stays as trained).
    if (!qat) setQuantization(model, false);
  }
}

/**
 * The INT8 file in onnxruntime-node against kdistill's fake-quantized model on the same samples:
 * with onnxruntime's graph optimisations off (the QDQ graph computed as written: the same
 * dequantized values as fake quantization) and on (as deployed: its QDQ transforms move some
 * activations across a rounding boundary, which changes a few samples' logits by more).
 */
export async function checkInt8(model: ZooModel, file: string, test: Dataset): Promise<NonNullable<Int8Report['check']>> {
  const ours = predictLogits((x) => model.call(x), test);
  const exact = compareLogits(ours, await ortLogits(file, test, 'disabled'), test.size);
  const deployed = compareLogits(ours, await ortLogits(file, test, 'all'), test.size);
  return { samples: test.size, ...exact, optimized: deployed };
}

/**
 * checkInt8 in onnxruntime-web (wasm, one thread) in headless Chromium, with model.onnx against
 * kdistill's float model (the quantizers off) and both files' batch-1 latency there.
 */
export async function checkInt8Web(model: ZooModel, file: string, floatFile: string | null, test: Dataset): Promise<WebInt8Report> {
  const ours = predictLogits((x) => model.call(x), test);
  let oursFloat: Float32Array | null = null;
  if (floatFile) {
    setQuantization(model, false);
    try {
      oursFloat = predictLogits((x) => model.call(x), test);
    } finally {
      setQuantization(model, true);
    }
  }
  const web = await OrtWeb.start();
  try {
    web.add('int8.onnx', readFileSync(file));
    if (floatFile) web.add('float.onnx', readFileSync(floatFile));
    const x = test.x.subarray(0, test.size * test.sampleShape.reduce((a, b) => a * b, 1));
    const exact = compareLogits(ours, await web.logits('int8.onnx', x, test.sampleShape, 'disabled'), test.size);
    const deployed = compareLogits(ours, await web.logits('int8.onnx', x, test.sampleShape, 'all'), test.size);
    const float = floatFile && oursFloat ? compareLogits(oursFloat, await web.logits('float.onnx', x, test.sampleShape, 'all'), test.size) : null;
    const sample = test.x.subarray(0, test.sampleShape.reduce((a, b) => a * b, 1)), dims = [1, ...test.sampleShape];
    const t = floatFile ? await timeBoth((f) => web.latency(f, sample, dims), 'float.onnx', 'int8.onnx') : null;
    return {
      version: web.version, latencyMs: t?.median ?? null, latencyP90Ms: t?.p90 ?? null, timing: t ? webTiming(web) : null,
      check: { samples: test.size, ...exact, optimized: deployed, float },
    };
  } finally {
    await web.close();
  }
}

/** What computes a batch-1 run in each runtime (the two are timed alike: one thread each). */
export const NODE_THREADS = 'onnxruntime-node, 1 intra-op thread (intraOpNumThreads 1, interOpNumThreads 1)';
export const WEB_THREADS = 'onnxruntime-web wasm (SIMD), 1 thread (env.wasm.numThreads 1, no proxy worker)';

/** The web timing record; without cross-origin isolation Chromium's 0.1 ms clock makes the latencies coarse. */
export function webTiming(web: Pick<OrtWeb, 'clock'>, o: LatencyOptions = {}): NonNullable<WebInt8Report['timing']> {
  return {
    ...latencyCounts(o), threads: WEB_THREADS, crossOriginIsolated: web.clock.crossOriginIsolated, clockResolutionMs: web.clock.resolutionMs,
    coarse: !web.clock.crossOriginIsolated,
  };
}

/** Median and p90 of the float and the INT8 file's per-run times. */
async function timeBoth(time: (file: string) => Promise<number[]>, floatFile: string, int8File: string): Promise<{ median: { float: number; int8: number }; p90: { float: number; int8: number } }> {
  const f = summarizeLatency(await time(floatFile)), q = summarizeLatency(await time(int8File));
  return { median: { float: f.median, int8: q.median }, p90: { float: f.p90, int8: q.p90 } };
}

function compareLogits(ours: Float32Array, theirs: Float32Array, n: number): { maxAbsDiff: number; outputStep: number; agreement: number; withinStep: number } {
  if (theirs.length !== ours.length) throw new Error(`onnxruntime gave ${theirs.length} logits, kdistill ${ours.length}`);
  let maxAbsDiff = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < ours.length; i++) {
    lo = Math.min(lo, ours[i]!);
    hi = Math.max(hi, ours[i]!);
  }
  const step = (hi - lo) / 255, c = ours.length / n;
  let same = 0, within = 0;
  for (let r = 0; r < n; r++) {
    let rowMax = 0;
    for (let j = r * c; j < (r + 1) * c; j++) rowMax = Math.max(rowMax, Math.abs(ours[j]! - theirs[j]!));
    maxAbsDiff = Math.max(maxAbsDiff, rowMax);
    if (rowMax <= step) within++;
    if (argmax(ours, r * c, c) === argmax(theirs, r * c, c)) same++;
  }
  return { maxAbsDiff, outputStep: step, agreement: same / n, withinStep: within / n };
}

async function ortModule(): Promise<typeof import('onnxruntime-node')> {
  try {
    return await import('onnxruntime-node');
  } catch {
    throw new Error(`onnxruntime-node is not installed (${ONNX_INSTALL_HINT})`);
  }
}

/** Logits of the whole dataset from the file in onnxruntime-node (one thread, batches of 250). */
async function ortLogits(file: string, d: Dataset, level: 'disabled' | 'all'): Promise<Float32Array> {
  const ort = await ortModule();
  const s = await ort.InferenceSession.create(readFileSync(file), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: level });
  try {
    const per = d.sampleShape.reduce((a, b) => a * b, 1);
    const parts: Float32Array[] = [];
    for (let i = 0; i < d.size; i += 250) {
      const n = Math.min(250, d.size - i);
      const r = await s.run(sessionFeeds(ort, s, d.x.subarray(i * per, (i + n) * per), [n, ...d.sampleShape]));
      parts.push(Float32Array.from(r[s.outputNames[0]!]!.data as Float32Array));
    }
    return concat(parts);
  } finally {
    await s.release();
  }
}

/**
 * A session's inputs for rows x: float32 as they are, or (a BERT student) token ids as int64 with,
 * for Hugging Face's inputs, attention_mask 1 where the id is not [PAD] (0) and token_type_ids 0.
 */
function sessionFeeds(ort: typeof import('onnxruntime-node'), s: import('onnxruntime-node').InferenceSession, x: Float32Array, dims: number[]): Record<string, import('onnxruntime-node').Tensor> {
  const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
  for (const m of s.inputMetadata) {
    if (!m.isTensor || m.type !== 'int64') {
      feeds[m.name] = new ort.Tensor('float32', Float32Array.from(x), dims);
      continue;
    }
    const v = m.name === 'attention_mask' ? BigInt64Array.from(x, (id) => (id !== PAD_ID ? 1n : 0n))
      : m.name === 'token_type_ids' ? new BigInt64Array(x.length) : BigInt64Array.from(x, (id) => BigInt(id));
    feeds[m.name] = new ort.Tensor('int64', v, dims);
  }
  return feeds;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function argmax(a: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[start + j]! > a[start + best]!) best = j;
  return best;
}

/** Row-major logits of the whole dataset, in batches of 250. */
function predictLogits(f: (x: Tensor) => Tensor, d: Dataset): Float32Array {
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  const parts: Float32Array[] = [];
  noGrad(() => {
    for (let s = 0; s < d.size; s += 250) {
      const n = Math.min(250, d.size - s);
      parts.push(tidy(() => f(tensor(d.x.subarray(s * per, (s + n) * per), { shape: [n, ...d.sampleShape] })).data<Float32Array>().slice()));
    }
  });
  return concat(parts);
}

/**
 * Batch-1 times of the file in onnxruntime-node in ms (one thread, graph optimisations on): as
 * OrtWeb.latency does in the browser, `runs` single runs after `warmup` untimed ones, each timed
 * on its own (process.hrtime, ns). Summarise with summarizeLatency.
 */
export async function ortLatency(file: string, sample: Float32Array, dims: number[], o: LatencyOptions = {}): Promise<number[]> {
  const { warmup, runs } = latencyCounts(o);
  const ort = await ortModule();
  const s = await ort.InferenceSession.create(readFileSync(file), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const feed = sessionFeeds(ort, s, sample, dims);
    for (let i = 0; i < warmup; i++) await s.run(feed);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await s.run(feed);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return times;
  } finally {
    await s.release();
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
