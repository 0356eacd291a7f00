// CS-KD: golden test of its terms against the PyTorch reference written from the authors'
// train.py (scripts/fixtures/cs_kd.py → test/fixtures/methods/cs_kd.json), the same-class partner
// draw, and the transfer set reaching the method from a DataLoader through the trainer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Module } from '../../src/nn/module.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { DataLoader } from '../../src/data/loader.js';
import { horizontalFlip } from '../../src/data/augment.js';
import type { Dataset } from '../../src/data/dataset.js';
import { Rng } from '../../src/data/rng.js';
import { train } from '../../src/train/trainer.js';
import { resolveParams, type TransferSet } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { drawPartners, rowsByClass } from '../../src/methods/cs-kd.js';
import { assertGradClose } from '../losses/golden.js';
import { assertTerms, caseContext, evaluate, fixture, type MethodCase } from './golden.js';

interface Case extends MethodCase { partnerByClass: number[] }

/** A "network" that answers row r's input (the number r) with row r of a table of logits. */
class Lookup extends Module {
  constructor(readonly table: Tensor) { super(); }
  forward(x: Tensor): Tensor { return this.table.indexSelect(0, x.reshape([-1]).to('int64')); }
}

test('cs-kd: terms and gradient match the reference of the authors\' loss', () => {
  const spec = getMethod('cs-kd');
  assert.equal(spec.needsTeacher, false);
  for (const c of fixture<Case>('cs_kd').cases) {
    const C = c.shape[1];
    // One transfer-set row per class (row k has class k), so the partner of a class-k sample is row k.
    const table = torch.tensor(c.partnerByClass, { shape: [C, C], dtype: 'float64' });
    const set: TransferSet = {
      labels: Int32Array.from({ length: C }, (_, k) => k),
      rows: (idx) => torch.tensor(Float64Array.from(idx), { shape: [idx.length, 1], dtype: 'float64' }),
    };
    const student = new Lookup(table);
    const m = spec.create(resolveParams(spec, c.params));
    m.setup!({ student, teacher: null, numClasses: C, datasetSize: C, transferSet: set });
    const { s, y, ctx } = caseContext(c);
    const { values, grads: [grad] } = evaluate(m, { ...ctx, student }, [s]);
    // float64 throughout, the same formula up to reduction order: ulp-level; 1e-10 fails on a
    // missing T², a sum instead of batchmean or the KL's direction reversed.
    assertTerms(values, c.terms, 1e-10, 1e-14, c.name);
    assertGradClose(grad!, c.grad, 1e-10, 1e-14, c.name);
    torch.dispose(s, table, ...(y ? [y] : []));
  }
});

test('cs-kd: partners are rows of the same class, drawn uniformly (itself included) and reproducibly', () => {
  const labels = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 0]);
  const byClass = rowsByClass(labels);
  assert.deepEqual(byClass.map((r) => [...r]), [[0, 3, 6, 8], [1, 4, 7], [2, 5]]);
  const batch = [0, 0, 1, 2, 0, 1];
  const seen = new Set<number>();
  for (let step = 0; step < 50; step++) {
    const p = drawPartners(batch, byClass, new Rng(7, step));
    p.forEach((r, i) => assert.equal(labels[r], batch[i], `step ${step}: partner ${r} of a class-${batch[i]} sample`));
    p.forEach((r) => seen.add(r));
    assert.deepEqual([...drawPartners(batch, byClass, new Rng(7, step))], [...p], 'same stream, same partners');
  }
  assert.equal(seen.size, labels.length, 'every row of every class is drawn at some step');
  assert.throws(() => drawPartners([3], byClass, new Rng(0)), /no training row of class 3/);
  assert.throws(() => rowsByClass(Int32Array.from([0, -1])), /class indices >= 0/);
});

test('cs-kd: a clear error without a transfer set, or with an unlabeled one', () => {
  const spec = getMethod('cs-kd');
  const base = { student: {} as Module, teacher: null, numClasses: 3, datasetSize: null };
  assert.throws(() => spec.create(resolveParams(spec, {})).setup!(base), /cs-kd.*transferSet/);
  const unlabeled: TransferSet = { labels: null, rows: () => { throw new Error('unused'); } };
  assert.throws(() => spec.create(resolveParams(spec, {})).setup!({ ...base, transferSet: unlabeled }), /cs-kd.*unlabeled/);
});

test('the DataLoader gives its rows and labels as the transfer set, and the trainer hands it to cs-kd', async () => {
  const N = 12;
  // Row r holds the value r in every feature: what rows() returns is easy to read.
  const ds: Dataset = { name: 'cs-kd-test', sampleShape: [2], size: N, numClasses: 3, x: Float32Array.from({ length: N * 2 }, (_, i) => Math.floor(i / 2)), y: Int32Array.from({ length: N }, (_, i) => i % 3) };
  const loader = new DataLoader(ds, { batchSize: 4, seed: 1, prefetch: 'sync' });
  const set = loader.transferSet;
  assert.equal(set.labels, ds.y);
  torch.tidy(() => assert.deepEqual([...set.rows(Int32Array.from([5, 0, 11]), 0, 3).toFloat64Array()], [5, 5, 0, 0, 11, 11]));
  assert.throws(() => set.rows(Int32Array.from([N]), 0, 0), /row 12 out of range/);
  // With augmentation, the rows come from a stream of their own: deterministic per (epoch, batch).
  const img: Dataset = { ...ds, sampleShape: [1, 1, 2] };
  const flipping = new DataLoader(img, { batchSize: 4, seed: 1, prefetch: 'sync', augment: horizontalFlip(0.5) });
  torch.tidy(() => {
    const rows = (b: number): number[] => [...flipping.transferSet.rows(Int32Array.from({ length: N }, (_, i) => i), 0, b).toFloat64Array()];
    assert.deepEqual(rows(2), rows(2));
    assert.deepEqual(rows(2).sort((a, b) => a - b), [...Array(N).keys()].flatMap((r) => [r, r]), 'flipping a constant row keeps it');
  });
  const spec = getMethod('cs-kd');
  const student = createModel({ arch: 'mlp', hidden: [4], numClasses: 3, inputShape: [2] });
  const terms: string[][] = [];
  const m = spec.create(resolveParams(spec, {}));
  const losses = m.losses.bind(m);
  m.losses = (ctx) => { const t = losses(ctx); terms.push(Object.keys(t)); return t; };
  await train({
    student, teacher: null, method: m, numClasses: 3, epochs: 1, optimizer: { name: 'sgd', lr: 0.01 },
    train: { batchesPerEpoch: loader.numBatches, datasetSize: N, transferSet: set, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
  });
  assert.equal(terms.length, 3);
  assert.ok(terms.every((k) => k.join() === 'ce,cls'));
  student.dispose();
});
