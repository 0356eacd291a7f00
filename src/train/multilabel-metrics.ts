// Metrics for multi-label classification, from per-label scores (sigmoid probabilities) and
// multi-hot targets, both row-major [n, c]:
//  - micro F1 (pooled counts), macro F1 (mean of per-label F1; a label with no positives and no
//    predictions counts as F1 = 1, as scikit-learn's zero_division=1 would), subset accuracy
//    (exact match of the whole label set), Hamming loss;
//  - mean average precision: per-label AP (precision averaged at each positive's rank, the
//    non-interpolated definition of scikit-learn's average_precision_score), averaged over labels
//    with at least one positive;
//  - a global decision threshold chosen on held-out data to maximise micro F1.
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

export interface MultiLabelScores {
  /** Row-major [n, c] probabilities. */
  probs: Float32Array;
  n: number;
  c: number;
}

export interface MultiLabelMetrics {
  threshold: number;
  microF1: number;
  macroF1: number;
  subsetAccuracy: number;
  hammingLoss: number;
  mAP: number;
}

function check(s: MultiLabelScores, targets: Float32Array): void {
  if (targets.length !== s.n * s.c || s.probs.length !== s.n * s.c) {
    throw new RangeError(`multi-label metrics: ${s.n}×${s.c} scores need ${s.n * s.c} targets and probabilities, got ${targets.length} and ${s.probs.length}`);
  }
}

const f1 = (tp: number, fp: number, fn: number): number => (tp + fp + fn === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn));

/** Per-label true/false positive and false negative counts at `threshold`, and exact-match / wrong-cell counts. */
function labelCounts(s: MultiLabelScores, targets: Float32Array, threshold: number): { tp: Float64Array; fp: Float64Array; fn: Float64Array; exact: number; wrong: number } {
  check(s, targets);
  const tp = new Float64Array(s.c), fp = new Float64Array(s.c), fn = new Float64Array(s.c);
  let exact = 0, wrong = 0;
  for (let i = 0; i < s.n; i++) {
    let ok = true;
    for (let j = 0; j < s.c; j++) {
      const k = i * s.c + j, pred = s.probs[k]! >= threshold, pos = targets[k]! > 0.5;
      if (pred && pos) tp[j]!++;
      else if (pred) { fp[j]!++; ok = false; wrong++; }
      else if (pos) { fn[j]!++; ok = false; wrong++; }
    }
    if (ok) exact++;
  }
  return { tp, fp, fn, exact, wrong };
}

/** Thresholded metrics at `threshold` (a label is predicted when its probability is ≥ it). */
export function thresholdMetrics(s: MultiLabelScores, targets: Float32Array, threshold: number): Omit<MultiLabelMetrics, 'mAP'> {
  const { tp, fp, fn, exact, wrong } = labelCounts(s, targets, threshold);
  let TP = 0, FP = 0, FN = 0, macro = 0;
  for (let j = 0; j < s.c; j++) {
    TP += tp[j]!; FP += fp[j]!; FN += fn[j]!;
    macro += f1(tp[j]!, fp[j]!, fn[j]!);
  }
  return { threshold, microF1: f1(TP, FP, FN), macroF1: macro / s.c, subsetAccuracy: exact / s.n, hammingLoss: wrong / (s.n * s.c) };
}

/** Average precision of one label: mean over its positives of the precision at their rank (ties broken pessimistically). */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  idx.sort((a, b) => scores[b]! - scores[a]! || Number(positives[a]) - Number(positives[b]));
  let hits = 0, sum = 0;
  idx.forEach((i, r) => {
    if (positives[i]) { hits++; sum += hits / (r + 1); }
  });
  return hits === 0 ? NaN : sum / hits;
}

/** Average precision of every label (NaN for a label without positives). */
function labelAveragePrecisions(s: MultiLabelScores, targets: Float32Array): number[] {
  check(s, targets);
  const aps: number[] = [];
  for (let j = 0; j < s.c; j++) {
    const sc = new Float32Array(s.n), pos = new Array<boolean>(s.n);
    for (let i = 0; i < s.n; i++) { sc[i] = s.probs[i * s.c + j]!; pos[i] = targets[i * s.c + j]! > 0.5; }
    aps.push(averagePrecision(sc, pos));
  }
  return aps;
}

/** Mean of the per-label average precision over labels with at least one positive. */
export function meanAveragePrecision(s: MultiLabelScores, targets: Float32Array): number {
  const aps = labelAveragePrecisions(s, targets).filter((ap) => !Number.isNaN(ap));
  return aps.length ? aps.reduce((a, b) => a + b, 0) / aps.length : NaN;
}

/** Per label: F1 at `threshold`, average precision (NaN without positives) and the number of positives. */
export function perLabelMetrics(s: MultiLabelScores, targets: Float32Array, threshold: number): { f1: number[]; ap: number[]; support: number[] } {
  const { tp, fp, fn } = labelCounts(s, targets, threshold);
  return {
    f1: Array.from({ length: s.c }, (_, j) => f1(tp[j]!, fp[j]!, fn[j]!)),
    ap: labelAveragePrecisions(s, targets),
    support: Array.from({ length: s.c }, (_, j) => tp[j]! + fn[j]!),
  };
}

/** The threshold in {0.05, 0.10, …, 0.95} maximising micro F1 on held-out data (ties: the one nearest 0.5). */
export function chooseThreshold(s: MultiLabelScores, targets: Float32Array): number {
  let best = 0.5, bestF = -1;
  for (let k = 1; k <= 19; k++) {
    const t = k / 20, f = thresholdMetrics(s, targets, t).microF1;
    if (f > bestF + 1e-12 || (Math.abs(f - bestF) <= 1e-12 && Math.abs(t - 0.5) < Math.abs(best - 0.5))) { best = t; bestF = f; }
  }
  return best;
}

export function multiLabelMetrics(s: MultiLabelScores, targets: Float32Array, threshold = 0.5): MultiLabelMetrics {
  return { ...thresholdMetrics(s, targets, threshold), mAP: meanAveragePrecision(s, targets) };
}

/**
 * Sigmoid probabilities over id rows [n, L], batched, without gradients: of a model (in eval mode,
 * its mode restored after) or of a forward function (e.g. a teacher's logits).
 */
export function predictMultiLabel(model: Module | ((x: Tensor) => Tensor), x: Float32Array, sampleShape: number[], batchSize = 256): MultiLabelScores {
  const per = sampleShape.reduce((a, b) => a * b, 1), n = x.length / per;
  if (typeof model !== 'function') return model.inEvalMode(() => predictMultiLabel((t) => model.call(t), x, sampleShape, batchSize));
  let probs: Float32Array | null = null, c = 0;
  noGrad(() => {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      const p = tidy(() => model(tensor(x.subarray(s * per, (s + m) * per), { shape: [m, ...sampleShape] })).sigmoid().data<Float32Array>());
      if (!probs) { c = p.length / m; probs = new Float32Array(n * c); }
      probs.set(p, s * c);
    }
  });
  return { probs: probs ?? new Float32Array(0), n, c };
}

type Rows = { x: Float32Array; targets: Float32Array; sampleShape: number[] };

/** Chooses the threshold on `held` (validation) and reports the metrics on `test` at it. */
export function evaluateMultiLabel(model: Module | ((x: Tensor) => Tensor), held: Rows, test: Rows): MultiLabelMetrics {
  return evaluateMultiLabelPerLabel(model, held, test).metrics;
}

/** Multi-label scores on a test set, overall and per label. */
export interface MultiLabelEvaluation { metrics: MultiLabelMetrics; perLabel: { f1: number[]; ap: number[]; support: number[] } }

/** evaluateMultiLabel plus the per-label F1 / AP / support on `test` (for reports). */
export function evaluateMultiLabelPerLabel(model: Module | ((x: Tensor) => Tensor), held: Rows, test: Rows): MultiLabelEvaluation {
  const threshold = chooseThreshold(predictMultiLabel(model, held.x, held.sampleShape), held.targets);
  const s = predictMultiLabel(model, test.x, test.sampleShape);
  return { metrics: multiLabelMetrics(s, test.targets, threshold), perLabel: perLabelMetrics(s, test.targets, threshold) };
}

