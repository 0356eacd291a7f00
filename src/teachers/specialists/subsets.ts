// Confusable subsets of classes, found from a generalist's predictions (Hinton, Vinyals & Dean
// 2015, "Distilling the Knowledge in a Neural Network", section 5.2): classes that the generalist
// often predicts together become the targets of one specialist.
//
// Two affinity matrices, both C×C and symmetric:
//   covariance: Cov[a][b] = E[p_a p_b] − E[p_a] E[p_b] over the generalist's predicted
//     probabilities p (the paper's choice). Classes whose probabilities rise together on the same
//     inputs have a positive covariance; well-separated ones a small negative one.
//   confusion: the row-normalised confusion matrix R[y][ŷ] (fraction of class y predicted as ŷ),
//     symmetrised (R + Rᵀ)/2; needs labels.
// Clustering: k-means on the columns of the matrix (the paper's "K-means on the columns of the
// covariance matrix"), k-means++ seeding from a seeded Rng, several restarts, the lowest inertia
// wins. Each cluster of two or more classes is a candidate subset; they are ranked by their mean
// within-cluster off-diagonal affinity (how strongly the generalist mixes them up) and the top
// `maxSubsets` kept. Singletons need no specialist.
import { Rng } from '../../data/rng.js';

export type SubsetMethod = 'covariance' | 'confusion' | 'manual';

/** The class-by-class matrix from the generalist's log-probabilities [N, C] (row-major). */
export function predictionCovariance(logProbs: ArrayLike<number>, n: number, c: number): number[][] {
  const mean = new Float64Array(c);
  const second = new Float64Array(c * c);
  const p = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < c; a++) p[a] = Math.exp(logProbs[i * c + a]!);
    for (let a = 0; a < c; a++) {
      mean[a]! += p[a]!;
      const pa = p[a]!;
      for (let b = a; b < c; b++) second[a * c + b]! += pa * p[b]!;
    }
  }
  const out = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let a = 0; a < c; a++) {
    for (let b = a; b < c; b++) {
      const v = second[a * c + b]! / n - (mean[a]! / n) * (mean[b]! / n);
      out[a]![b] = v;
      out[b]![a] = v;
    }
  }
  return out;
}

/**
 * Cov[a][b] / sqrt(Cov[a][a] Cov[b][b]). On few classes the raw covariance columns are dominated by
 * their own variance (diagonal) entry, so k-means on them groups classes by how uncertain the
 * generalist is about each rather than by which classes it mixes up; correlations remove that scale.
 */
export function correlationFromCovariance(cov: number[][]): number[][] {
  return cov.map((row, a) => row.map((v, b) => v / Math.sqrt(Math.max(1e-300, cov[a]![a]! * cov[b]![b]!))));
}

/** Symmetrised row-normalised confusion matrix from predictions (argmax of each row) and labels. */
export function confusionAffinity(logProbs: ArrayLike<number>, labels: ArrayLike<number>, n: number, c: number): number[][] {
  const counts = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (logProbs[i * c + j]! > logProbs[i * c + best]!) best = j;
    counts[labels[i]!]![best]!++;
  }
  const r = counts.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s > 0 ? v / s : 0));
  });
  return r.map((row, a) => row.map((v, b) => (v + r[b]![a]!) / 2));
}

export interface KMeansResult {
  /** Cluster id of each point, relabelled so that clusters are numbered by their smallest member. */
  assignment: number[];
  inertia: number;
}

const dist2 = (a: readonly number[], b: readonly number[]): number => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);

/** k-means (Lloyd) with k-means++ seeding; `restarts` seeded runs, the lowest inertia kept. */
export function kmeans(points: readonly (readonly number[])[], k: number, o: { seed?: number; restarts?: number; maxIter?: number } = {}): KMeansResult {
  const n = points.length;
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`kmeans: k must be an integer in [1, ${n}], got ${k}`);
  const rng = new Rng(o.seed ?? 0, 0x5bec);
  let best: KMeansResult | null = null;
  for (let r = 0; r < (o.restarts ?? 20); r++) {
    // k-means++: each next centre drawn with probability ∝ squared distance to the nearest centre.
    const centres: number[][] = [[...points[rng.nextInt(n)]!]];
    while (centres.length < k) {
      const d = points.map((p) => Math.min(...centres.map((c) => dist2(p, c))));
      const total = d.reduce((a, b) => a + b, 0);
      let pick = 0;
      if (total > 0) {
        let u = rng.nextDouble() * total;
        while (pick < n - 1 && u >= d[pick]!) u -= d[pick++]!;
      } else pick = rng.nextInt(n);
      centres.push([...points[pick]!]);
    }
    let assign = new Array<number>(n).fill(-1);
    for (let it = 0; it < (o.maxIter ?? 100); it++) {
      const next = points.map((p) => {
        let bi = 0, bd = Infinity;
        centres.forEach((c, j) => {
          const dd = dist2(p, c);
          if (dd < bd) { bd = dd; bi = j; }
        });
        return bi;
      });
      const same = next.every((v, i) => v === assign[i]);
      assign = next;
      if (same) break;
      for (let j = 0; j < k; j++) {
        const members = points.filter((_, i) => assign[i] === j);
        // An empty cluster keeps its centre (it may win points back next round).
        if (members.length) centres[j] = members[0]!.map((_, d) => members.reduce((s, m) => s + m[d]!, 0) / members.length);
      }
    }
    const inertia = points.reduce((s, p, i) => s + dist2(p, centres[assign[i]!]!), 0);
    if (!best || inertia < best.inertia - 1e-15) best = { assignment: canonical(assign), inertia };
  }
  return best!;
}

/** Renumbers cluster ids by first appearance, so equal partitions compare equal. */
function canonical(a: number[]): number[] {
  const map = new Map<number, number>();
  return a.map((v) => {
    if (!map.has(v)) map.set(v, map.size);
    return map.get(v)!;
  });
}

export interface SubsetDiscovery {
  method: SubsetMethod;
  /** The affinity matrix the clusters were found on (C×C). */
  matrix: number[][];
  clusters: number;
  seed: number;
  /** Every cluster of the partition, sorted classes, with its score. */
  partition: { classes: number[]; score: number }[];
  /** The chosen subsets (clusters of ≥ 2 classes, highest score first, at most maxSubsets). */
  subsets: number[][];
}

/**
 * Clusters the columns of `matrix` into `clusters` groups and keeps the most confusable groups of
 * two or more classes. Score of a group: mean affinity over its off-diagonal pairs.
 */
export function clusterSubsets(matrix: number[][], o: { clusters: number; maxSubsets?: number; seed?: number; restarts?: number; method?: SubsetMethod }): SubsetDiscovery {
  const c = matrix.length;
  if (matrix.some((row) => row.length !== c)) throw new Error('clusterSubsets: the matrix must be square');
  const cols = matrix[0]!.map((_, j) => matrix.map((row) => row[j]!));
  const seed = o.seed ?? 0;
  const { assignment } = kmeans(cols, o.clusters, { seed, ...(o.restarts ? { restarts: o.restarts } : {}) });
  const groups = new Map<number, number[]>();
  assignment.forEach((g, cls) => groups.set(g, [...(groups.get(g) ?? []), cls]));
  const partition = [...groups.values()].map((classes) => {
    let s = 0, pairs = 0;
    for (const a of classes) for (const b of classes) if (a < b) { s += matrix[a]![b]!; pairs++; }
    return { classes, score: pairs ? s / pairs : -Infinity };
  });
  const subsets = partition.filter((g) => g.classes.length >= 2)
    .sort((a, b) => b.score - a.score || a.classes[0]! - b.classes[0]!)
    .slice(0, o.maxSubsets ?? Infinity)
    .map((g) => g.classes);
  return {
    method: o.method ?? 'covariance', matrix, clusters: o.clusters, seed,
    partition: partition.map((g) => ({ ...g, score: Number.isFinite(g.score) ? g.score : 0 })), subsets,
  };
}

/**
 * Checks hand-given or loaded subsets: classes in range, no repeats within a subset, not all
 * classes. The order is kept: it is the order of a specialist's outputs (dustbinMap).
 */
export function validateSubsets(subsets: readonly (readonly number[])[], numClasses: number): number[][] {
  if (subsets.length === 0) throw new Error('specialists: no confusable subsets (need at least one subset of 1 to C−1 classes)');
  return subsets.map((s, i) => {
    const sorted = [...s];
    if (sorted.some((v) => !Number.isInteger(v) || v < 0 || v >= numClasses)) throw new Error(`specialists: subset ${i} [${s.join(', ')}] has a class outside [0, ${numClasses})`);
    if (new Set(sorted).size !== sorted.length) throw new Error(`specialists: subset ${i} [${s.join(', ')}] repeats a class`);
    if (sorted.length === 0 || sorted.length >= numClasses) throw new Error(`specialists: subset ${i} must have 1 to ${numClasses - 1} classes (the rest go to the dustbin), got ${sorted.length}`);
    return sorted;
  });
}
