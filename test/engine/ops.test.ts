// Golden tests: every op family and its gradient against PyTorch on fixed inputs
// (test/fixtures/engine/ops.json, written by scripts/fixtures/engine.py). Each case below has a
// twin of the same name in that script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, F, tidy, Tensor } from '../../src/index.js';
import { assertTensorClose, fromEnc, loadFixture, type Enc } from './helpers.js';

interface OpCase {
  name: string;
  inputs: Record<string, Enc>;
  outputs: Enc[];
  gradOutputIndex?: number[];
  gradOutputs?: Enc[];
  grads?: Record<string, Enc | null>;
}

type In = Record<string, Tensor>;
type Impl = (i: In) => Tensor | Tensor[];
const pair = (r: { values: Tensor; indices: Tensor }): Tensor[] => [r.values, r.indices];
const sdpa = (r: { output: Tensor; weights: Tensor }): Tensor[] => [r.output, r.weights];

const impls: Record<string, Impl> = {
  // elementwise, broadcasting, scalars
  add_bcast: ({ a, b }) => a!.add(b!),
  add_alpha: ({ a, b }) => a!.add(b!, 2.5),
  sub_scalar: ({ a }) => a!.sub(1.25),
  rsub_bcast: ({ a, b }) => a!.sub(b!, 0.5),
  mul_bcast: ({ a, b }) => a!.mul(b!),
  mul_scalar: ({ a }) => a!.mul(3),
  div_tensor: ({ a, b }) => a!.div(b!),
  div_scalar: ({ a }) => a!.div(4.0),
  pow_scalar: ({ a }) => a!.pow(3),
  pow_tensor: ({ a, b }) => a!.pow(b!),
  neg: ({ a }) => a!.neg(),
  abs: ({ a }) => a!.abs(),
  exp: ({ a }) => a!.exp(),
  log: ({ a }) => a!.log(),
  log1p: ({ a }) => a!.log1p(),
  expm1: ({ a }) => a!.expm1(),
  sqrt: ({ a }) => a!.sqrt(),
  rsqrt: ({ a }) => a!.rsqrt(),
  square: ({ a }) => a!.square(),
  reciprocal: ({ a }) => a!.reciprocal(),
  sin: ({ a }) => a!.sin(),
  cos: ({ a }) => a!.cos(),
  erf: ({ a }) => a!.erf(),
  clamp: ({ a }) => a!.clamp(-0.5, 0.7),
  maximum: ({ a, b }) => a!.maximum(b!),
  minimum: ({ a, b }) => a!.minimum(b!),
  lerp: ({ a, b }) => a!.lerp(b!, 0.3),
  gt_tensor: ({ a, b }) => a!.gt(b!),
  le_scalar: ({ a }) => a!.le(0.25),
  eq_int: ({ a, b }) => a!.eq(b!),
  ne_scalar: ({ a }) => a!.ne(1),
  logical: ({ a, b }) => a!.logicalAnd(b!.logicalNot()),
  int_arith: ({ a, b }) => a!.mul(b!).add(3),
  where: ({ c, a, b }) => torch.where(c!, a!, b!),
  where_scalar: ({ c, a }) => torch.where(c!, a!, 0.5),
  masked_fill: ({ a, m }) => a!.maskedFill(m!, -2.0),
  // shape
  reshape: ({ a }) => a!.reshape(3, -1).mul(1.0),
  view: ({ a }) => a!.view(6, 2),
  permute: ({ a }) => a!.permute(2, 0, 1),
  transpose: ({ a }) => a!.transpose(0, 2),
  squeeze: ({ a }) => a!.squeeze(1),
  unsqueeze: ({ a }) => a!.unsqueeze(-1),
  flatten: ({ a }) => a!.flatten(1),
  cat: ({ a, b }) => torch.cat([a!, b!], 1),
  stack: ({ a, b }) => torch.stack([a!, b!], 1),
  narrow: ({ a }) => a!.narrow(1, 1, 2),
  slice_step: ({ a }) => a!.slice(1, 1, 5, 2),
  index_select: ({ a, i }) => a!.indexSelect(0, i!),
  gather: ({ a, i }) => a!.gather(1, i!),
  scatter_src: ({ a, i, s }) => a!.scatter(1, i!, s!),
  scatter_value: ({ a, i }) => a!.scatter(1, i!, 9.0),
  scatter_add: ({ a, i, s }) => a!.scatterAdd(1, i!, s!),
  expand: ({ a }) => a!.expand(2, 3, 4),
  broadcast_to: ({ a }) => a!.broadcastTo([2, 4]),
  index_tensor: ({ a, i }) => a!.index([i!]),
  chunk_split: ({ a }) => [...a!.chunk(2, 1), ...a!.split([1, 2], 0)],
  // reductions
  sum_all: ({ a }) => a!.sum(),
  sum_dim_keep: ({ a }) => a!.sum({ dim: [0, 2], keepdim: true }),
  mean_dim: ({ a }) => a!.mean({ dim: 1 }),
  mean_keep: ({ a }) => a!.mean({ dim: -1, keepdim: true }),
  max_dim: ({ a }) => pair(a!.max({ dim: 1 })),
  min_dim_keep: ({ a }) => pair(a!.min({ dim: 0, keepdim: true })),
  max_all: ({ a }) => a!.max(),
  argmax: ({ a }) => a!.argmax({ dim: 1 }),
  argmax_keep: ({ a }) => a!.argmax({ dim: 0, keepdim: true }),
  argmin_all: ({ a }) => a!.argmin(),
  logsumexp: ({ a }) => a!.logsumexp({ dim: 1 }),
  logsumexp_keep: ({ a }) => a!.logsumexp({ dim: 0, keepdim: true }),
  std_dim: ({ a }) => a!.std({ dim: 1 }),
  std_all: ({ a }) => a!.std(),
  var_biased_keep: ({ a }) => a!.var({ dim: 0, correction: 0, keepdim: true }),
  norm_all: ({ a }) => a!.norm(),
  norm_p1_dim: ({ a }) => a!.norm({ p: 1, dim: 1, keepdim: true }),
  amax: ({ a }) => a!.amax({ dim: 1 }),
  prod_dim: ({ a }) => a!.prod({ dim: 1 }),
  cumsum: ({ a }) => a!.cumsum(1),
  // linear algebra
  matmul_bcast: ({ a, b }) => a!.matmul(b!),
  matmul_vec: ({ a, b }) => torch.matmul(a!, b!),
  bmm: ({ a, b }) => a!.bmm(b!),
  einsum_bmm: ({ a, b }) => torch.einsum('bij,bjk->bik', a!, b!),
  einsum_rowdot: ({ a, b }) => torch.einsum('ij,ij->i', a!, b!),
  // nn functions
  linear: ({ x, w, b }) => F.linear(x!, w!, b!),
  linear_nobias: ({ x, w }) => F.linear(x!, w!),
  conv1d: ({ x, w, b }) => F.conv1d(x!, w!, b!, { stride: 2, padding: 1 }),
  conv2d: ({ x, w, b }) => F.conv2d(x!, w!, b!, { stride: 1, padding: 1 }),
  conv2d_stride_groups: ({ x, w }) => F.conv2d(x!, w!, null, { stride: 2, groups: 2 }),
  conv2d_dilation: ({ x, w }) => F.conv2d(x!, w!, null, { padding: 2, dilation: 2 }),
  max_pool2d: ({ x }) => F.maxPool2d(x!, 2),
  max_pool2d_stride_pad: ({ x }) => F.maxPool2d(x!, 3, { stride: 2, padding: 1 }),
  avg_pool2d: ({ x }) => F.avgPool2d(x!, 2),
  avg_pool2d_pad: ({ x }) => F.avgPool2d(x!, 3, { stride: 2, padding: 1 }),
  max_pool1d: ({ x }) => F.maxPool1d(x!, 2),
  avg_pool1d: ({ x }) => F.avgPool1d(x!, 3, { stride: 2 }),
  adaptive_avg_pool2d: ({ x }) => F.adaptiveAvgPool2d(x!, [2, 3]),
  adaptive_avg_pool2d_1: ({ x }) => F.adaptiveAvgPool2d(x!, 1),
  adaptive_max_pool2d: ({ x }) => F.adaptiveMaxPool2d(x!, 2),
  adaptive_avg_pool1d: ({ x }) => F.adaptiveAvgPool1d(x!, 3),
  adaptive_max_pool1d: ({ x }) => F.adaptiveMaxPool1d(x!, 3),
  batch_norm_train: ({ x, w, b, rm, rv }) => {
    const y = F.batchNorm(x!, rm!, rv!, { weight: w, bias: b, training: true, momentum: 0.2, eps: 1e-5 });
    return [y, rm!.clone(), rv!.clone()];
  },
  batch_norm_eval: ({ x, w, b, rm, rv }) => F.batchNorm(x!, rm!, rv!, { weight: w, bias: b, training: false, eps: 1e-5 }),
  layer_norm: ({ x, w, b }) => F.layerNorm(x!, [4], w, b, 1e-5),
  layer_norm_2d_noaffine: ({ x }) => F.layerNorm(x!, [3, 4]),
  embedding: ({ i, w }) => F.embedding(i!, w!),
  relu: ({ a }) => F.relu(a!),
  gelu: ({ a }) => F.gelu(a!),
  gelu_tanh: ({ a }) => F.gelu(a!, 'tanh'),
  silu: ({ a }) => F.silu(a!),
  tanh: ({ a }) => F.tanh(a!),
  sigmoid: ({ a }) => F.sigmoid(a!),
  leaky_relu: ({ a }) => F.leakyRelu(a!, 0.1),
  softplus: ({ a }) => F.softplus(a!),
  softmax: ({ a }) => F.softmax(a!, 1),
  log_softmax: ({ a }) => F.logSoftmax(a!, -1),
  softmax_dim0: ({ a }) => F.softmax(a!, 0),
  one_hot: ({ i }) => F.oneHot(i!, 5),
  one_hot_infer: ({ i }) => F.oneHot(i!),
  cross_entropy: ({ z, y }) => F.crossEntropy(z!, y!),
  cross_entropy_smooth: ({ z, y }) => F.crossEntropy(z!, y!, { labelSmoothing: 0.1 }),
  cross_entropy_weight_sum: ({ z, y, w }) => F.crossEntropy(z!, y!, { weight: w, reduction: 'sum' }),
  cross_entropy_none_ignore: ({ z, y }) => F.crossEntropy(z!, y!, { reduction: 'none', ignoreIndex: 1 }),
  cross_entropy_probs: ({ z, t }) => F.crossEntropy(z!, t!),
  cross_entropy_4d: ({ z, y }) => F.crossEntropy(z!, y!, { labelSmoothing: 0.2 }),
  nll_loss: ({ lp, y }) => F.nllLoss(lp!, y!),
  nll_loss_weight_none: ({ lp, y, w }) => F.nllLoss(lp!, y!, { weight: w, reduction: 'none' }),
  kl_div_batchmean: ({ s, t }) => F.klDiv(F.logSoftmax(s!, 1), F.softmax(t!, 1), { reduction: 'batchmean' }),
  kl_div_log_target_sum: ({ s, t }) => F.klDiv(F.logSoftmax(s!, 1), F.logSoftmax(t!, 1), { reduction: 'sum', logTarget: true }),
  kl_div_none: ({ s, t }) => F.klDiv(F.logSoftmax(s!, 1), F.softmax(t!, 1), { reduction: 'none' }),
  mse: ({ a, b }) => F.mseLoss(a!, b!),
  mse_sum: ({ a, b }) => F.mseLoss(a!, b!, 'sum'),
  l1: ({ a, b }) => F.l1Loss(a!, b!),
  l1_none: ({ a, b }) => F.l1Loss(a!, b!, 'none'),
  smooth_l1: ({ a, b }) => F.smoothL1Loss(a!, b!),
  smooth_l1_beta: ({ a, b }) => F.smoothL1Loss(a!, b!, 'sum', 0.5),
  cosine_similarity: ({ a, b }) => F.cosineSimilarity(a!, b!),
  cosine_similarity_dim: ({ a, b }) => F.cosineSimilarity(a!, b!, -1),
  bce_logits: ({ z, t }) => F.binaryCrossEntropyWithLogits(z!, t!),
  bce_logits_posw: ({ z, t, pw }) => F.binaryCrossEntropyWithLogits(z!, t!, { posWeight: pw, reduction: 'sum' }),
  sdpa: ({ q, k, v }) => sdpa(F.scaledDotProductAttention(q!, k!, v!)),
  sdpa_mask: ({ q, k, v, m }) => sdpa(F.scaledDotProductAttention(q!, k!, v!, { mask: m })),
  sdpa_causal: ({ q, k, v }) => sdpa(F.scaledDotProductAttention(q!, k!, v!, { isCausal: true })),
};

const cases = loadFixture<OpCase[]>('ops.json');

test('every fixture case has an implementation and every implementation a fixture', () => {
  const names = new Set(cases.map((c) => c.name.split('@')[0]!));
  assert.deepEqual([...names].filter((n) => !(n in impls)), []);
  assert.deepEqual(Object.keys(impls).filter((n) => !names.has(n)), []);
  assert.ok(cases.length >= 150, `only ${cases.length} cases`);
});

for (const c of cases) {
  test(`op ${c.name}: values and gradients match PyTorch`, () => {
    const impl = impls[c.name.split('@')[0]!];
    assert.ok(impl, `no implementation for ${c.name}`);
    tidy(() => {
      const inputs: In = {};
      for (const [k, e] of Object.entries(c.inputs)) inputs[k] = fromEnc(e, c.grads !== undefined && k in c.grads);
      const r = impl(inputs);
      const outs = Array.isArray(r) ? r : [r];
      assert.equal(outs.length, c.outputs.length, 'number of outputs');
      outs.forEach((o, i) => assertTensorClose(o, c.outputs[i]!, `${c.name} output ${i}`));
      if (!c.grads || !c.gradOutputs || !c.gradOutputIndex) return;
      const keys = Object.keys(c.grads);
      const gs = torch.autograd.grad(
        c.gradOutputIndex.map((i) => outs[i]!),
        keys.map((k) => inputs[k]!),
        { gradOutputs: c.gradOutputs.map((g) => fromEnc(g)), allowUnused: true },
      );
      keys.forEach((k, j) => {
        const want = c.grads![k]!;
        const got = gs[j] ?? null;
        if (want === null) assert.equal(got, null, `${c.name}: d/d${k} should be unused`);
        else {
          assert.ok(got, `${c.name}: no gradient for ${k}`);
          assertTensorClose(got, want, `${c.name} d/d${k}`);
        }
      });
    });
  });
}
