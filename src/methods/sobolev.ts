// Sobolev training for distillation (Czarnecki et al., NIPS 2017): the student matches the
// teacher's outputs (the KD term) and their derivatives with respect to the input, estimated
// along random directions (src/losses/sobolev.ts documents the estimators). Optionally the
// input-gradient of the target class (Srinivas & Fleuret, ICML 2018).
import { Generator, type Tensor } from '../tensor/tensor.js';
import { enableGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { derivatives, randomProjections, sobolevLosses, sobolevOutput, teacherTargetGrad, SOBOLEV_OUTPUTS } from '../losses/sobolev.js';
import { modelActivation, PIECEWISE_LINEAR_ACTIVATIONS } from '../nn/zoo/index.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { defineMethod, type CachedTarget, type LossContext } from './method.js';
import { bool, choice, int, num } from './params.js';

/** Name of the cached teacher target-class gradient (LossContext.cachedTargets, `target.<name>` in the cache file). */
export const SOBOLEV_TARGET_GRAD = 'sobolev.target_grad';

/**
 * Why the order-2 term says nothing of the networks' curvature, or null. A network built of
 * linear maps and ReLU-like activations (max pooling, eval-mode batch norm) is piecewise linear in
 * its input, so its Hessian is zero almost everywhere: vᵀHv of its logits is 0, and that of its
 * log-probabilities is vᵀJᵀ∇²lsm Jv, a function of the Jacobian J that order 1 already matches.
 * The zoo models' specs name their activation; other networks (TorchScript, ONNX) are not judged.
 */
export function order2Warning(nets: { role: string; model: unknown }[], output: string): string | null {
  const flat = nets.flatMap(({ role, model }) => {
    const act = modelActivation(model);
    return act !== null && PIECEWISE_LINEAR_ACTIVATIONS.includes(act) ? [`the ${role} (${act})`] : [];
  });
  if (!flat.length) return null;
  const consequence = output === 'logits'
    ? 'its vᵀHv of the logits is identically 0'
    : 'its vᵀHv of the log-probabilities is only a function of its Jacobian, which order 1 already matches';
  return `method 'sobolev': order2 > 0, but ${flat.join(' and ')} ${flat.length > 1 ? 'are' : 'is'} piecewise linear, so ${consequence}: ` +
    'the second-order term carries no curvature of the network (Czarnecki et al. use smooth activations); give both smooth activations (e.g. activation: tanh), or set order2: 0';
}

export const sobolev = defineMethod({
  name: 'sobolev',
  summary: 'Sobolev training: KD on the outputs plus order1·‖J_s v − J_t v‖² and order2·(vᵀH_s v − vᵀH_t v)² along random unit directions ' +
    '(no full Jacobian), and optionally targetGrad·‖∇x f_y,s − ∇x f_y,t‖²; needs a teacher differentiable in its input.',
  paper: 'Czarnecki, Osindero, Jaderberg, Świrszcz, Pascanu, "Sobolev Training for Neural Networks", NIPS 2017 ' +
    '(target-class variant: Srinivas, Fleuret, "Knowledge Transfer with Jacobian Matching", ICML 2018)',
  differs: 'Derivatives matched along random directions (the paper\'s stochastic Sobolev form) on log-probabilities or logits; ' +
    'order 2 needs smooth networks, as in the paper (kdistill warns on ReLU ones); the committed runs used ReLU models',
  needsTeacher: true,
  params: {
    ...KD_PARAMS,
    order1: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the first-order term (Jacobian–vector products)' }),
    order2: num({ default: 0, unit: 'weight', min: 0, description: 'Weight of the second-order term (vᵀHv of a random output projection); vacuous for ReLU networks (a warning says so): use smooth activations' }),
    targetGrad: num({ default: 0, unit: 'weight', min: 0, was: 'target_grad', description: 'Weight of the target-class input-gradient term (label, or the teacher\'s prediction on unlabeled data)' }),
    normalizeTarget: bool({ default: false, was: 'normalize_target', description: 'Normalise both target-class gradients to unit length first (Srinivas & Fleuret)' }),
    projections: int({ default: 1, min: 1, max: 64, description: 'Random directions per sample and step' }),
    output: choice(SOBOLEV_OUTPUTS, { default: 'logprobs', description: 'Function whose derivatives are matched: logits, or log-softmax(logits / outputTemperature)' }),
    outputTemperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, was: 'output_temperature', description: 'Temperature of the log-softmax when output = logprobs' }),
    seed: int({ default: 0, min: 0, description: 'Seed of the random directions (re-seeded per step with the step number, so resumed runs draw the same)' }),
  },
  create(params) {
    const kd = { temperature: params.temperature, alpha: params.alpha, measure: params.measure };
    const { order1: w1, order2: w2, targetGrad: wt, projections: P, output: out, outputTemperature: To, normalizeTarget, seed } = params;
    const gen = new Generator(seed);
    // With only the target-class term, the teacher's side is a per-sample deterministic value
    // (given the output settings): the teacher-output cache can serve it instead of a teacher
    // backward pass every step. The key names what the values depend on.
    const cachedTargets: CachedTarget[] = wt > 0 && w1 === 0 && w2 === 0 ? [{
      name: SOBOLEV_TARGET_GRAD,
      key: `output=${out};T=${out === 'logprobs' ? To : 1}`,
      compute(teacher, x, y) {
        if (!teacher.logitsWithGrad) throw new Error(`method 'sobolev': the teacher (${teacher.description}) cannot give logits differentiable in its input`);
        return teacherTargetGrad((xi) => teacher.logitsWithGrad!(xi), x, y, out, To);
      },
    }] : [];
    const warnings: string[] = [];
    return {
      setup(ctx) {
        if (w2 === 0) return;
        // A checkpoint teacher, and the cache wrapping it, expose the live module.
        const teacherModel = ctx.teacher && 'model' in ctx.teacher ? ctx.teacher.model : null;
        const w = order2Warning([{ role: 'student', model: ctx.student }, { role: 'teacher', model: teacherModel }], out);
        if (w === null) return;
        warnings.push(w);
        process.stderr.write(`warning: ${w}\n`);
      },
      warnings: () => [...warnings],
      inputGrad: true,
      ...(cachedTargets.length ? { cachedTargets } : {}),
      losses(ctx: LossContext) {
        const teacher = ctx.teacher;
        if (!teacher) throw new Error("method 'sobolev' needs a teacher, but none was given");
        if (!teacher.logitsWithGrad) throw new Error(`method 'sobolev': the teacher (${teacher.description}) cannot give logits differentiable in its input`);
        const x = ctx.batch.x;
        if (!x.requiresGrad) throw new Error("method 'sobolev': the batch input does not require grad (the trainer sets it for methods with inputGrad)");
        const cachedGrad = cachedTargets.length ? ctx.cachedTargets?.[SOBOLEV_TARGET_GRAD] : undefined;
        if (cachedGrad && ctx.teacherLogits) {
          // Teacher logits and target gradient both from the cache: no teacher call this step.
          const zt = ctx.teacherLogits;
          return tidy(() => {
            const terms = kdTerms(ctx, zt, kd);
            const targets = ctx.batch.y ?? zt.argmax({ dim: 1 });
            const none = { v: [], u: [] };
            const ds = derivatives(sobolevOutput(ctx.studentLogits, out, To), x, { order1: false, order2: false, targets, projections: none, createGraph: true });
            const l = sobolevLosses(ds, { jv: [], vhv: [], targetGrad: cachedGrad }, { normalizeTarget });
            return { ...terms, target_grad: l.targetClass!.mul(wt) };
          });
        }
        return tidy(() => {
          // A separate leaf for the teacher: its derivative graph stays apart from the student's.
          const xt = x.detach().requiresGrad_(true);
          const zt = enableGrad(() => teacher.logitsWithGrad!(xt));
          const terms = kdTerms(ctx, ctx.teacherLogits ?? zt.detach(), kd);
          if (w1 === 0 && w2 === 0 && wt === 0) return terms;
          gen.manualSeed(seed * 1_000_003 + ctx.info.step);
          const projections = w1 > 0 || w2 > 0 ? randomProjections(x.shape, zt.shape[1]!, P, gen, x.dtype) : { v: [], u: [] };
          const targets = wt > 0 ? (ctx.batch.y ?? zt.argmax({ dim: 1 })) : null;
          const req = { order1: w1 > 0, order2: w2 > 0, targets, projections };
          const dt = derivatives(sobolevOutput(zt, out, To), xt, { ...req, createGraph: false });
          const ds = derivatives(sobolevOutput(ctx.studentLogits, out, To), x, { ...req, createGraph: true });
          const l = sobolevLosses(ds, dt, { normalizeTarget });
          const res: Record<string, Tensor> = { ...terms };
          if (l.order1) res.order1 = l.order1.mul(w1);
          if (l.order2) res.order2 = l.order2.mul(w2);
          if (l.targetClass) res.target_grad = l.targetClass.mul(wt);
          return res;
        });
      },
    };
  },
});
