// ONNX teachers through onnxruntime-node: the fixture model (scripts/fixtures/onnx.py, exported
// by PyTorch) gives PyTorch's logits; KD trains with it, live and through the output cache; an
// experiment file names it with teacher: {onnx: path}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Dataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { OnnxTeacher } from '../../src/teachers/onnx.js';
import { cachedTeacher } from '../../src/teachers/cache.js';
import { EnsembleTeacher } from '../../src/teachers/ensemble.js';
import { train } from '../../src/train/trainer.js';
import { loadTeachers } from '../../src/run/experiment.js';
import { parseExperiment } from '../../src/config/experiment.js';

setNumThreads(1);
const dir = resolve('test', 'fixtures', 'onnx');
const MODEL = join(dir, 'tiny_cnn.onnx');
const fx = JSON.parse(readFileSync(join(dir, 'tiny_cnn.json'), 'utf8')) as { inputShape: number[]; input: number[]; logitsShape: number[]; logits: number[] };

test("an ONNX teacher returns PyTorch's logits for the exported model", () => {
  const t = new OnnxTeacher(MODEL);
  assert.equal(t.numClasses, 3);
  assert.equal(t.inputName, 'image');
  assert.equal(t.outputName, 'logits');
  assert.deepEqual(t.inputShape, [1, 8, 8]);
  assert.equal(t.numParameters, 4 * 9 + 4 + 3 * 64 + 3, 'conv 4×1×3×3 + 4, linear 3×64 + 3');
  assert.equal(t.checksum, createHash('sha256').update(readFileSync(MODEL)).digest('hex'));
  const y = tidy(() => {
    const out = t.logits(tensor(Float32Array.from(fx.input), { shape: fx.inputShape }));
    assert.deepEqual(out.shape, fx.logitsShape);
    assert.equal(out.dtype, 'float32');
    return out.data<Float32Array>();
  });
  for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i]! - fx.logits[i]!) < 1e-5, `logit ${i}: ${y[i]} vs PyTorch ${fx.logits[i]}`);
  // the batch dimension is dynamic
  const one = tidy(() => t.logits(tensor(Float32Array.from(fx.input.slice(0, 64)), { shape: [1, 1, 8, 8] })).data<Float32Array>());
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(one[i]! - fx.logits[i]!) < 1e-5);
  t.dispose();
});

test('ONNX teacher errors name the file and what to fix', () => {
  assert.throws(() => new OnnxTeacher(join(dir, 'missing.onnx')), /ONNX teacher not found: .*missing\.onnx/);
  assert.throws(() => new OnnxTeacher(MODEL, { input: 'pixels' }), /has no input named 'pixels' \(inputs: image\)/);
  assert.throws(() => new OnnxTeacher(MODEL, { output: 'probs' }), /has no output named 'probs' \(outputs: logits\)/);
  assert.throws(() => new OnnxTeacher(MODEL, { numClasses: 5 }), /has 3 classes, teacher\.numClasses says 5/);
  const bad = join(mkdtempSync(join(tmpdir(), 'kd-onnx-')), 'bad.onnx');
  writeFileSync(bad, 'not a model');
  // A file recognisably of another kind says so and how to make an ONNX model; otherwise onnxruntime's own error.
  assert.throws(() => new OnnxTeacher(bad), /bad\.onnx is not an ONNX model: it is a text file .*torch\.onnx\.export/);
  writeFileSync(bad, Buffer.from([0x08, 0x07, 0x12, 0xff, 0xfe, 0x00, 0x01, 0x02, 0x03, 0xc3, 0x28]));
  assert.throws(() => new OnnxTeacher(bad), /bad\.onnx: onnxruntime .* cannot load it/);
  const t = new OnnxTeacher(MODEL);
  assert.throws(() => t.logits(tensor(new Float32Array(2 * 16), { shape: [2, 1, 4, 4] })), /onnxruntime failed on an input of shape \[2, 1, 4, 4\]/);
  t.dispose();
});

function data(n: number): Dataset {
  let s = 11;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return { name: 'onnx-synthetic', sampleShape: [1, 8, 8], x: new Float32Array(n * 64).map(() => rnd()), y: Int32Array.from({ length: n }, (_, i) => i % 3), size: n, numClasses: 3 };
}

test('KD trains a student from an ONNX teacher, live, through the cache, and in an ensemble', async () => {
  const ds = data(96);
  const t = new OnnxTeacher(MODEL);
  const spec = getMethod('kd');
  const run = async (teacher: typeof t | ReturnType<typeof cachedTeacher> | EnsembleTeacher): Promise<{ kd: number; w: Float32Array[] }> => {
    manualSeed(3);
    const student = createModel({ arch: 'mlp', hidden: [16], numClasses: 3, inputShape: [1, 8, 8] });
    const loader = new DataLoader(ds, { batchSize: 32, seed: 1, prefetch: 'sync' });
    const r = await train({
      student, teacher, method: spec.create(resolveParams(spec, { temperature: 2, alpha: 1 })), numClasses: 3, epochs: 4,
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.5, momentum: 0.9 },
    });
    return { kd: r.epochs.map((e) => e.train.kd!).at(-1)! / r.epochs[0]!.train.kd!, w: student.parameters().map((p) => p.data<Float32Array>()) };
  };
  const liveRun = await run(t);
  assert.ok(liveRun.kd < 0.8, `the KD term falls (last/first epoch ${liveRun.kd})`);
  const cached = await run(cachedTeacher(t, ds, { dir: mkdtempSync(join(tmpdir(), 'kd-onnx-cache-')), notice: () => {} }));
  liveRun.w.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - cached.w[i]![j]!) < 1e-4, `parameter ${i}[${j}]`)));
  const ens = await run(new EnsembleTeacher([t, t]));
  liveRun.w.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - ens.w[i]![j]!) < 1e-4, `ensemble parameter ${i}[${j}]`)));
  t.dispose();
});

test('experiment files take teacher: {onnx: path, input?, output?, numClasses?}', () => {
  const base = { epochs: 1, student: { arch: 'mlp', hidden: [8] }, optimizer: { name: 'sgd', lr: 0.1 } };
  const file = join(dir, 'exp.yaml');
  const e = parseExperiment({ ...base, teacher: { onnx: 'tiny_cnn.onnx', input: 'image', output: 'logits' } }, file);
  assert.deepEqual(e.teachers, [{ onnx: MODEL, input: 'image', output: 'logits' }]);
  const t = loadTeachers(e, 3);
  assert.ok(t instanceof OnnxTeacher);
  assert.equal(t.numClasses, 3);
  assert.throws(() => parseExperiment({ ...base, teacher: { onnx: 'a.onnx', checkpoint: 'b' } }, file), /needs exactly one of 'checkpoint'.*'onnx'/);
  assert.throws(() => parseExperiment({ ...base, teacher: { checkpoint: 'b', input: 'x' } }, file), /'teacher\.input' applies to 'onnx' teachers only/);
  assert.throws(() => loadTeachers(parseExperiment({ ...base, teacher: { onnx: 'tiny_cnn.onnx', output: 'nope' } }, file), 3), /exp\.yaml: 'teacher': .*no output named 'nope'/);
});
