// Classification metrics computed from logits read back once per evaluation: accuracy, top-k,
// negative log-likelihood, expected calibration error, confusion matrix, teacher agreement.

export interface Predictions {
  /** Row-major [n, c] log-probabilities. */
  logProbs: Float32Array;
  n: number;
  c: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  top5?: number;
  nll: number;
  /** Expected calibration error, 15 equal-width confidence bins (Guo et al. 2017). */
  ece: number;
  /** Fraction of samples where the argmax equals the teacher's (students only). */
  agreement?: number;
}

function argmaxRow(p: Float32Array, off: number, c: number): number {
  let best = 0, bv = -Infinity;
  for (let j = 0; j < c; j++) if (p[off + j]! > bv) { bv = p[off + j]!; best = j; }
  return best;
}

export function argmaxAll(p: Predictions): Int32Array {
  const out = new Int32Array(p.n);
  for (let i = 0; i < p.n; i++) out[i] = argmaxRow(p.logProbs, i * p.c, p.c);
  return out;
}

export function topkAccuracy(p: Predictions, labels: Int32Array, k: number): number {
  let hit = 0;
  for (let i = 0; i < p.n; i++) {
    const off = i * p.c, y = labels[i]!, ly = p.logProbs[off + y]!;
    let higher = 0;
    for (let j = 0; j < p.c; j++) if (p.logProbs[off + j]! > ly) higher++;
    if (higher < k) hit++;
  }
  return hit / p.n;
}

export function expectedCalibrationError(p: Predictions, labels: Int32Array, bins = 15): number {
  const { conf, acc, count } = reliability(p, labels, bins);
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]! > 0) ece += (count[b]! / p.n) * Math.abs(acc[b]! - conf[b]!);
  return ece;
}

/** Per-bin mean confidence, accuracy and count: the data of a reliability diagram. */
export function reliability(p: Predictions, labels: Int32Array, bins = 15): { conf: number[]; acc: number[]; count: number[] } {
  const conf = new Array<number>(bins).fill(0), acc = new Array<number>(bins).fill(0), count = new Array<number>(bins).fill(0);
  for (let i = 0; i < p.n; i++) {
    const off = i * p.c, pred = argmaxRow(p.logProbs, off, p.c);
    const c = Math.exp(p.logProbs[off + pred]!);
    const b = Math.min(bins - 1, Math.floor(c * bins));
    conf[b]! += c;
    acc[b]! += pred === labels[i] ? 1 : 0;
    count[b]!++;
  }
  for (let b = 0; b < bins; b++) if (count[b]! > 0) { conf[b]! /= count[b]!; acc[b]! /= count[b]!; }
  return { conf, acc, count };
}

export function confusionMatrix(p: Predictions, labels: Int32Array): number[][] {
  const m = Array.from({ length: p.c }, () => new Array<number>(p.c).fill(0));
  const pred = argmaxAll(p);
  for (let i = 0; i < p.n; i++) m[labels[i]!]![pred[i]!]!++;
  return m;
}

export function classificationMetrics(p: Predictions, labels: Int32Array, teacher?: Predictions): ClassificationMetrics {
  if (labels.length !== p.n) throw new Error(`metrics: ${p.n} predictions but ${labels.length} labels`);
  const pred = argmaxAll(p);
  let correct = 0, nll = 0;
  for (let i = 0; i < p.n; i++) {
    if (pred[i] === labels[i]) correct++;
    nll -= p.logProbs[i * p.c + labels[i]!]!;
  }
  const m: ClassificationMetrics = { accuracy: correct / p.n, nll: nll / p.n, ece: expectedCalibrationError(p, labels) };
  if (p.c > 5) m.top5 = topkAccuracy(p, labels, 5);
  if (teacher) {
    const tp = argmaxAll(teacher);
    let agree = 0;
    for (let i = 0; i < p.n; i++) if (tp[i] === pred[i]) agree++;
    m.agreement = agree / p.n;
  }
  return m;
}
