// Several teachers as one: members may differ in architecture and source (checkpoint,
// TorchScript, ...); only their class count must agree. The combination is a Teacher, so every
// method and the teacher-output cache work with ensembles unchanged.
import { createHash } from 'node:crypto';
import type { Tensor } from '../tensor/tensor.js';
import { call } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Teacher } from './teacher.js';

export const ENSEMBLE_COMBINATIONS = ['mean_logits', 'mean_probs', 'geometric_probs'] as const;
export type EnsembleCombination = (typeof ENSEMBLE_COMBINATIONS)[number];

export interface EnsembleOptions {
  /** How member outputs are combined (default 'mean_logits'). */
  combine?: EnsembleCombination;
  /** Fixed positive member weights; normalised to sum 1. Default: equal weights. */
  weights?: number[];
}

/**
 * An ensemble of teachers with weights w_k (Σ w_k = 1) and member logits z_k:
 *   mean_logits:      Σ_k w_k z_k
 *   mean_probs:       log Σ_k w_k softmax(z_k)           (arithmetic mean of probabilities)
 *   geometric_probs:  log-softmax(Σ_k w_k log softmax(z_k)) (normalised geometric mean)
 * For the probability means the returned "logits" are log-probabilities: softmax of them is the
 * combined distribution at T = 1. At another temperature the student sees that distribution
 * sharpened or softened (softmax(log p / T) ∝ p^(1/T)), not the mean of the members' tempered
 * distributions; use mean_logits when the members should be tempered individually.
 */
export class EnsembleTeacher implements Teacher {
  readonly numClasses: number;
  readonly numParameters: number;
  readonly description: string;
  readonly checksum: string;
  readonly combine: EnsembleCombination;
  /** Normalised member weights. */
  readonly weights: readonly number[];

  constructor(readonly members: readonly Teacher[], o: EnsembleOptions = {}) {
    if (members.length === 0) throw new Error('EnsembleTeacher: needs at least one teacher');
    this.combine = o.combine ?? 'mean_logits';
    if (!ENSEMBLE_COMBINATIONS.includes(this.combine)) {
      throw new Error(`EnsembleTeacher: unknown combination '${String(this.combine)}' (known: ${ENSEMBLE_COMBINATIONS.join(', ')})`);
    }
    const n = members[0]!.numClasses;
    const bad = members.filter((m) => m.numClasses !== n);
    if (bad.length) {
      throw new Error(`EnsembleTeacher: all teachers must have the same number of classes; ${members.map((m) => `${m.description}: ${m.numClasses}`).join(', ')}`);
    }
    const raw = o.weights ?? members.map(() => 1);
    if (raw.length !== members.length) throw new Error(`EnsembleTeacher: ${raw.length} weights for ${members.length} teachers`);
    if (!raw.every((w) => Number.isFinite(w) && w > 0)) throw new Error(`EnsembleTeacher: weights must be positive finite numbers, got [${raw.join(', ')}]`);
    const total = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((w) => w / total);
    this.numClasses = n;
    this.numParameters = members.reduce((a, m) => a + m.numParameters, 0);
    const ws = this.weights.map((w) => w.toPrecision(6));
    this.description = `ensemble (${this.combine}) of ${members.map((m, i) => `${m.description} ×${ws[i]}`).join(', ')}`;
    // Any change of member, order, weight or combination changes the soft targets, so all of it
    // keys the teacher-output cache.
    this.checksum = createHash('sha256')
      .update(JSON.stringify({ combine: this.combine, weights: this.weights, members: members.map((m) => m.checksum) }))
      .digest('hex');
  }

  logits(x: Tensor): Tensor {
    return noGrad(() => tidy(() => {
      const outs = this.members.map((m, i) => {
        const z = m.logits(x);
        if (z.ndim !== 2 || z.shape[1] !== this.numClasses) {
          throw new Error(`EnsembleTeacher: ${m.description} returned shape [${z.shape.join(', ')}], expected [batch, ${this.numClasses}]`);
        }
        return { z, w: this.weights[i]! };
      });
      switch (this.combine) {
        case 'mean_logits':
          return weightedSum(outs.map(({ z, w }) => z.mul(w)));
        case 'mean_probs': {
          // log Σ w_k p_k = logsumexp_k(log w_k + log p_k): no log(0) when every p_k underflows.
          const terms = outs.map(({ z, w }) => z.logSoftmax(1).add(Math.log(w)));
          return call('stack', terms, 0).logsumexp({ dim: 0 });
        }
        case 'geometric_probs':
          return weightedSum(outs.map(({ z, w }) => z.logSoftmax(1).mul(w))).logSoftmax(1);
      }
    }));
  }
}

function weightedSum(ts: Tensor[]): Tensor {
  return ts.slice(1).reduce((acc, t) => acc.add(t), ts[0]!);
}
