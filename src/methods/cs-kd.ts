// Class-wise self-knowledge distillation (Yun, Park, Lee, Shin, "Regularizing Class-wise
// Predictions via Self-knowledge Distillation", CVPR 2020): no teacher; each sample's prediction is
// pulled toward the network's own prediction on another sample of the same class. Following the
// authors' code (alinlab/cs-kd, train.py and datasets.py's PairBatchSampler): for a batch x with
// labels y, a partner x'_i is drawn uniformly among the training rows of class y_i (itself
// included), its logits z' are computed by the same network without gradient, and
//   ce  = CE(z, y),
//   cls = lambda · T² · KL(softmax(z'/T) ‖ softmax(z/T)),   summed over classes, batchmean.
// The partners come from the transfer set through SetupContext.transferSet (labels to index the
// classes, rows to fetch the partners' inputs, augmented like a batch); their forward pass runs in
// the student's current mode (training, as the authors'), so batch-norm statistics see them too.
import { crossEntropy } from '../tensor/functional.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../data/rng.js';
import type { TransferSet } from '../data/source.js';
import { klDivergence } from '../losses/tempered.js';
import { defineMethod, requireLabels } from './method.js';
import { num } from './params.js';

/** Random stream of the partner draws, keyed on (epoch, step): the same pairs on a resumed run. */
const PAIR_STREAM = 0xc5cd;

/** Rows of each class: byClass[c] lists the transfer-set rows labelled c. */
export function rowsByClass(labels: Int32Array): Int32Array[] {
  const counts: number[] = [];
  for (const c of labels) {
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`cs-kd: labels must be class indices >= 0, got ${c}`);
    counts[c] = (counts[c] ?? 0) + 1;
  }
  const out = Array.from({ length: counts.length }, (_, c) => new Int32Array(counts[c] ?? 0));
  const fill = new Array<number>(counts.length).fill(0);
  labels.forEach((c, r) => { out[c]![fill[c]!++] = r; });
  return out;
}

/** For each batch label, a row of that class drawn uniformly (itself allowed, as random.choice in the authors' sampler). */
export function drawPartners(batchLabels: ArrayLike<number>, byClass: Int32Array[], rng: Rng): Int32Array {
  return Int32Array.from(batchLabels, (c) => {
    const rows = byClass[c];
    if (!rows || rows.length === 0) throw new RangeError(`cs-kd: no training row of class ${c} to pair with`);
    return rows[rng.nextInt(rows.length)]!;
  });
}

export const csKd = defineMethod({
  name: 'cs-kd',
  summary: 'Class-wise self-KD: CE + lambda·T²·KL(softmax(z\'/T) ‖ softmax(z/T)), z\' the network\'s own (no-gradient) logits on another training sample of the ' +
    'same class, drawn per sample from the transfer set; no teacher. Needs labels and a data source that gives its rows.',
  paper: 'Yun, Park, Lee, Shin, "Regularizing Class-wise Predictions via Self-knowledge Distillation", CVPR 2020 (authors\' code alinlab/cs-kd)',
  differs: 'batchSize counts the samples and the partners are drawn on top (the authors\' batch of 128 holds 64 samples and their 64 partners); ' +
    'partners are drawn by the method from the transfer set, not by a pair sampler',
  needsTeacher: false,
  teacherUse: 'no teacher: the student on same-class samples',
  params: {
    temperature: num({ default: 4, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature T of both predictions; the term is scaled by T² (authors\' --temp)' }),
    lambda: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the class-wise term (authors\' --lamda: 1 on CIFAR, 3 on fine-grained sets)' }),
  },
  create({ temperature: T, lambda }) {
    let data: { set: TransferSet; byClass: Int32Array[] } | null = null;
    return {
      setup({ transferSet }) {
        if (!transferSet) throw new Error("method 'cs-kd': the data source does not give the transfer set's rows (SetupContext.transferSet), so no same-class partner can be drawn; use an image/CSV/NPY data set");
        if (!transferSet.labels) throw new Error("method 'cs-kd': the transfer set is unlabeled; class-wise pairs need labels");
        data = { set: transferSet, byClass: rowsByClass(transferSet.labels) };
      },
      losses(ctx) {
        if (!data) throw new Error("method 'cs-kd': setup() was not called (the trainer calls it before training)");
        const y = requireLabels(ctx, 'cs-kd', 'partners are drawn from the same class');
        const { set, byClass } = data;
        const rng = new Rng(PAIR_STREAM, ctx.info.epoch, ctx.info.step);
        const partners = drawPartners(y.toFloat64Array(), byClass, rng);
        const zp = noGrad(() => tidy(() => {
          const xp = set.rows(partners, ctx.info.epoch, ctx.info.step);
          return ctx.student.call(xp.dtype === ctx.batch.x.dtype ? xp : xp.to(ctx.batch.x.dtype));
        }));
        return tidy(() => {
          const out = {
            ce: crossEntropy(ctx.studentLogits, y),
            cls: klDivergence(zp, ctx.studentLogits, T).mul(lambda),
          };
          zp.dispose();
          return out;
        });
      },
    };
  },
});
