// DAFL end to end on a tiny budget: the committed Hinton MNIST teacher (an MLP trained on real
// MNIST), a LeNet-5-half student, and a data source of all-zero images, so whatever the student
// learns about digits came from the teacher through the generator. Smoke test: a few dozen steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { torch } from '../../src/tensor/torch.js';
import { manualSeed } from '../../src/tensor/torch.js';
import { zeros } from '../../src/tensor/factories.js';
import { loadMnist } from '../../src/data/fashion-mnist.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { BatchSource, TrainBatch } from '../../src/data/source.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { checkpointTeacher } from '../../src/teachers/sources.js';
import { withInputPipeline } from '../../src/teachers/pipeline.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { DaflGenerator } from '../../src/methods/dafl.js';
import { train } from '../../src/train/trainer.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';
import { imageGridPng } from '../../src/util/png.js';
import { buildRunReport } from '../../src/report/data.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MNIST = { mean: [0.1307], std: [0.3081] };

/** Batches of zeros: the data source only counts steps and sets the batch size. */
function blankSource(steps: number, batch: number): BatchSource {
  return {
    batchesPerEpoch: steps,
    *batches(_epoch: number, from: number): Iterable<TrainBatch> {
      for (let i = from; i < steps; i++) yield { x: zeros([batch, 1, 28, 28]), y: null };
    },
  };
}

/** The first n MNIST test images, normalised as DAFL's data (the student's input pipeline). */
function normalisedTest(n: number): Dataset {
  const d = loadMnist({ split: 'test', limit: n });
  const x = d.x.map((v) => (v - MNIST.mean[0]!) / MNIST.std[0]!);
  return { ...d, x };
}

test('dafl generator: DAFL\'s MNIST architecture maps noise to normalised images of the teacher\'s input shape', () => {
  manualSeed(0);
  const g = new DaflGenerator(100, [1, 28, 28]);
  torch.tidy(() => {
    const x = g.call(torch.randn([16, 100]));
    assert.deepEqual(x.shape, [16, 1, 28, 28]);
    // The last batch norm has no affine part: per batch the images have mean 0 and variance
    // v/(v + 1e-5) for the tanh outputs' variance v, which at initialisation is ≥ 1e-4 (→ > 0.9).
    assert.ok(Math.abs(x.mean().item()) < 1e-5);
    const v = x.var({ correction: 0 }).item();
    assert.ok(v > 0.9 && v <= 1 + 1e-6, `variance ${v}`);
  });
  // l1 (100 → 128·7·7), three convs, two affine batch norms and the first one: DAFL's parameter count.
  const expected = 100 * 6272 + 6272 + 128 + 128 + (128 * 128 * 9 + 128) + 256 + (128 * 64 * 9 + 64) + 128 + (64 * 9 + 1);
  assert.equal(g.numParameters(), expected);
  assert.throws(() => new DaflGenerator(10, [1, 30, 30]), /multiple of 4/);
  g.dispose();
});

test('dafl: with the generator\'s own learning rate at 0 only the student moves; the terms are logged by name', async () => {
  manualSeed(1);
  const teacher = withInputPipeline(checkpointTeacher(join(root, 'assets', 'hinton-mnist-teacher.safetensors')), MNIST, undefined);
  const student = createModel({ arch: 'lenet5', numClasses: 10, width: 0.5 });
  const spec = getMethod('dafl');
  const method = spec.create(resolveParams(spec, { generatorLr: 0 }));
  const evalSet = normalisedTest(64);
  const before = student.parameters().map((t) => t.clone());
  let genBefore: number[] = [];
  const r = await train({
    student, teacher, method, train: blankSource(2, 32), evalSet, numClasses: 10, epochs: 1, optimizer: { name: 'adam', lr: 2e-3 },
    onEpoch: () => { /* after the steps */ },
  });
  const gen = method.extraModules!()[0]!;
  genBefore = gen.parameters().map((t) => t.sum().item());
  assert.deepEqual(Object.keys(r.epochs[0]!.train).sort(), ['activation', 'entropy', 'kd', 'loss', 'oneHot']);
  assert.ok(student.parameters().some((t, i) => !t.equal(before[i]!)), 'the student was updated');
  // Re-run two steps on the same generator: with lr 0 its weights stay as they are.
  await train({ student, teacher, method, train: blankSource(2, 32), numClasses: 10, epochs: 1, optimizer: { name: 'adam', lr: 2e-3 } });
  assert.deepEqual(gen.parameters().map((t) => t.sum().item()), genBefore);
  torch.dispose(...before);
});

test('dafl smoke test: 25 data-free steps lift the student above chance on real MNIST test digits', async () => {
  manualSeed(1);
  const teacher = withInputPipeline(checkpointTeacher(join(root, 'assets', 'hinton-mnist-teacher.safetensors')), MNIST, undefined);
  const student = createModel({ arch: 'lenet5', numClasses: 10, width: 0.5 });
  const spec = getMethod('dafl');
  const method = spec.create(resolveParams(spec, {}));
  const evalSet = normalisedTest(1000);
  // A budget of seconds (the generator's convolutions cost ~0.5 s per step of 32 on one core):
  // the student's rate is raised from the authors' 2e-3 to 1e-2 so that 25 steps show an effect.
  const r = await train({ student, teacher, method, train: blankSource(25, 32), evalSet, numClasses: 10, epochs: 1, optimizer: { name: 'adam', lr: 1e-2 } });
  // Chance is 10 %, always answering the commonest class of these 1,000 digits 12.6 %; the binomial
  // spread of a guesser is ~1 point, so 15 % is far beyond luck yet well below what this budget
  // reaches (~23 %): a weak assertion that the teacher's knowledge crossed through the generator.
  assert.ok(r.final!.accuracy > 0.15, `test accuracy ${r.final!.accuracy}`);
  // The generator spread its images over the classes: the entropy term (−H in decimal digits,
  // −1 when the 10 classes are even) is well below that of a single class (0).
  assert.ok(r.epochs[0]!.train.entropy! / 5 < -0.5, `entropy ${r.epochs[0]!.train.entropy}`);
  // The images the run folder shows (samples.png): the generator's, of the input shape.
  const s = method.samples!(12)!;
  assert.deepEqual(s.shape, [12, 1, 28, 28]);
  const png = imageGridPng(s.contiguous().data<Float32Array>(), s.shape, 6);
  assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  assert.equal(png.readUInt32BE(16), 6 * 30 + 2, 'grid width: 6 images of 28 px with 2 px borders');
  s.dispose();
});

test('dafl run: no teacher-output cache is built over the real transfer set, which a data-free method never reads', async () => {
  // Regression: runExperiment built the cache (one teacher pass over every training image) before
  // the generator replaced every batch.
  const dir = mkdtempSync(join(tmpdir(), 'kd-dafl-cache-'));
  const e = parseExperiment({
    name: 'dafl-cache', seed: 0, epochs: 1, data: { dataset: 'mnist', subset: 64, batchSize: 32, normalize: { mean: [0.1307], std: [0.3081] } },
    teacher: { checkpoint: join(root, 'assets', 'hinton-mnist-teacher.safetensors') }, model: { arch: 'lenet5', width: 0.5 },
    method: { name: 'dafl' }, optimizer: { name: 'adam', lr: 2e-3 }, teacherCache: { mode: 'on', dir: join(dir, 'cache') }, output: join(dir, 'run'),
  }, join(dir, 'dafl.yaml'));
  await runExperiment(e, { mode: 'distill', resume: false });
  assert.ok(!existsSync(join(dir, 'cache')) || readdirSync(join(dir, 'cache')).length === 0, `cache files: ${existsSync(join(dir, 'cache')) ? readdirSync(join(dir, 'cache')).join(', ') : ''}`);
  // The run's report shows the generator's samples it saved (issue 20: the picture in the report).
  const rep = await buildRunReport(join(dir, 'run'), { evaluate: false });
  assert.deepEqual(rep.images?.map((i) => i.pngBase64), [readFileSync(join(dir, 'run', 'samples.png')).toString('base64')]);
});
