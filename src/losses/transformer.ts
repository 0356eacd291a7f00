// Losses of transformer distillation (DistilBERT, TinyBERT) and of multi-label distillation.
// Hidden states are [B, L, H], attention maps [B, heads, L, L]; `mask` is a bool [B, L] tensor,
// true on real tokens, so padding never contributes (denominators count real tokens only).
import type { Tensor } from '../tensor/tensor.js';
import { binaryCrossEntropyWithLogits, cosineSimilarity } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { checkLogits, checkTemperature, temperedLogSoftmax, temperedSoftmax } from './tempered.js';

function sameShape(name: string, s: Tensor, t: Tensor): void {
  if (s.shape.join() !== t.shape.join()) {
    throw new RangeError(`${name}: student and teacher shapes differ: [${s.shape.join(', ')}] vs [${t.shape.join(', ')}] (project the student first)`);
  }
}

/**
 * DistilBERT's cosine loss (Sanh et al., "DistilBERT, a distilled version of BERT", 2019):
 * mean over real tokens of 1 − cos(h_S, h_T), i.e. CosineEmbeddingLoss with target 1 on the
 * non-padding positions, which aligns the directions of the hidden states.
 */
export function hiddenCosineLoss(student: Tensor, teacher: Tensor, mask: Tensor): Tensor {
  sameShape('hiddenCosineLoss', student, teacher);
  return tidy(() => {
    const cos = cosineSimilarity(student, teacher, -1); // [B, L]
    const m = mask.to(student.dtype);
    return m.sub(cos.mul(m)).sum().div(m.sum().clampMin(1));
  });
}

/**
 * TinyBERT's hidden-state / embedding loss (Jiao et al., "TinyBERT", Findings of EMNLP 2020):
 * MSE(H_S·W_h, H_T), here averaged over the real tokens' elements (the student is projected by
 * the caller when widths differ).
 */
export function hiddenMseLoss(student: Tensor, teacher: Tensor, mask: Tensor): Tensor {
  sameShape('hiddenMseLoss', student, teacher);
  return tidy(() => {
    const m = mask.to(student.dtype).unsqueeze(-1); // [B, L, 1]
    const sq = student.sub(teacher).square().mul(m).sum();
    return sq.div(m.sum().clampMin(1).mul(student.shape[student.ndim - 1]!));
  });
}

/**
 * TinyBERT's attention loss: (1/h)·Σ_heads MSE(A_S, A_T) over the real query rows (all keys;
 * masked keys hold 0 in both maps). When the head counts differ, the head-averaged maps are
 * compared (the paper requires equal counts; averaging is our documented extension).
 */
export function attentionMseLoss(student: Tensor, teacher: Tensor, mask: Tensor): Tensor {
  if (student.ndim !== 4 || teacher.ndim !== 4) throw new RangeError('attentionMseLoss: maps must be [batch, heads, L, L]');
  return tidy(() => {
    let s = student, t = teacher;
    if (s.shape[1] !== t.shape[1]) {
      s = s.mean({ dim: 1, keepdim: true });
      t = t.mean({ dim: 1, keepdim: true });
    }
    sameShape('attentionMseLoss', s, t);
    const m = mask.to(s.dtype).unsqueeze(1).unsqueeze(-1); // [B, 1, L, 1]: query rows
    const sq = s.sub(t).square().mul(m).sum();
    return sq.div(m.sum().clampMin(1).mul(s.shape[1]! * s.shape[3]!));
  });
}

/**
 * TinyBERT's prediction-layer loss: soft cross-entropy −Σ_i softmax(z_T/T)_i · log softmax(z_S/T)_i,
 * averaged over the batch (no T² factor, as in the paper).
 */
export function softCrossEntropy(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('softCrossEntropy', teacherLogits, studentLogits);
  return tidy(() => temperedSoftmax(teacherLogits, T).mul(temperedLogSoftmax(studentLogits, T)).sum({ dim: 1 }).mean().neg());
}

/**
 * Multi-label soft term: each label is its own Bernoulli distribution, p = σ(z_T/T), q = σ(z_S/T);
 *   T² · Σ_labels KL(Bern(p) ‖ Bern(q)), averaged over the batch,
 * computed as BCE(z_S/T; p) − BCE(z_T/T; p) from logits (finite for any finite logits). The T²
 * factor keeps the gradient scale independent of T, as for the softmax KD term (Hinton 2015).
 */
export function bernoulliKd(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('bernoulliKd', teacherLogits, studentLogits);
  checkTemperature('bernoulliKd', T);
  return tidy(() => {
    const zt = teacherLogits.div(T), zs = studentLogits.div(T);
    const p = zt.sigmoid();
    const cross = binaryCrossEntropyWithLogits(zs, p, { reduction: 'none' });
    const ent = binaryCrossEntropyWithLogits(zt, p, { reduction: 'none' });
    return cross.sub(ent).sum({ dim: 1 }).mean().mul(T * T);
  });
}

/** Multi-label hard term: binary cross-entropy with logits against 0/1 targets, mean over elements. */
export function multiLabelBce(logits: Tensor, targets: Tensor): Tensor {
  return tidy(() => binaryCrossEntropyWithLogits(logits, targets.to(logits.dtype)));
}
