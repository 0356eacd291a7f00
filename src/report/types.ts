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
  experimentYaml: string;
}

export interface ReportData {
  title: string;
  generated: string;
  runs: RunReport[];
}
