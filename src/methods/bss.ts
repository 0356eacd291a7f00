// Knowledge distillation with adversarial samples supporting the decision boundary (BSS; Heo,
// Lee, Yun, Choi, AAAI 2019), following the authors' code (github.com/bhheo/BSS_distillation,
// train_BSS_distillation.py and attacks/attack_BSS.py):
//  - base samples: those both teacher and student classify correctly; when more than the attack
//    budget (64 of a batch of 256 = attackFraction 0.25), the ones with the largest
//    Σ_{c≠y}(p_T,c − p_S,c)² at T = 1;
//  - target class: sampled from the teacher's softmax over all classes but its top-1;
//  - attack: 10 steps x ← clip(x + η·(z_gt − z_tgt + 1e-4)·∇/‖∇‖₂), ∇ = ∇_x(z_tgt − z_gt) of the
//    teacher's logits, η = 0.3; a sample stops moving once the teacher's top-1 leaves its
//    original class (it reached the boundary); inputs are clipped to the valid range (±2.5 on
//    their normalised CIFAR-10);
//  - loss: CE + r_kd·soft(T=3) on the batch + r_bss·soft(T=3) on the attacked samples, with
//    r_kd = 3·max(1 − e/E, 0) + 1 (4 → 1) and r_bss = 2·max(1 − (4/3)·e/E, 0) (2 → 0 at ¾ of
//    training; no attack after that), e the 1-based epoch.
// Their soft term is the un-scaled soft cross-entropy; ours is T²·KL, so we weight it by r/T²,
// which gives the authors' gradients exactly (the values differ by the teacher's entropy).
import { crossEntropy } from '../tensor/functional.js';
import { tidy, keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { enableGrad, grad, noGrad } from '../tensor/autograd.js';
import { rand, tensor, zeros } from '../tensor/factories.js';
import { klDivergence } from '../losses/tempered.js';
import { defineMethod, requireLabels, requireTeacherLogits } from './method.js';
import { int, num } from './params.js';

export interface AttackOptions {
  steps: number;
  /** η, step_alpha in the authors' code. */
  stepSize: number;
  min: number;
  max: number;
}

/**
 * Moves each sample of x from the class f predicts for it towards class `target` [n] (int64)
 * until f's top-1 changes or the step budget is spent. Returns the attacked inputs (no graph)
 * and how many steps ran.
 */
export function bssAttack(f: (x: Tensor) => Tensor, x: Tensor, target: Tensor, o: AttackOptions): { x: Tensor; steps: number } {
  let cur = x.detach().clone();
  let gt: Tensor | null = null;
  let steps = 0;
  try {
    for (; steps < o.steps; steps++) {
      const next = tidy(() => enableGrad(() => {
        const xv = cur.detach().requiresGrad_(true);
        const out = f(xv);
        if (gt === null) gt = keep(out.argmax({ dim: 1 }).detach());
        const sGt = out.gather(1, gt.unsqueeze(1));
        const sTgt = out.gather(1, target.unsqueeze(1));
        const [g] = grad(sTgt.sub(sGt).sum(), xv);
        const active = noGrad(() => gt!.eq(out.argmax({ dim: 1 })));
        if (!active.any().item()) return null;
        return noGrad(() => {
          const bcast = [-1, ...Array<number>(x.ndim - 1).fill(1)];
          // The authors divide by ‖∇‖₂ without a floor; the floor only avoids 0/0 on a flat teacher.
          const norm = g!.flatten(1).norm({ dim: 1 }).clampMin(1e-12).reshape(bcast);
          const scale = active.float().mul(o.stepSize).unsqueeze(1).mul(sGt.sub(sTgt).detach().add(1e-4)).reshape(bcast);
          return xv.detach().add(g!.div(norm).mul(scale)).clamp(o.min, o.max);
        });
      }));
      if (next === null) break;
      cur.dispose();
      cur = next;
    }
  } finally {
    (gt as Tensor | null)?.dispose();
  }
  return { x: cur, steps };
}

/** Base-sample choice and target-class sampling of the authors' code, on host arrays. */
export function selectBaseSamples(teacherLogits: Tensor, studentLogits: Tensor, y: Tensor, budget: number, u: Float32Array):
  { index: number[]; target: number[] } {
  const [n, C] = teacherLogits.shape as [number, number];
  const pt = noGrad(() => teacherLogits.softmax(1).data<Float32Array>());
  const ps = noGrad(() => studentLogits.detach().softmax(1).data<Float32Array>());
  const labels = Array.from(y.data() as ArrayLike<number | bigint>, Number);
  const top = (p: Float32Array, i: number): number => {
    let b = 0;
    for (let c = 1; c < C; c++) if (p[i * C + c]! > p[i * C + b]!) b = c;
    return b;
  };
  let index: number[] = [];
  for (let i = 0; i < n; i++) if (top(pt, i) === labels[i] && top(ps, i) === labels[i]) index.push(i);
  if (index.length > budget) {
    const score = (i: number): number => {
      let s = 0;
      for (let c = 0; c < C; c++) if (c !== labels[i]) s += (pt[i * C + c]! - ps[i * C + c]!) ** 2;
      return s;
    };
    index = index.map((i) => [i, score(i)] as const).sort((a, b) => b[1] - a[1]).slice(0, budget).map(([i]) => i);
  }
  const target = index.map((i, k) => {
    const order = [...Array(C).keys()].sort((a, b) => pt[i * C + b]! - pt[i * C + a]!).slice(1);
    const total = order.reduce((s, c) => s + pt[i * C + c]!, 0);
    const r = total * u[k]!;
    let acc = 0;
    for (const c of order) {
      acc += pt[i * C + c]!;
      if (acc >= r) return c;
    }
    return order[0]!; // float round-off: the authors' default is the second class
  });
  return { index, target };
}

export const bss = defineMethod({
  name: 'bss',
  summary: 'Boundary-supporting samples: KD plus KD on teacher-attacked samples moved toward a sampled other class until the teacher\'s boundary; authors\' weight schedules.',
  paper: 'Heo, Lee, Yun, Choi, "Knowledge Distillation with Adversarial Samples Supporting Decision Boundary", AAAI 2019 (arXiv:1805.05532)',
  needsTeacher: true,
  params: {
    temperature: num({ default: 3, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature of both soft terms (authors: 3)' }),
    attackSteps: int({ default: 10, min: 1, description: 'Attack iterations per batch (authors: 10)' }),
    stepSize: num({ default: 0.3, min: 0, description: 'η: each step moves the input η·(z_gt − z_tgt) along the unit input gradient (authors: 0.3)' }),
    attackFraction: num({ default: 0.25, min: 0, max: 1, description: 'Largest share of a batch attacked (authors: 64 of 256)' }),
    kdWeightStart: num({ default: 4, unit: 'weight', min: 0, description: 'KD weight at the start, decaying linearly to kdWeightEnd (authors: 4 → 1)' }),
    kdWeightEnd: num({ default: 1, unit: 'weight', min: 0, description: 'KD weight at the end' }),
    bssWeightStart: num({ default: 2, unit: 'weight', min: 0, description: 'Weight of the soft term on attacked samples at the start (authors: 2)' }),
    bssUntil: num({ default: 0.75, min: 0.01, max: 1, description: 'Share of training after which the BSS weight has decayed linearly to 0 and attacks stop (authors: ¾)' }),
    inputMin: num({ default: -2.5, description: 'Lower clip of attacked inputs (authors: −2.5 for normalised CIFAR-10; 0 for [0, 1] pixels)' }),
    inputMax: num({ default: 2.5, description: 'Upper clip of attacked inputs (authors: 2.5; 1 for [0, 1] pixels)' }),
  },
  create(p) {
    const T = p.temperature;
    const attack: AttackOptions = { steps: p.attackSteps, stepSize: p.stepSize, min: p.inputMin, max: p.inputMax };
    if (attack.min >= attack.max) throw new Error("method 'bss': inputMin must be below inputMax");
    const frac = p.attackFraction;
    const k0 = p.kdWeightStart, k1 = p.kdWeightEnd;
    const b0 = p.bssWeightStart, until = p.bssUntil;
    return {
      losses(ctx) {
        const y = requireLabels(ctx, 'bss', 'base samples are those classified correctly');
        const tl = requireTeacherLogits(ctx, 'bss');
        const e = (ctx.info.epoch + 1) / ctx.info.epochs;
        const rKd = (k0 - k1) * Math.max(1 - e, 0) + k1;
        const rBss = b0 * Math.max(1 - e / until, 0);
        return tidy(() => {
          const out: Record<string, Tensor> = {
            ce: crossEntropy(ctx.studentLogits, y),
            kd: klDivergence(tl, ctx.studentLogits, T).mul(rKd / (T * T)),
          };
          const budget = Math.round(frac * y.shape[0]!);
          // A zero term keeps the logged columns the same in every epoch.
          if (rBss <= 0 || budget < 1) return { ...out, bss: zeros([]) };
          const teacher = ctx.teacher;
          if (!teacher?.logitsWithGrad) throw new Error(`method 'bss' attacks the teacher and needs its input gradients; this teacher (${teacher?.description ?? 'none'}) cannot give them`);
          const u = rand([budget]).data<Float32Array>(); // the global generator: checkpointed, so resume repeats it
          const sel = selectBaseSamples(tl, ctx.studentLogits, y, budget, u);
          if (sel.index.length === 0) return { ...out, bss: zeros([]) };
          const idx = tensor(sel.index, { dtype: 'int64' });
          const xa = bssAttack((x) => teacher.logitsWithGrad!(x), ctx.batch.x.indexSelect(0, idx), tensor(sel.target, { dtype: 'int64' }), attack).x;
          const ta = teacher.logits(xa);
          const sa = ctx.student.call(xa);
          out.bss = klDivergence(ta, sa, T).mul(rBss / (T * T));
          return out;
        });
      },
    };
  },
});
