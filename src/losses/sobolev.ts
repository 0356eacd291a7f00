// Derivative matching: Sobolev training (Czarnecki, Osindero, Jaderberg, Świrszcz, Pascanu,
// "Sobolev Training for Neural Networks", NIPS 2017) and the target-class input-gradient variant
// (Srinivas & Fleuret, "Knowledge Transfer with Jacobian Matching", ICML 2018).
//
// Notation: f: R^D → R^K maps one sample x (all non-batch dimensions flattened, D of them) to K
// outputs (logits, or log-probabilities at a temperature; see sobolevOutput). J = ∂f/∂x is K×D.
//
// Stochastic Sobolev estimator (paper section 3, "Stochastic Sobolev Training"): instead of the
// full Jacobian, match its action on random directions, so no K×D (or D×D) matrix is ever formed.
// Per sample n and projection p we draw v ∈ R^D uniform on the unit sphere (input direction) and
// u ∈ R^K uniform on the unit sphere (output direction), and form the scalar
//     s = Σ_n u_nᵀ J_n v_n = Σ_n (J_nᵀ u_n) · v_n
// with ONE backward pass (g = J ᵀu as a vector–Jacobian product with create_graph) and a dot
// product. A second backward pass of s, with respect to u and x together, then gives
//     ∂s/∂u_n = J_n v_n                 (the Jacobian–vector product: the "double-backward trick")
//     ∂s/∂x_n = H_n(u) v_n,  H_n(u) = ∇²_x (u_n · f(x_n))   (a Hessian–vector product)
// and vᵀ H v = (H v) · v. Costs per projection: one backward and one double backward, for the
// teacher and the student alike; the student's are recorded (create_graph) so the loss can be
// differentiated once more with respect to its parameters.
//
// Losses (each averaged over the batch and the projections):
//   order 1:  ‖J_s v − J_t v‖²  (summed over the K outputs). For v uniform on the unit sphere,
//             E[v vᵀ] = I/D, so this is an unbiased estimate of ‖J_s − J_t‖_F² / D: the paper's
//             full first-order Sobolev term, rescaled.
//   order 2:  (vᵀ H_s(u) v − vᵀ H_t(u) v)². For a symmetric A = H_s − H_t and v uniform on the
//             unit sphere, E[(vᵀ A v)²] = (2‖A‖_F² + tr(A)²) / (D(D+2)): zero exactly when the
//             projected Hessians agree, an unbiased estimate of that (not of ‖A‖_F² alone).
//   target:   ‖∇_x f_y(x)_s − ∇_x f_y(x)_t‖² (summed over D) for the target class y (the label,
//             or the teacher's prediction on unlabeled data); optionally with each gradient
//             normalised to unit length first, as Srinivas & Fleuret do.
//
// Caveats. Networks of ReLU/max-pool layers are piecewise linear, so the Hessian of their logits
// with respect to the input is zero almost everywhere: use order 2 with log-probability outputs
// (the softmax curvature makes it non-zero). In training mode, batch norm couples the samples of a
// batch, so per-sample derivatives include cross-sample terms (teachers run in eval mode).
import type { Tensor, Generator } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { grad, enableGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { normalize } from '../tensor/functional.js';
import { randn, zerosLike } from '../tensor/factories.js';

export const SOBOLEV_OUTPUTS = ['logits', 'logprobs'] as const;
export type SobolevOutput = (typeof SOBOLEV_OUTPUTS)[number];

/** The function whose derivatives are matched: the logits, or log-softmax(logits / T). */
export function sobolevOutput(logits: Tensor, kind: SobolevOutput, T = 1): Tensor {
  if (kind === 'logits') return logits;
  return tidy(() => (T === 1 ? logits : logits.div(T)).logSoftmax(1));
}

/** Random directions, one per sample, uniform on the unit sphere of the non-batch dimensions. */
export function randomUnitDirections(shape: number[], generator?: Generator, dtype: DType = 'float32'): Tensor {
  return tidy(() => {
    const g = randn(shape, { dtype, ...(generator ? { generator } : {}) });
    return normalize(g.flatten(1), 2, 1).reshape(shape);
  });
}

/** Directions for several projections: input (v, shaped like x) and output (u, [N, K]). */
export interface Projections { v: Tensor[]; u: Tensor[] }

export function randomProjections(xShape: number[], numOutputs: number, count: number, generator?: Generator, dtype: DType = 'float32'): Projections {
  const v: Tensor[] = [], u: Tensor[] = [];
  for (let p = 0; p < count; p++) {
    v.push(randomUnitDirections(xShape, generator, dtype));
    u.push(randomUnitDirections([xShape[0]!, numOutputs], generator, dtype));
  }
  return { v, u };
}

export interface Derivatives {
  /** Per projection: J v, [N, K]. */
  jv: Tensor[];
  /** Per projection: vᵀ ∇²(u·f) v, [N]. */
  vhv: Tensor[];
  /** ∇_x f_y(x), shaped like x. */
  targetGrad: Tensor | null;
}

export interface DerivativeRequest {
  order1: boolean;
  order2: boolean;
  /** Class indices for the target-class gradient, or null to skip it. */
  targets: Tensor | null;
  projections: Projections;
  /**
   * Record the derivative computation so the results can be differentiated again (the student).
   * Without it (the teacher) the results are plain values.
   */
  createGraph: boolean;
}

const NONE = (): never => { throw new Error('unreachable'); };

/**
 * The derivatives of y = f(x) that Sobolev losses compare. x must be a leaf (or otherwise require
 * grad) and y must have been computed from it with gradient recording on; y is [N, K].
 */
export function derivatives(y: Tensor, x: Tensor, r: DerivativeRequest): Derivatives {
  if (y.ndim !== 2) throw new RangeError(`derivatives: outputs must be [batch, K], got [${y.shape.join(', ')}]`);
  if (!x.requiresGrad) throw new Error('derivatives: the input does not require grad (derivatives with respect to x need x.requiresGrad_(true) before the forward pass)');
  const [n, k] = y.shape as [number, number];
  const P = r.projections.v.length;
  const createGraph = r.createGraph;
  return enableGrad(() => {
    const jv: Tensor[] = [], vhv: Tensor[] = [];
    if (r.order1 || r.order2) {
      for (let p = 0; p < P; p++) {
        const v = r.projections.v[p]!, u0 = r.projections.u[p]!;
        if (v.shape.join() !== x.shape.join()) throw new RangeError(`derivatives: direction ${p} has shape [${v.shape.join(', ')}], the input [${x.shape.join(', ')}]`);
        if (u0.shape[0] !== n || u0.shape[1] !== k) throw new RangeError(`derivatives: output direction ${p} has shape [${u0.shape.join(', ')}], the outputs [${n}, ${k}]`);
        const res = tidy(() => {
          // u is a fresh leaf so that ∂s/∂u = J v is available from the same graph.
          const u = u0.detach().requiresGrad_(true);
          const [g] = grad(y, x, { gradOutputs: u, createGraph: true, retainGraph: true });
          const s = g!.mul(v).sum();
          const wrt = r.order2 ? [u, x] : [u];
          const gs = grad(s, wrt, { createGraph, retainGraph: true, allowUnused: true });
          const out: Tensor[] = [];
          if (r.order1) out.push(gs[0] ?? zerosLike(u));
          // ReLU networks' logits have no curvature: autograd reports x as unused, i.e. H v = 0.
          if (r.order2) out.push(gs[1] ? gs[1].mul(v).flatten(1).sum({ dim: 1 }) : zerosLike(y).sum({ dim: 1 }));
          return createGraph ? out : out.map((t) => t.detach());
        });
        let i = 0;
        if (r.order1) jv.push(res[i++] ?? NONE());
        if (r.order2) vhv.push(res[i++] ?? NONE());
      }
    }
    let targetGrad: Tensor | null = null;
    if (r.targets) {
      const t = r.targets;
      targetGrad = tidy(() => {
        const picked = y.gather(1, t.reshape([n, 1])).sum();
        const [g] = grad(picked, x, { createGraph, retainGraph: true, allowUnused: true });
        const out = g ?? zerosLike(x);
        return createGraph ? out : out.detach();
      });
    }
    return { jv, vhv, targetGrad };
  });
}

export interface SobolevLosses {
  order1: Tensor | null;
  order2: Tensor | null;
  targetClass: Tensor | null;
}

/**
 * Unweighted Sobolev terms from the student's and the teacher's derivatives (same projections):
 * order1 = mean_p mean_n ‖J_s v − J_t v‖², order2 = mean_p mean_n (vᵀH_s v − vᵀH_t v)²,
 * targetClass = mean_n ‖g_s − g_t‖² (with `normalizeTarget`, of g/‖g‖). Teacher values are
 * detached: they are targets.
 */
export function sobolevLosses(student: Derivatives, teacher: Derivatives, o: { normalizeTarget?: boolean } = {}): SobolevLosses {
  return tidy(() => {
    const mean = (ts: Tensor[]): Tensor | null => {
      if (ts.length === 0) return null;
      let acc = ts[0]!;
      for (const t of ts.slice(1)) acc = acc.add(t);
      return acc.div(ts.length);
    };
    if (student.jv.length !== teacher.jv.length || student.vhv.length !== teacher.vhv.length) {
      throw new Error('sobolevLosses: the student and the teacher derivatives use different projections');
    }
    const order1 = mean(student.jv.map((s, p) => s.sub(teacher.jv[p]!.detach()).pow(2).sum({ dim: 1 }).mean()));
    const order2 = mean(student.vhv.map((s, p) => s.sub(teacher.vhv[p]!.detach()).pow(2).mean()));
    let targetClass: Tensor | null = null;
    if (student.targetGrad && teacher.targetGrad) {
      let gs = student.targetGrad.flatten(1), gt = teacher.targetGrad.detach().flatten(1);
      if (o.normalizeTarget) {
        gs = normalize(gs, 2, 1, 1e-12);
        gt = normalize(gt, 2, 1, 1e-12);
      }
      targetClass = gs.sub(gt).pow(2).sum({ dim: 1 }).mean();
    }
    return { order1, order2, targetClass };
  });
}

/**
 * The teacher's target-class input gradient ∇_x f_y(x), as a plain value shaped like x: f is
 * `sobolevOutput(logitsWithGrad(x), kind, T)` and y the labels, or without labels the teacher's
 * argmax (the rule of the live Sobolev path). What the teacher-output cache stores per sample.
 */
export function teacherTargetGrad(logitsWithGrad: (x: Tensor) => Tensor, x: Tensor, y: Tensor | null, kind: SobolevOutput, T = 1): Tensor {
  return tidy(() => enableGrad(() => {
    const xt = x.detach().requiresGrad_(true);
    const z = logitsWithGrad(xt);
    const targets = y ?? z.argmax({ dim: 1 });
    const none = { v: [], u: [] };
    return derivatives(sobolevOutput(z, kind, T), xt, { order1: false, order2: false, targets, projections: none, createGraph: false }).targetGrad!;
  }));
}
