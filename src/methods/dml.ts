// Deep mutual learning (Zhang, Xiang, Hospedales, Lu, CVPR 2018): a cohort of K students trained
// at once from scratch, each with its own cross-entropy plus the mean KL from every other
// student's predictions to its own. The trainer's student is cohort member 0 (the exported one);
// the other K−1 are peers built from its spec and owned by the method as extra modules.
//
// update: simultaneous (the default) computes every member's loss from the same forward pass and
// takes one optimizer step for all; sequential is the paper's Algorithm 1 (and the authors' code,
// which runs one train op per network in turn): member 0 is updated from the others' current
// predictions, then member 1 from the others' predictions recomputed with member 0's new weights,
// and so on, one optimizer step per member (Method.stages). Simultaneous stays the default so the
// committed DML runs (experiments/whom) mean what they meant; sequential costs K − 1 extra
// optimizer steps and about K² forward passes per batch instead of K.
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';
import { klDivergence } from '../losses/tempered.js';
import { createModel, ZooModel } from '../nn/zoo/index.js';
import type { Module } from '../nn/module.js';
import { defineMethod, requireLabels } from './method.js';
import { choice, int, num } from './params.js';

/** A fresh model of the same architecture as `m` (a zoo model, so its spec can rebuild it). */
export function sameArchitecture(m: Module, method: string): ZooModel {
  if (!(m instanceof ZooModel)) throw new Error(`method '${method}' builds models like the student, so the student must be a zoo model (created with createModel)`);
  return createModel({ ...m.spec });
}

export const dml = defineMethod({
  name: 'dml',
  summary: 'Deep mutual learning: the student and `peers` copies of its architecture train together, each with CE plus weight·mean KL(peer‖self) to the others (peers detached); no teacher.',
  paper: 'Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018 (arXiv:1706.00384)',
  differs: 'by default the members are updated simultaneously from one forward pass (update: sequential is Algorithm 1, one member after another); ' +
    'all members see the same batch (the authors\' code draws one per member)',
  needsTeacher: false,
  params: {
    peers: int({ default: 1, min: 1, max: 7, description: 'Students trained alongside the exported one (cohort size K = peers + 1)' }),
    temperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature of the mimicry KL (the paper uses 1; the term is scaled by T²)' }),
    weight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the mimicry term; the paper uses 1 with the KL averaged over the K−1 others' }),
    peerInit: choice(['fresh', 'copy'], {
      default: 'fresh', description: "fresh = peers get their own random initialisation (the paper); copy = peers start as exact copies of the student",
    }),
    update: choice(['simultaneous', 'sequential'], {
      default: 'simultaneous', description: "simultaneous = one forward pass, one optimizer step for all members; sequential = the paper's Algorithm 1: " +
        "member k is updated in turn from the others' predictions recomputed after the updates before it (K optimizer steps per batch)",
    }),
  },
  create(p) {
    const { peers: K1, temperature: T, weight: w, peerInit: init } = p;
    const sequential = p.update === 'sequential';
    let peers: ZooModel[] = [];
    let owner: Module | null = null;
    return {
      setup({ student }) {
        // Set up once per student: a second call (e.g. by train() after a caller's) keeps the peers.
        if (owner === student) return;
        owner = student;
        for (const p of peers) p.dispose();
        peers = Array.from({ length: K1 }, () => {
          const p = sameArchitecture(student, 'dml');
          if (init === 'copy') p.loadStateDict(student.stateDict());
          return p;
        });
      },
      extraModules: () => peers,
      ...(sequential ? { stages: K1 + 1 } : {}),
      losses(ctx) {
        if (peers.length !== K1) throw new Error("method 'dml': setup() was not called (the trainer calls it before training)");
        const y = requireLabels(ctx, 'dml', 'each cohort member learns from the labels');
        if (sequential) {
          // Stage k updates member k alone; ctx.studentLogits are current (the trainer recomputes
          // them after stage 0), the peers' are computed here with their current weights.
          const k = ctx.stage ?? 0;
          return tidy(() => {
            const z = k === 0 ? ctx.studentLogits : peers[k - 1]!.call(ctx.batch.x);
            const others = [ctx.studentLogits.detach(), ...noGrad(() => peers.map((p, l) => (l === k - 1 ? null : p.call(ctx.batch.x))))]
              .filter((o, l): o is Tensor => l !== k && o !== null);
            const kl = others.map((o) => klDivergence(o, z, T)).reduce((a, b) => a.add(b));
            const prefix = k === 0 ? '' : `peer${k}_`;
            return { [`${prefix}ce`]: crossEntropy(z, y), [`${prefix}kl`]: kl.mul(w / K1) };
          });
        }
        return tidy(() => {
          const logits: Tensor[] = [ctx.studentLogits, ...peers.map((p) => p.call(ctx.batch.x))];
          const fixed = logits.map((z) => z.detach());
          const out: Record<string, Tensor> = {};
          logits.forEach((z, k) => {
            // Each member sees the others as fixed targets, as in the authors' per-network optimizers.
            const terms = fixed.filter((_, l) => l !== k).map((o) => klDivergence(o, z, T));
            const kl = terms.reduce((a, b) => a.add(b));
            const prefix = k === 0 ? '' : `peer${k}_`;
            out[`${prefix}ce`] = crossEntropy(z, y);
            out[`${prefix}kl`] = kl.mul(w / K1);
          });
          return out;
        });
      },
    };
  },
});
