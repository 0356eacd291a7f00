// Combining a generalist with its specialists (Hinton et al. 2015, section 5.3): for each input
// find the full distribution q over the C classes that minimises
//   L(q) = KL(p_g ‖ q) + Σ_{m active} KL(p_m ‖ M_m q),
// where p_g is the generalist's distribution, p_m a specialist's distribution over its subset
// plus dustbin, and M_m q maps q onto that subset plus dustbin (q's classes outside the subset
// summed into the dustbin). The problem is convex in q (a sum of −w·log of linear functions of q
// plus constants) and strictly convex thanks to the generalist term, so it has one optimum.
//
// With q = softmax(z), every term −Σ_j r_j log (M q)_j has the gradient q_c − r_{j(c)} q_c / (M q)_{j(c)}
// with respect to z_c (j(c): the output class c maps to), so the whole gradient is
//   ∂L/∂z = W q − t,   W = 1 + #active,   t_c = p_g,c + Σ_{m active} r_{m,j(c)} q_c / (M_m q)_{j(c)}.
// Two solvers use it, batched over the rows, both starting from the generalist's logits:
//   em (default): z ← log t − log W, i.e. q ← t / W. Since t/(Wq) = 1 − g/(Wq), this is the step
//     z_c ← z_c + log(1 − g_c / (W q_c)): a gradient step on the logits preconditioned by the inverse
//     diagonal Fisher 1/(W q_c), taken in its exact log form. It is the EM update of this
//     mixture-type likelihood, so L decreases monotonically, and it has no step size; the
//     optimum is an exact fixed point (an agreeing specialist leaves q unchanged to the last bit).
//   adam: Adam on z with the lr decayed to zero by a cosine over the steps (the paper's plain
//     "gradient steps on the logits"). Adam's per-coordinate normalisation makes its steps ~lr in
//     size even where the gradient is tiny, so it jitters around the optimum and needs many more
//     steps for the same gap (measured in experiments/specialists/README.md).
import { Tensor } from '../../tensor/tensor.js';
import { tensor, zeros } from '../../tensor/factories.js';
import { noGrad } from '../../tensor/autograd.js';
import { keep, tidy } from '../../tensor/scope.js';

export interface SolverOptions {
  solver: 'adam' | 'em';
  /** Number of updates (0 returns the generalist's distribution). */
  steps: number;
  /** Adam's initial learning rate, in logit units (unused by em). */
  lr: number;
}

export const DEFAULT_SOLVER: SolverOptions = { solver: 'em', steps: 10, lr: 0.5 };

/** One specialist's part of a batch. */
export interface SpecialistTerm {
  /** Log-probabilities over the subset plus dustbin [B, k+1] (dustbin correction already applied); any finite values on inactive rows. */
  logProbs: Tensor;
  /** dustbinMap(subset, C) as int64 [C]. */
  map: Tensor;
  /** 1 where the specialist is active, 0 elsewhere [B], same dtype as logProbs. */
  active: Tensor;
}

/** The int64 tensor form of a dustbin map. */
export function mapTensor(map: Int32Array): Tensor {
  return keep(tensor(BigInt64Array.from(Array.from(map, BigInt)), { shape: [map.length], dtype: 'int64' }));
}

function mapped(q: Tensor, term: SpecialistTerm): { idx: Tensor; mq: Tensor } {
  const idx = term.map.unsqueeze(0).expand(q.shape[0]!, q.shape[1]!);
  const mq = zeros([q.shape[0]!, term.logProbs.shape[1]!], { dtype: q.dtype }).scatterAdd(1, idx, q);
  return { idx, mq };
}

/** t and W of the gradient ∂L/∂z = W q − t (see the file comment). */
function targets(q: Tensor, pg: Tensor, terms: readonly SpecialistTerm[]): { t: Tensor; w: Tensor } {
  let t = pg;
  let w: Tensor = zeros([q.shape[0]!, 1], { dtype: q.dtype }).add(1);
  for (const term of terms) {
    const { idx, mq } = mapped(q, term);
    // Tiny floor: a mapped mass that underflowed to 0 has q_c = 0 on every class feeding it.
    const ratio = term.logProbs.exp().div(mq.clampMin(1e-30)).gather(1, idx);
    const a = term.active.unsqueeze(1);
    t = t.add(q.mul(ratio).mul(a));
    w = w.add(a);
  }
  return { t, w };
}

/**
 * log q for every row: the minimiser of L, found by `o.steps` solver updates from the generalist's
 * logits. Runs without autograd; every input keeps its dtype (float64 for reference solutions).
 */
export function combine(generalistLogits: Tensor, terms: readonly SpecialistTerm[], o: SolverOptions = DEFAULT_SOLVER): Tensor {
  return noGrad(() => tidy(() => {
    const lpg = generalistLogits.logSoftmax(1);
    const pg = lpg.exp();
    if (o.steps === 0 || terms.length === 0) return lpg;
    if (o.solver === 'em') {
      let q = pg;
      for (let s = 0; s < o.steps; s++) {
        q = tidy(() => {
          const { t, w } = targets(q, pg, terms);
          return t.div(w);
        });
      }
      // Renormalised in log space: t/W sums to 1 only up to rounding.
      return q.clampMin(1e-45).log().logSoftmax(1);
    }
    let z = lpg, m = zeros(lpg.shape, { dtype: lpg.dtype }), v = zeros(lpg.shape, { dtype: lpg.dtype });
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    for (let s = 0; s < o.steps; s++) {
      [z, m, v] = tidy(() => {
        const q = z.softmax(1);
        const { t, w } = targets(q, pg, terms);
        const g = q.mul(w).sub(t);
        const m2 = m.mul(b1).add(g.mul(1 - b1));
        const v2 = v.mul(b2).add(g.square().mul(1 - b2));
        const lr = o.lr * 0.5 * (1 + Math.cos(Math.PI * s / o.steps));
        const stepDir = m2.div(1 - b1 ** (s + 1)).div(v2.div(1 - b2 ** (s + 1)).sqrt().add(eps));
        return [z.sub(stepDir.mul(lr)), m2, v2];
      });
    }
    return z.logSoftmax(1);
  }));
}

/** L(q) per row [B]: the combination's objective at log q (for gap measurements and tests). */
export function objective(generalistLogits: Tensor, terms: readonly SpecialistTerm[], logQ: Tensor): Tensor {
  return noGrad(() => tidy(() => {
    const lpg = generalistLogits.logSoftmax(1);
    let total = lpg.exp().mul(lpg.sub(logQ)).sum({ dim: 1 });
    const q = logQ.exp();
    for (const term of terms) {
      const { mq } = mapped(q, term);
      const r = term.logProbs.exp();
      const kl = r.mul(term.logProbs.sub(mq.clampMin(q.dtype === 'float64' ? 1e-300 : 1e-30).log())).sum({ dim: 1 });
      total = total.add(kl.mul(term.active));
    }
    return total;
  }));
}
