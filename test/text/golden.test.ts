// The BERT-style encoder and the transformer distillation losses against PyTorch
// (test/fixtures/transformer/transformer.json from scripts/fixtures/transformer.py): masked
// attention (output, scores, probabilities, gradients), one encoder layer, a whole encoder, and
// every loss's value and gradient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, Tensor } from '../../src/index.js';
import { packageRoot } from '../../src/tensor/native.js';
import { Module } from '../../src/nn/module.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import { BertEncoder, EncoderLayer, MultiHeadSelfAttention, paddingMask, createModel } from '../../src/nn/zoo/index.js';
import {
  attentionMseLoss, bernoulliKd, hiddenCosineLoss, hiddenMseLoss, softCrossEntropy,
} from '../../src/losses/transformer.js';
import { assertClose, fromEnc, stateFromEnc, type Enc } from '../nn/helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const fx = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'transformer', 'transformer.json'), 'utf8')) as Any;

function gradOf(m: { namedParameters(): [string, Tensor][] }, name: string): Tensor {
  const p = m.namedParameters().find(([n]) => n === name);
  assert.ok(p, `parameter ${name}`);
  return p[1].grad!;
}

/** Wraps a mask-taking module so forwardWithFeatures can reach it with a fixed mask. */
class MaskedRunner extends Module {
  constructor(readonly inner: Module, readonly mask: Tensor) {
    super();
    this.registerModule('attn', inner);
  }
  forward(x: Tensor): Tensor {
    return this.inner.call(x, this.mask);
  }
}

test('masked multi-head attention matches PyTorch (output, scores, probabilities, gradients)', () => {
  const c = fx.modules.attention;
  torch.tidy(() => {
    const m = new MultiHeadSelfAttention(8, c.heads, 0);
    m.loadStateDict(stateFromEnc(c.state));
    const x = fromEnc(c.x).requiresGrad_(true);
    const mask = paddingMask(fromEnc(c.ids));
    const run = new MaskedRunner(m, mask);
    const res = run.forwardWithFeatures(x, ['attn.scores', 'attn.probs']);
    assertClose(res.output, c.output, 'output');
    assertClose(res.features['attn.scores']!, c.scores, 'scores');
    assertClose(res.features['attn.probs']!, c.probs, 'probs');
    res.output.mul(fromEnc(c.r)).sum().backward();
    assertClose(x.grad!, c.grad_x, 'grad x');
    assertClose(gradOf(m, 'query.weight'), c.grad_query_weight, 'grad query.weight');
    assertClose(gradOf(m, 'value.bias'), c.grad_value_bias, 'grad value.bias');
  });
});

test('encoder layer matches PyTorch (output, attention, gradients)', () => {
  const c = fx.modules.layer;
  torch.tidy(() => {
    const l = new EncoderLayer(8, c.heads, c.ffn, 0);
    l.loadStateDict(stateFromEnc(c.state));
    const x = fromEnc(c.x).requiresGrad_(true);
    const run = new MaskedRunner(l, paddingMask(fromEnc(c.ids)));
    const res = run.forwardWithFeatures(x, ['attn.attention.probs']);
    assertClose(res.output, c.output, 'output');
    assertClose(res.features['attn.attention.probs']!, c.probs, 'probs');
    res.output.mul(fromEnc(c.r)).sum().backward();
    assertClose(x.grad!, c.grad_x, 'grad x');
    assertClose(gradOf(l, 'intermediate.weight'), c.grad_intermediate_weight, 'grad intermediate.weight');
    assertClose(gradOf(l, 'attention.key.weight'), c.grad_attn_key_weight, 'grad attention.key.weight');
  });
});

test('whole encoder matches PyTorch: logits, hidden states, cross-entropy gradients; float ids work', () => {
  const c = fx.modules.encoder;
  torch.tidy(() => {
    const m = createModel(c.spec) as BertEncoder;
    m.loadStateDict(stateFromEnc(c.state));
    const ids = fromEnc(c.ids);
    const { output, features } = m.forwardWithFeatures(ids, ['embeddings', 'layer1', 'layer0.attention.probs']);
    assertClose(output, c.logits, 'logits');
    assertClose(features.embeddings!, c.embeddings, 'embeddings');
    assertClose(features.layer1!, c.layer1, 'layer1');
    assert.deepEqual(features['layer0.attention.probs']!.shape, [2, 2, 5, 5]);
    crossEntropy(output, fromEnc(c.labels)).backward();
    assertClose(gradOf(m, 'embeddings.word.weight'), c.grad_word, 'grad word embeddings');
    assertClose(gradOf(m, 'layer0.attention.query.weight'), c.grad_layer0_query_weight, 'grad layer0 query');
    // Datasets store ids as float32: same logits.
    const again = m.call(ids.to('float32'));
    assertClose(again, c.logits, 'logits from float ids');
  });
});

test('transformer distillation losses match PyTorch (value and gradient)', () => {
  const L = fx.losses;
  const fns: Record<string, (s: Tensor, t: Tensor, mask: Tensor, T: number) => Tensor> = {
    hiddenCosine: (s, t, m) => hiddenCosineLoss(s, t, m),
    hiddenMse: (s, t, m) => hiddenMseLoss(s, t, m),
    attentionMse: (s, t, m) => attentionMseLoss(s, t, m),
    attentionMseHeadMean: (s, t, m) => attentionMseLoss(s, t, m),
    softCrossEntropy: (s, t, _m, T) => softCrossEntropy(t, s, T),
    softCrossEntropyT1: (s, t, _m, T) => softCrossEntropy(t, s, T),
    bernoulliKd: (s, t, _m, T) => bernoulliKd(t, s, T),
    bernoulliKdT1: (s, t, _m, T) => bernoulliKd(t, s, T),
  };
  assert.equal(L.cases.length, Object.keys(fns).length);
  for (const c of L.cases as Any[]) {
    torch.tidy(() => {
      const s = fromEnc(c.student).to('float64').requiresGrad_(true);
      const t = fromEnc(c.teacher).to('float64');
      const mask = fromEnc(L.mask as Enc).ne(0);
      const v = fns[c.name]!(s, t, mask, c.T);
      const [g] = torch.autograd.grad(v, s);
      const value = v.item();
      assert.ok(Math.abs(value - c.value) <= 1e-9 + 1e-7 * Math.abs(c.value), `${c.name}: ${value} vs ${c.value}`);
      const ga = g!.toFloat64Array();
      const scale = Math.max(...c.grad.map(Math.abs));
      for (let i = 0; i < ga.length; i++) {
        assert.ok(Math.abs(ga[i]! - c.grad[i]) <= 1e-9 + 1e-7 * scale, `${c.name}: grad[${i}] ${ga[i]} vs ${c.grad[i]}`);
      }
    });
  }
});

test('bernoulliKd is finite for saturated logits and zero when student equals teacher', () => {
  torch.tidy(() => {
    const z = torch.tensor([[1e4, -1e4, 0], [50, -50, 3]], { dtype: 'float64' });
    assert.equal(bernoulliKd(z, z, 2).item(), 0);
    const v = bernoulliKd(z, z.neg(), 1).item();
    assert.ok(Number.isFinite(v) && v > 0);
  });
});
