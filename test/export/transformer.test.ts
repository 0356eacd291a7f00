// ONNX export of the BERT-style encoder (arch 'bert'): int64 token ids [batch, maxLen] in, the
// padding mask computed inside the graph, logits equal to kdistill's within 1e-4 in
// onnxruntime-node (and -web), for single- and multi-label heads, at opset 17 and 13; and
// `kdistill export` (exportStudent) on a bert model file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import { randnLike, tensor } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { tidy } from '../../src/tensor/scope.js';
import { createModel } from '../../src/nn/zoo/index.js';
import type { BertEncoder } from '../../src/nn/zoo/transformer.js';
import { saveModel } from '../../src/nn/safetensors.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { exportStudent, randomTokenIds } from '../../src/export/index.js';
import { exportCommand } from '../../src/cli/deliver.js';
import { printedBy } from '../cli/stdout.js';

setNumThreads(1);
const TOL = 1e-4;
const B = 5, L = 12, VOCAB = 50;

function bert(multiLabel: boolean, numClasses: number): BertEncoder {
  const m = createModel({ arch: 'bert', vocabSize: VOCAB, maxLen: L, layers: 2, hidden: 16, heads: 2, ffn: 32, numClasses, multiLabel, dropout: 0.1 }) as BertEncoder;
  // Weights far from BERT's init (std 0.02 makes attention near-uniform and the logits nearly
  // input-independent, which would hide a wrong mask): std 0.4, LayerNorm gains around 1.
  noGrad(() => {
    for (const [name, p] of m.namedParameters()) {
      tidy(() => (/norm\.weight$/.test(name) ? p.copy_(randnLike(p).mul(0.2).add(1)) : p.copy_(randnLike(p).mul(0.4))));
    }
  });
  m.eval();
  return m;
}

function kdistill(m: BertEncoder, ids: BigInt64Array, length = L): Float32Array {
  return noGrad(() => tidy(() => m.call(tensor(ids, { shape: [ids.length / length, length] })).data<Float32Array>()));
}

async function run(ort: typeof ortNode, bytes: Uint8Array, ids: BigInt64Array): Promise<{ data: Float32Array; dims: number[] }> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    assert.deepEqual(s.inputNames, ['input']);
    const r = await s.run({ input: new ort.Tensor('int64', ids, [ids.length / L, L]) });
    return { data: r.logits!.data as Float32Array, dims: [...r.logits!.dims] };
  } finally {
    await s.release();
  }
}

const maxDiff = (a: Float32Array, b: Float32Array): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

for (const [label, multiLabel, classes, opset, web] of [
  ['single-label', false, 3, 17, true],
  ['multi-label', true, 4, 13, false],
] as const) {
  test(`bert (${label}, opset ${opset}) exports with int64 ids and matches kdistill in onnxruntime-node${web ? ' and -web' : ''} (≤ 1e-4), padded rows included`, async () => {
    manualSeed(11);
    const m = bert(multiLabel, classes);
    const ids = randomTokenIds(B, L, VOCAB, 7); // row i has i padded (0) positions at the end
    assert.ok(ids.filter((v) => v === 0n).length >= 10, 'the batch has padded positions');
    const want = kdistill(m, ids);
    const bytes = exportOnnx(m, { opset });
    for (const [name, ort] of [['onnxruntime-node', ortNode], ...(web ? [['onnxruntime-web', ortWeb as unknown as typeof ortNode]] : [])] as [string, typeof ortNode][]) {
      const got = await run(ort, bytes, ids);
      assert.deepEqual(got.dims, [B, classes], `${name}: output shape`);
      const d = maxDiff(want, got.data);
      assert.ok(d <= TOL, `${name}: max |diff| ${d} > ${TOL}`);
    }
    // Padding to maxLen is exact: kdistill on a shorter unpadded sequence gives the same logits.
    const short = 7;
    const shortIds = randomTokenIds(2, short, VOCAB, 3); // row 1 ends with one pad
    const padded = new BigInt64Array(2 * L);
    for (let b = 0; b < 2; b++) for (let j = 0; j < short; j++) padded[b * L + j] = shortIds[b * short + j]!;
    const d = maxDiff(kdistill(m, shortIds, short), (await run(ortNode, bytes, padded)).data);
    assert.ok(d <= TOL, `padded to maxLen vs unpadded: max |diff| ${d}`);
    // A float input is refused with the reason.
    assert.throws(() => exportOnnx(m, { inputDtype: 'float32' }), /takes int64 token ids/);
    m.dispose();
  });
}

test('kdistill export on a bert model file writes an int64-input ONNX verified against kdistill', async () => {
  manualSeed(12);
  const dir = mkdtempSync(join(tmpdir(), 'kd-export-bert-'));
  const m = bert(false, 2);
  const file = join(dir, 'bert.safetensors');
  saveModel(file, m);
  const r = await exportStudent(file, { out: join(dir, 'out') });
  assert.ok(r.maxAbsDiff !== null && r.maxAbsDiff <= TOL, `verified: ${r.maxAbsDiff} ${r.note ?? ''}`);
  const cfg = JSON.parse(readFileSync(join(dir, 'out', 'config.json'), 'utf8'));
  assert.equal(cfg.model.arch, 'bert');
  assert.deepEqual(cfg.inputShape, [L]);
  assert.equal(cfg.inputDtype, 'int64');
  assert.deepEqual(cfg.inputRange, [0, VOCAB - 1]);
  assert.equal(cfg.normalization, null);
  const ids = randomTokenIds(3, L, VOCAB, 5);
  const d = maxDiff(kdistill(m, ids), (await run(ortNode, readFileSync(join(dir, 'out', 'model.onnx')), ids)).data);
  assert.ok(d <= TOL, `exported file: max |diff| ${d}`);
  // The CLI command itself, at opset 13.
  const { value: code, printed: outText } = await printedBy(() => exportCommand([file, '--out', join(dir, 'cli'), '--opset', '13', '--format', 'onnx']));
  assert.equal(code, 0);
  assert.match(outText, /exported .* \(bert\)/);
  const diff = /max \|diff\| = (\S+)/.exec(outText);
  assert.ok(diff && Number(diff[1]) <= TOL, outText);
  m.dispose();
});
