// Bias adjustment of a classifier's output layer (Hinton, Vinyals & Dean 2015, §3): a student that
// never saw a class in its transfer set (every 3 omitted) predicts it too rarely, one that saw only
// some classes (only 7s and 8s) predicts those too often. Adding one offset b to the biases of the
// listed classes, z_c ← z_c + b for c in classes, fixes much of it. The paper picked b on the test
// set; here b is fitted on a validation split: the value at which the model predicts the listed
// classes (together) at the rate they occur in that split's labels.
import { noGrad } from '../tensor/autograd.js';
import { tensor } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { Dataset } from '../data/dataset.js';
import { Linear } from '../nn/layers.js';
import type { ZooModel } from '../nn/zoo/index.js';
import { argmaxAll, classificationMetrics, type ClassificationMetrics, type Predictions } from './metrics.js';
import { predict } from './evaluate.js';

export interface BiasFit {
  classes: number[];
  offset: number;
  /** Where the offset was fitted ('given' when it was not), and the rates there: in the labels, and predicted before and after. */
  fittedOn: string;
  trueRate?: number;
  predictedRateBefore?: number;
  predictedRateAfter?: number;
}

/** The output layer of a zoo model (its `headName` submodule), which must be a Linear with a bias. */
export function outputLayer(model: ZooModel): Linear {
  const head = model.namedModules().find(([n]) => n === model.headName)?.[1];
  if (!(head instanceof Linear) || !head.bias) throw new Error(`bias adjustment needs a linear output layer with a bias ('${model.headName}' of ${model.constructor.name} is not one)`);
  return head;
}

/** Adds `offset` to the output bias of each listed class, in place. */
export function adjustBias(model: ZooModel, classes: readonly number[], offset: number): void {
  const b = outputLayer(model).bias!;
  checkClasses(classes, b.shape[0]!);
  if (!Number.isFinite(offset)) throw new RangeError(`bias adjustment: the offset must be a finite number, got ${offset}`);
  const delta = new Float32Array(b.shape[0]!);
  for (const k of classes) delta[k] = offset;
  noGrad(() => tidy(() => { b.add_(tensor(delta, { shape: b.shape })); }));
}

function checkClasses(classes: readonly number[], c: number): void {
  if (classes.length === 0) throw new RangeError('bias adjustment: no classes given');
  const bad = classes.find((k) => !Number.isInteger(k) || k < 0 || k >= c);
  if (bad !== undefined) throw new RangeError(`bias adjustment: class ${bad} is not one of the model's ${c} classes (ids 0–${c - 1})`);
}

/** The fraction of rows whose argmax, after adding `offset` to the listed classes' scores, is one of them. */
export function predictedRate(p: Predictions, classes: readonly number[], offset: number): number {
  const inSet = new Uint8Array(p.c);
  for (const k of classes) inSet[k] = 1;
  let hits = 0;
  for (let r = 0; r < p.n; r++) {
    let best = -Infinity, arg = 0;
    for (let j = 0; j < p.c; j++) {
      const v = p.logProbs[r * p.c + j]! + (inSet[j] ? offset : 0);
      if (v > best) { best = v; arg = j; }
    }
    hits += inSet[arg]!;
  }
  return hits / p.n;
}

/**
 * The offset at which the listed classes are predicted at their rate in `labels`. The predicted
 * rate only grows with the offset, so bisection finds the smallest offset reaching the true rate
 * (to 1e-3 in logit units); a shift of log-probabilities by a constant per class is the same
 * shift of the logits, so predictions made once suffice.
 */
export function fitBiasOffset(p: Predictions, labels: Int32Array, classes: readonly number[]): { offset: number; trueRate: number } {
  checkClasses(classes, p.c);
  let inClasses = 0;
  for (let i = 0; i < p.n; i++) if (classes.includes(labels[i]!)) inClasses++;
  const trueRate = inClasses / p.n;
  let lo = -100, hi = 100;
  if (predictedRate(p, classes, lo) >= trueRate) return { offset: lo, trueRate };
  if (predictedRate(p, classes, hi) < trueRate) return { offset: hi, trueRate };
  while (hi - lo > 1e-3) {
    const mid = (lo + hi) / 2;
    if (predictedRate(p, classes, mid) >= trueRate) hi = mid; else lo = mid;
  }
  return { offset: hi, trueRate };
}

/** Fits the offset on `val` (labelled), applies it to the model, and says what it did. */
export function fitAndAdjustBias(model: ZooModel, val: Dataset, classes: number[]): BiasFit {
  if (!val.y) throw new Error(`bias adjustment: the validation split '${val.name}' has no labels`);
  const p = model.inEvalMode(() => predict((x) => model.call(x), val));
  const { offset, trueRate } = fitBiasOffset(p, val.y, classes);
  const before = predictedRate(p, classes, 0);
  adjustBias(model, classes, offset);
  return { classes, offset, fittedOn: `${val.name} (${val.size} samples)`, trueRate, predictedRateBefore: before, predictedRateAfter: predictedRate(p, classes, offset) };
}

export interface BiasAdjustmentRecord extends BiasFit {
  /** Test errors on the listed classes' samples, before and after, and test metrics before. */
  classErrorsBefore: number;
  classErrorsAfter: number;
  classSamples: number;
  testBefore: ClassificationMetrics;
}

/**
 * Applies a run's bias adjustment (a given offset, or 'fit' on `val`) to the model. Returns the
 * record for result.json (with the test metrics before) and the adjusted model's test predictions
 * and metrics. `o.before`: the model's test predictions before, when the caller already has them
 * (the trainer's last evaluation); `o.teacher`: the teacher's, for agreement.
 */
export function biasAdjustRun(model: ZooModel, spec: { classes: number[]; offset: number | 'fit' }, test: Dataset, val: Dataset | undefined,
  o: { before?: Predictions; teacher?: Predictions } = {}): { record: BiasAdjustmentRecord; after: Predictions; test: ClassificationMetrics } {
  if (!test.y) throw new Error('bias adjustment: the test set has no labels');
  const y = test.y;
  const before = o.before ?? model.inEvalMode(() => predict((x) => model.call(x), test));
  let fit: BiasFit;
  if (spec.offset === 'fit') {
    if (!val) throw new Error("biasAdjust.offset 'fit' needs a validation split (data.heldOut)");
    fit = fitAndAdjustBias(model, val, spec.classes);
  } else {
    adjustBias(model, spec.classes, spec.offset);
    fit = { classes: spec.classes, offset: spec.offset, fittedOn: 'given' };
  }
  const after = model.inEvalMode(() => predict((x) => model.call(x), test));
  const classErrors = (p: Predictions): number => {
    const pred = argmaxAll(p);
    let k = 0;
    for (let i = 0; i < p.n; i++) if (spec.classes.includes(y[i]!) && pred[i] !== y[i]) k++;
    return k;
  };
  let classSamples = 0;
  for (const v of y) if (spec.classes.includes(v)) classSamples++;
  const record = {
    ...fit, classErrorsBefore: classErrors(before), classErrorsAfter: classErrors(after), classSamples,
    testBefore: classificationMetrics(before, y, o.teacher),
  };
  return { record, after, test: classificationMetrics(after, y, o.teacher) };
}
