// Features from any teacher: a held-back PyTorch model (scripts/fixtures/teacher_features.py),
// saved as scripted and traced TorchScript and as ONNX, gives kdistill the submodule outputs
// that PyTorch's forward hooks captured on a fixed input; fitnet and attention compute the same
// loss from them as from the reference; wrong names fail clearly; a run on the teacher-output
// cache equals a live one; and experiment files run both methods on both kinds of teacher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tensor } from '../../src/tensor/factories.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { parseSafetensors } from '../../src/nn/safetensors.js';
import { createModel } from '../../src/nn/zoo/index.js';
import type { Dataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type Method, type Params } from '../../src/methods/method.js';
import { TorchScriptTeacher } from '../../src/teachers/sources.js';
import { OnnxTeacher } from '../../src/teachers/onnx.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { cachedTeacher, TeacherOutputCache } from '../../src/teachers/cache.js';
import { train } from '../../src/train/trainer.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';

setNumThreads(1);
const DIR = resolve('test', 'fixtures', 'teacher-features');
const ref = parseSafetensors(readFileSync(join(DIR, 'reference.safetensors')));
const X = ref.tensors.get('x')!;
const PATHS = JSON.parse(ref.metadata.paths!) as string[];
const ONNX = JSON.parse(ref.metadata.onnxNames!) as Record<string, string>;
const refOf = (path: string): Tensor => ref.tensors.get(`module.${path}`)!;

/** Largest |a − b| − rtol·|b| over the elements: ≤ atol means every element is within atol + rtol·|b|. */
function excess(a: Tensor, b: Tensor, rtol: number): number {
  assert.deepEqual(a.shape, b.shape);
  return tidy(() => a.sub(b).abs().sub(b.abs().mul(rtol)).max().item());
}

// TorchScript runs the same libtorch 1.13 kernels as the Python that wrote the reference, on the
// same float32 input with one thread; only the graph executor's op order may differ. Values are
// O(1) and each passes through at most six layers of sums of ≤ 36 products, so float32 rounding
// (6e-8 relative per operation) stays well below 1e-5.
const TS_TOL = { atol: 1e-5, rtol: 1e-5 };
// onnxruntime uses its own convolution kernels (another summation order) on weights into which the
// exporter folded batch norm (rounded again): a few float32 ulps more, same order of magnitude.
const ONNX_TOL = { atol: 3e-5, rtol: 1e-4 };

for (const file of ['teacher.pt', 'teacher_traced.pt']) {
  test(`a TorchScript teacher (${file}) gives the submodule outputs PyTorch's forward hooks capture`, () => {
    const t = new TorchScriptTeacher(join(DIR, file), 10);
    tidy(() => {
      const r = t.features(X, PATHS);
      for (const p of PATHS) assert.ok(excess(r.features[p]!, refOf(p), TS_TOL.rtol) <= TS_TOL.atol, `${file} '${p}'`);
      assert.ok(excess(r.output, ref.tensors.get('logits')!, TS_TOL.rtol) <= TS_TOL.atol, 'logits');
      // The head's output is the logits (one value, two names), and the BN running statistics were
      // used (eval mode): a wrong mode would move 'layer1' by far more than the tolerance.
      assert.ok(r.features.head!.equal(r.output));
      // Another list of paths (its own graph) in another order gives the same values.
      const again = t.features(X, ['layer2.0.shortcut', 'stem']);
      assert.ok(again.features.stem!.equal(r.features.stem!) && again.features['layer2.0.shortcut']!.equal(r.features['layer2.0.shortcut']!));
      // The module itself is unchanged: its methods and forward() are as loaded.
      assert.deepEqual(t.module.methodNames(), ['forward']);
      assert.ok(t.logits(X).equal(r.output));
      assert.equal(t.module.training, false);
    });
  });
}

test('an ONNX teacher gives intermediate values by name, the tensors the hooks captured', () => {
  const t = new OnnxTeacher(join(DIR, 'teacher.onnx'));
  tidy(() => {
    const names = PATHS.map((p) => ONNX[p]!);
    const r = t.features(X, names);
    for (const p of PATHS) assert.ok(excess(r.features[ONNX[p]!]!, refOf(p), ONNX_TOL.rtol) <= ONNX_TOL.atol, `ONNX value ${ONNX[p]} (module '${p}')`);
    assert.ok(excess(r.output, ref.tensors.get('logits')!, ONNX_TOL.rtol) <= ONNX_TOL.atol, 'logits');
    // The plain session still serves the logits, and the feature session takes other batch and image sizes.
    assert.ok(t.logits(X).equal(r.output));
    const big = t.features(tensor(new Float32Array(3 * 28 * 28).fill(0.5), { shape: [3, 1, 28, 28] }), [ONNX.layer1!]);
    assert.deepEqual(big.features[ONNX.layer1!]!.shape, [3, 2, 28, 28]);
  });
  t.dispose();
});

test('a feature name that is not there, or has no single output, is refused naming the file, the name and what there is', () => {
  const t = new TorchScriptTeacher(join(DIR, 'teacher.pt'), 10);
  const fails = (names: string[], re: RegExp): void => assert.throws(() => tidy(() => t.features(X, names)), re);
  fails(['layr1'], /teacher\.pt: no submodule 'layr1' \(did you mean 'layer1'\?\); submodules: stem, stem\.0, stem\.1, layer1, layer1\.conv1/);
  fails(['layer1.act'], /teacher\.pt: submodule 'layer1\.act' is called 2 times by forward\(\), so it has no single output .*forward\(\) calls once: .*layer1\.conv2/);
  fails(['unused'], /teacher\.pt: submodule 'unused' is never called by forward\(\).*calls once: head, layer1,/);
  // A trace records a module's second call as its method forward1: still two calls.
  const traced = new TorchScriptTeacher(join(DIR, 'teacher_traced.pt'), 10);
  assert.throws(() => tidy(() => traced.features(X, ['layer1.act'])), /teacher_traced\.pt: submodule 'layer1\.act' is called 2 times by forward\(\)/);
  // 'output:<key>' names still pick elements of forward()'s own output.
  tidy(() => assert.ok(t.features(X, ['output:0']).features['output:0']!.equal(t.logits(X))));

  const o = new OnnxTeacher(join(DIR, 'teacher.onnx'));
  assert.throws(() => o.features(X, ['layer1']), /teacher\.onnx: the model has no value named 'layer1'; values containing 'layer1': \/layer1\/conv1\/Conv_output_0, .*not by module path/);
  assert.throws(() => o.features(X, ['/pool/GlobalAveragePool_output'], /* a near miss */), /no value named '\/pool\/GlobalAveragePool_output'; values containing/);
  assert.throws(() => o.features(X, ['nope']), /no value named 'nope'; values \(\d+\): \/stem\/stem\.0\/Conv_output_0, /);
  o.dispose();
});

const make = (name: string, given: Params): Method => {
  const spec = getMethod(name);
  return spec.create(resolveParams(spec, given));
};

/** The method's loss terms on the fixture batch, with the given teacher features. */
function terms(m: Method, student: ReturnType<typeof createModel>, teacher: Teacher, tfeat: Record<string, Tensor>, tout: Tensor): Record<string, number> {
  return tidy(() => {
    const s = student.forwardWithFeatures(X, m.features!.student);
    const ctx = {
      student, teacher, batch: { x: X, y: tensor(BigInt64Array.from([3n, 7n]), { shape: [2] }) }, info: { epoch: 0, epochs: 1, step: 0, numClasses: 10 }, indices: null,
      studentLogits: s.output, teacherLogits: tout, studentFeatures: s.features, teacherFeatures: tfeat,
    };
    return Object.fromEntries(Object.entries(m.losses(ctx)).map(([k, v]) => [k, v.item()]));
  });
}

test('fitnet and attention on a TorchScript or ONNX teacher compute the loss the reference features give', () => {
  const ts = new TorchScriptTeacher(join(DIR, 'teacher.pt'), 10);
  const onnx = new OnnxTeacher(join(DIR, 'teacher.onnx'));
  // Student cnn on 6×6: stage1 [2, 3, 3], stage2 [4, 1, 1]; teacher layer1 [2, 6, 6], layer2 [4, 3, 3], pool [4, 1, 1].
  const cases: [string, string, Teacher, Record<string, string>][] = [
    ['fitnet', 'hint', ts, { stage1: 'layer2', stage2: 'pool' }],
    ['attention', 'at', ts, { stage1: 'layer1', stage2: 'layer2' }],
    ['fitnet', 'hint', onnx, { stage1: ONNX.layer2!, stage2: ONNX.pool! }],
    ['attention', 'at', onnx, { stage1: ONNX.layer1!, stage2: ONNX.layer2! }],
  ];
  for (const [name, term, teacher, pairs] of cases) {
    manualSeed(5);
    const student = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, inputSize: [6, 6], channels: [2, 4], hidden: 8 });
    const m = make(name, { pairs: Object.entries(pairs).map(([s, t]) => ({ student: s, teacher: t })) });
    m.setup?.({ student, teacher, numClasses: 10, sample: X, datasetSize: null });
    const pathOf = (tname: string): string => (teacher === ts ? tname : PATHS.find((p) => ONNX[p] === tname)!);
    const live = tidy(() => {
      const r = noGrad(() => teacher.features!(X, m.features!.teacher));
      return terms(m, student, teacher, r.features, r.output);
    });
    const reference = terms(m, student, teacher, Object.fromEntries(m.features!.teacher.map((n) => [n, refOf(pathOf(n))])), ref.tensors.get('logits')!);
    const what = `${name} on ${teacher.description}`;
    assert.ok(reference[term]! > 1e-6, `${what}: the ${term} term is not trivially zero`);
    // The terms are means of squared differences of O(1) values: the features' relative error (≤ 1e-4) carries over.
    for (const k of Object.keys(reference)) assert.ok(Math.abs(live[k]! - reference[k]!) <= 1e-4 * Math.abs(reference[k]!) + 1e-7, `${what}: '${k}' ${live[k]} vs reference ${reference[k]}`);
  }
  onnx.dispose();
});

function data(n: number, size: number): Dataset {
  let s = 23;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return { name: `teacher-features-${size}`, sampleShape: [1, size, size], x: new Float32Array(n * size * size).map(() => rnd()), y: Int32Array.from({ length: n }, (_, i) => i % 10), size: n, numClasses: 10 };
}

test('a fitnet / attention run on the teacher-output cache (features keyed by name) trains as the live teacher does', async () => {
  const ds = data(48, 6);
  const run = async (method: string, params: Params, teacher: Teacher): Promise<{ losses: Record<string, number>; w: Float32Array[] }> => {
    manualSeed(3);
    const student = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, inputSize: [6, 6], channels: [2, 4], hidden: 8 });
    const loader = new DataLoader(ds, { batchSize: 16, seed: 1, prefetch: 'sync' });
    const r = await train({
      student, teacher, method: make(method, params), numClasses: 10, epochs: 2, sample: tensor(ds.x.slice(0, 72), { shape: [2, 1, 6, 6] }),
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    });
    return { losses: r.epochs.at(-1)!.train, w: student.parameters().map((p) => p.data<Float32Array>()) };
  };
  const dir = mkdtempSync(join(tmpdir(), 'kd-teacher-features-'));
  // fitnet's default beta (100) diverges on this untrained pair; 1 keeps the steps finite.
  for (const [method, params, teacher, names] of [
    ['fitnet', { pairs: [{ student: 'stage1', teacher: 'layer2' }, { student: 'stage2', teacher: 'pool' }], beta: 1 }, new TorchScriptTeacher(join(DIR, 'teacher.pt'), 10), ['layer2', 'pool']],
    ['attention', { pairs: [{ student: 'stage1', teacher: ONNX.layer1! }, { student: 'stage2', teacher: ONNX.layer2! }] }, new OnnxTeacher(join(DIR, 'teacher.onnx')), [ONNX.layer1!, ONNX.layer2!]],
  ] as const) {
    const liveRun = await run(method, params, teacher);
    const cache = cachedTeacher(teacher, ds, { dir, features: names, notice: () => {} });
    assert.equal(cache.cache.status, 'built');
    const cachedRun = await run(method, params, cache);
    // The cache stores the float32 values the teacher computed, in batches of its own size: equal
    // up to the kernels' batch-size-dependent rounding, which two epochs of SGD do not amplify past 1e-5.
    for (const [k, v] of Object.entries(liveRun.losses)) assert.ok(Math.abs(v - cachedRun.losses[k]!) <= 1e-5 * Math.abs(v) + 1e-7, `${method}: '${k}' live ${v}, cached ${cachedRun.losses[k]}`);
    liveRun.w.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - cachedRun.w[i]![j]!) < 1e-5, `${method}: parameter ${i}[${j}]`)));
    // The file holds the features under their names, and other names key another file.
    const f = parseSafetensors(readFileSync(cache.cache.path));
    assert.deepEqual(JSON.parse(f.metadata.features!), [...names].sort());
    for (const n of names) assert.equal(f.tensors.get(`feature.${n}`)!.shape[0], 48);
    for (const t of f.tensors.values()) t.dispose();
    assert.notEqual(TeacherOutputCache.pathFor(teacher, ds, { dir, features: [names[0]!] }), cache.cache.path);
    if (teacher instanceof OnnxTeacher) teacher.dispose();
  }
});

/** An MNIST-layout folder of IDX files (uncompressed) with `n` train and n/2 test 8×8 images, labels i mod 10. */
function idxFolder(root: string, n: number): string {
  const dir = join(root, 'idx');
  mkdirSync(dir);
  let s = 31;
  const write = (prefix: string, count: number): void => {
    const head = (dims: number[]): Buffer => Buffer.from([0, 0, 8, dims.length, ...dims.flatMap((d) => [d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255])]);
    const px = Buffer.from(Array.from({ length: count * 64 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24));
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), Buffer.concat([head([count, 8, 8]), px]));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), Buffer.concat([head([count]), Buffer.from(Array.from({ length: count }, (_, i) => i % 10))]));
  };
  write('train', n);
  write('t10k', n / 2);
  return dir;
}

test('experiment files run fitnet with a TorchScript teacher and attention with an ONNX teacher, features cached', async () => {
  process.env.KDISTILL_QUIET = '1';
  const root = mkdtempSync(join(tmpdir(), 'kd-teacher-features-exp-'));
  const images = idxFolder(root, 64);
  for (const [name, teacher, method, key] of [
    ['ts-fitnet', { torchscript: join(DIR, 'teacher.pt') }, { name: 'fitnet', params: { pairs: [{ student: 'stage1', teacher: 'layer1' }, { student: 'stage2', teacher: 'layer2' }], beta: 1 } }, 'hint'],
    ['onnx-attention', { onnx: join(DIR, 'teacher.onnx') }, { name: 'attention', params: { pairs: [{ student: 'stage1', teacher: ONNX.layer1! }, { student: 'stage2', teacher: ONNX.layer2! }] } }, 'at'],
  ] as const) {
    const cacheDir = join(root, `cache-${name}`);
    const e = parseExperiment({
      name, epochs: 1, seed: 2, output: join(root, `run-${name}`), data: { dataset: 'mnist', path: images, batchSize: 32 },
      teacher, student: { arch: 'cnn', channels: [2, 4], hidden: 8 }, method, optimizer: { name: 'sgd', lr: 0.05 },
      teacherCache: { dir: cacheDir },
    }, join(root, `${name}.yaml`));
    const r = await runExperiment(e, { mode: 'distill', resume: false });
    const v = r.result.epochs[0]!.train[key]!;
    assert.ok(Number.isFinite(v) && v > 0, `${name}: '${key}' ${v}`);
    const files = readdirSync(cacheDir);
    assert.equal(files.length, 1, `${name}: one cache file`);
    const meta = parseSafetensors(readFileSync(join(cacheDir, files[0]!))).metadata;
    assert.deepEqual(JSON.parse(meta.features!).length, 2, `${name}: features cached`);
  }
});
