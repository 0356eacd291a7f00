// The data a report page draws: plain JSON, embedded in report.html, cached per run as
// report.json and served as /data.json by `kdistill serve`. Both the static page and the live
// view draw from this one shape with the same client code (client.ts).

/** Per-step series, downsampled to bucket means so the page stays small for long runs. */
export interface StepCurves {
  step: number[];
  /** Loss terms by name ('loss' is the total the trainer minimised). */
  terms: Record<string, number[]>;
  lr: number[];
}
export interface EpochCurves {
  epoch: number[];
  /** Global step at the end of each epoch (to overlay epoch means on step curves). */
  step: number[];
  /** Epoch means of the loss terms. */
  train: Record<string, number[]>;
  /** Test metrics after each epoch (accuracy, top5, nll, ece, agreement). */
  eval: Record<string, number[]>;
}

export interface ModelRow {
  role: 'teacher' | 'student';
  name: string;
  /** Run the row belongs to (students) or the teacher's description. */
  source: string;
  accuracy: number | null;
  agreement: number | null;
  nll: number | null;
  ece: number | null;
  parameters: number | null;
  fileBytes: number | null;
  msPerSample: number | null;
  /** sha256 of the teacher weights: the same teacher in several runs is listed once. */
  checksum?: string;
}

export interface Reliability {
  model: string;
  conf: number[];
  acc: number[];
  count: number[];
}
export interface Confusion {
  model: string;
  matrix: number[][];
}

/** Multi-label runs: metrics at the decision threshold chosen on the validation split, per model and per label. */
export interface MultiLabelReport {
  labels: string[];
  /** Positives of each label in the test set. */
  support: number[];
  models: { model: string; threshold: number; microF1: number; macroF1: number; subsetAccuracy: number; mAP: number; f1: number[]; ap: number[] }[];
}

export interface Int8Agreement { maxAbsDiff: number; outputStep: number; agreement: number; withinStep: number }

/**
 * How batch-1 latency was timed: `warmup` untimed runs, then `runs` single runs each timed on its
 * own, on the same input (the first verified test sample) in both runtimes; `threads` says which
 * threads compute it (onnxruntime-node's intra-op pool, onnxruntime-web's wasm threads).
 */
export interface LatencyTiming { warmup: number; runs: number; threads: string }

/** onnxruntime-web (wasm backend, one thread) in headless Chromium: `kdistill export --quantize int8 --web`. */
export interface WebInt8Report {
  /** onnxruntime-web's version. */
  version: string;
  /** Batch-1 ms: the median of single timed runs (files written before the cross-origin-isolated page: of 50-run group means). */
  latencyMs: { float: number; int8: number } | null;
  /** Batch-1 ms: the 90th percentile of the same runs. */
  latencyP90Ms?: { float: number; int8: number } | null;
  /**
   * The page's clock: Chromium gives performance.now() 5 µs resolution only to a cross-origin-isolated
   * page (COOP same-origin + COEP require-corp), 100 µs otherwise; `coarse` marks the latencies then.
   */
  timing?: LatencyTiming & { crossOriginIsolated: boolean; clockResolutionMs: number; coarse: boolean } | null;
  /** As Int8Report.check, in the browser; float: model.onnx there against kdistill's float model. */
  check: Int8Agreement & { samples: number; optimized: Int8Agreement; float: Int8Agreement | null };
}

/**
 * What `kdistill export --quantize int8` measured, the INT8 file against the float one and against
 * kdistill's fake-quantized model (written as export/int8.json; the run's report shows it).
 */
export interface Int8Report {
  file: string;
  /** 'qat': the run trained with quantize:; 'ptq': a float run calibrated on calibrationSamples training samples. */
  method: 'qat' | 'ptq';
  calibrationSamples: number | null;
  bytes: { float: number; int8: number };
  /** Median ms per batch-1 run in onnxruntime-node (one thread), or null without it. */
  latencyMs: { float: number; int8: number } | null;
  /** The 90th percentile of the same runs. */
  latencyP90Ms?: { float: number; int8: number } | null;
  timing?: LatencyTiming | null;
  /**
   * On `samples` test samples, onnxruntime INT8 vs kdistill fake-quantized logits: max |diff|, one
   * output step (kdistill's logit range / 255), top-1 agreement, the share of samples whose logits
   * all lie within one step; with onnxruntime's graph optimisations off, and (optimized) on.
   */
  check: (Int8Agreement & { samples: number; optimized: Int8Agreement }) | null;
  /** With --web: the same in onnxruntime-web. */
  web?: WebInt8Report;
  note?: string;
}

export interface RunReport {
  name: string;
  dir: string;
  method: string;
  status: 'running' | 'finished';
  steps: StepCurves;
  epochs: EpochCurves;
  /** Filled once the model is saved; a running experiment has only its curves. */
  models: ModelRow[];
  confusion: Confusion[];
  reliability: Reliability[];
  classNames: string[];
  multiLabel?: MultiLabelReport;
  /** The INT8 export's numbers, when the run folder has export/int8.json. */
  int8?: Int8Report;
  /** Images the run learned from instead of real data: a data-free method's generator samples, a synthesised transfer set. */
  images?: ReportImage[];
  experimentYaml: string;
}

/** A PNG shown as it is (e.g. `samples.png` of a DAFL run or of `kdistill synthesize`), embedded so the page stays one file. */
export interface ReportImage {
  title: string;
  file: string;
  pngBase64: string;
}

export interface ReportData {
  title: string;
  generated: string;
  runs: RunReport[];
}
