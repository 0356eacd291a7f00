// One specialist (Hinton et al. 2015, section 5.2): a copy of the generalist whose head predicts
// the classes of its subset S plus one "dustbin" class standing for every class not in S. It is
// fine-tuned on data where a fraction h (the paper: half) of the examples come from S and the rest
// are drawn from the whole training set, and its dustbin logit is corrected afterwards for that
// over-sampling.
import { noGrad } from '../../tensor/autograd.js';
import { tidy } from '../../tensor/scope.js';
import { cat, tensor } from '../../tensor/factories.js';
import type { Tensor } from '../../tensor/tensor.js';
import { createModel, type ZooModel } from '../../nn/zoo/index.js';
import { Rng } from '../../data/rng.js';

/**
 * The specialist's output index of each of the C classes: its position in the (sorted) subset,
 * or |S| (the dustbin) for a class outside it.
 */
export function dustbinMap(subset: readonly number[], numClasses: number): Int32Array {
  const map = new Int32Array(numClasses).fill(subset.length);
  subset.forEach((c, i) => { map[c] = i; });
  return map;
}

/** Labels of the C-class problem as the specialist's |S|+1-class labels. */
export function mapLabels(labels: ArrayLike<number>, map: Int32Array): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = map[labels[i]!]!;
  return out;
}

/** A distribution over the C classes seen by a specialist: its subset's entries, then the dustbin's summed mass. */
export function mapDistribution(q: readonly number[], map: Int32Array): number[] {
  const k = Math.max(...map);
  const out = new Array<number>(k + 1).fill(0);
  q.forEach((v, c) => { out[map[c]!]! += v; });
  return out;
}

/**
 * The log over-sampling factor added to the dustbin logit after training.
 *
 * With π_S the share of the subset's classes in the natural (training-set) label distribution and
 * h the share of each specialist batch drawn from the subset (the rest drawn from all data), the
 * specialist sees its subset with probability h + (1−h)π_S and the dustbin with (1−h)(1−π_S).
 * The odds of "some class of S" against "dustbin" are therefore inflated by
 *   f = [(h + (1−h)π_S) / ((1−h)(1−π_S))] / [π_S / (1−π_S)] = (h + (1−h)π_S) / ((1−h) π_S),
 * uniformly over the classes of S (the relative frequencies within S are unchanged). A model
 * trained on a prior-shifted set learns p_train(y|x) ∝ p(y|x)·π_train(y)/π(y), so adding log f to the
 * dustbin logit (equivalently −log f to every subset logit) restores the natural posterior. For
 * h = ½: f = (1 + π_S)/π_S; on Fashion-MNIST with a 4-class subset (π_S = 0.4) f = 3.5.
 */
export function dustbinCorrection(subsetPrior: number, subsetFraction = 0.5): number {
  if (!(subsetPrior > 0 && subsetPrior < 1)) throw new RangeError(`dustbinCorrection: the subset's prior must be in (0, 1), got ${subsetPrior}`);
  if (!(subsetFraction >= 0 && subsetFraction < 1)) throw new RangeError(`dustbinCorrection: the subset fraction must be in [0, 1), got ${subsetFraction}`);
  const h = subsetFraction;
  return Math.log((h + (1 - h) * subsetPrior) / ((1 - h) * subsetPrior));
}

/** Share of samples whose label lies in the subset. */
export function subsetPrior(labels: ArrayLike<number>, subset: readonly number[]): number {
  const inS = new Set(subset);
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (inS.has(labels[i]!)) n++;
  return n / labels.length;
}

/**
 * The rows of one specialist epoch: round(h·n) drawn from the subset's rows, the rest uniformly
 * from all rows (so they can also land in the subset, as the paper's "half at random"), shuffled.
 * Within each part draws are without replacement while possible (a permutation, cycled).
 */
export function specialistRows(labels: ArrayLike<number>, subset: readonly number[], n: number, o: { subsetFraction?: number; seed?: number; epoch?: number } = {}): Int32Array {
  const inS = new Set(subset);
  const inRows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (inS.has(labels[i]!)) inRows.push(i);
  if (inRows.length === 0) throw new Error(`specialistRows: no training sample has a class of the subset [${subset.join(', ')}]`);
  const rng = new Rng(o.seed ?? 0, 0x5bec1a, o.epoch ?? 0);
  const nIn = Math.round((o.subsetFraction ?? 0.5) * n);
  const out = new Int32Array(n);
  // pick(i) maps a permutation entry to a row: the subset's rows, or every row.
  const draw = (size: number, pick: (i: number) => number, count: number, offset: number): void => {
    let perm = rng.permutation(size), at = 0;
    for (let i = 0; i < count; i++) {
      if (at === perm.length) { perm = rng.permutation(size); at = 0; }
      out[offset + i] = pick(perm[at++]!);
    }
  };
  draw(inRows.length, (i) => inRows[i]!, nIn, 0);
  draw(labels.length, (i) => i, n - nIn, nIn);
  return rng.shuffle(out);
}

/**
 * A specialist built from the generalist: the same architecture and weights, with the head
 * (`model.headName`, a linear layer) replaced by |S|+1 outputs:
 *   row i < |S|: the generalist's row of class S[i] (weights and bias), so the specialist starts
 *     with the generalist's logits for its classes;
 *   dustbin row: the mean of the other classes' rows, bias = their mean bias + log(C − |S|).
 *     The dustbin should score log Σ_{c∉S} exp(z_c); a linear layer cannot express a logsumexp, and
 *     the mean row plus log(count) equals it exactly when those logits are equal and is the
 *     first-order (mean-logit) approximation otherwise. Fine-tuning takes it from there.
 */
export function createSpecialist(generalist: ZooModel, subset: readonly number[]): ZooModel {
  const C = Number(generalist.spec.numClasses);
  const head = generalist.headName;
  const state = generalist.stateDict();
  const w = state.get(`${head}.weight`), b = state.get(`${head}.bias`);
  if (!w || !b || w.ndim !== 2 || w.shape[0] !== C) throw new Error(`createSpecialist: the generalist's head '${head}' is not a linear layer with ${C} outputs and a bias`);
  const spec = { ...generalist.spec, numClasses: subset.length + 1 };
  const model = createModel(spec);
  const inS = new Set(subset);
  const others = Array.from({ length: C }, (_, c) => c).filter((c) => !inS.has(c));
  noGrad(() => tidy(() => {
    const rows = (ids: number[]): Tensor => tensor(BigInt64Array.from(ids.map(BigInt)), { shape: [ids.length], dtype: 'int64' });
    const sw = w.indexSelect(0, rows([...subset])), sb = b.indexSelect(0, rows([...subset]));
    const ow = w.indexSelect(0, rows(others)).mean({ dim: 0, keepdim: true });
    const ob = b.indexSelect(0, rows(others)).mean({ dim: 0, keepdim: true }).add(Math.log(others.length));
    const next = new Map(state);
    next.set(`${head}.weight`, cat([sw, ow], 0));
    next.set(`${head}.bias`, cat([sb, ob], 0));
    model.loadStateDict(next);
  }));
  return model;
}
