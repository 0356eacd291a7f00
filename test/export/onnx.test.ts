// ONNX export: every model-zoo family and every standard layer, run in onnxruntime-node (and the
// same bytes in onnxruntime-web's wasm build), must give kdistill's outputs within 1e-4; only the
// student's own weights are written; `kdistill export` writes ONNX, safetensors and config.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import { randn } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Module } from '../../src/nn/module.js';
import {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GELU, LayerNorm, LeakyReLU, Linear, MaxPool2d, ReLU, Residual, Sequential, Sigmoid, SiLU, Tanh,
  AdaptiveAvgPool2d, AdaptiveMaxPool2d, BatchNorm1d,
} from '../../src/nn/layers.js';
import { createModel, type ZooModel } from '../../src/nn/zoo/index.js';
import { saveModel, loadSafetensors } from '../../src/nn/safetensors.js';
import { exportOnnx, registerOnnxExporter } from '../../src/export/onnx.js';
import { exportStudent } from '../../src/export/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';

setNumThreads(1);
const TOL = 1e-4;

/** Gives batch norms non-trivial running statistics (a few training-mode passes), then eval. */
function warm(m: Module, shape: number[]): void {
  noGrad(() => tidy(() => {
    m.train();
    for (let i = 0; i < 3; i++) m.call(randn([8, ...shape]).mul(1.5).add(0.3));
  }));
  m.eval();
}

async function compare(m: Module, shape: number[], o: { opset?: number; web?: boolean } = {}): Promise<number> {
  const x = randn([3, ...shape]);
  const want = noGrad(() => tidy(() => m.call(x).data<Float32Array>()));
  const bytes = exportOnnx(m, { inputShape: shape, ...(o.opset ? { opset: o.opset } : {}) });
  const feed = x.data<Float32Array>();
  x.dispose();
  const runtimes: [string, typeof ortNode][] = [['onnxruntime-node', ortNode]];
  if (o.web) runtimes.push(['onnxruntime-web', ortWeb as unknown as typeof ortNode]);
  let worst = 0;
  for (const [name, ort] of runtimes) {
    const s = await ort.InferenceSession.create(bytes);
    const r = await s.run({ input: new ort.Tensor('float32', feed, [3, ...shape]) });
    const got = r.logits!.data as Float32Array;
    assert.deepEqual([...r.logits!.dims], [3, ...noGrad(() => tidy(() => m.call(randn([3, ...shape])).shape.slice(1)))], `${name}: output shape`);
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(want[i]! - got[i]!));
    assert.ok(d <= TOL, `${name}: max |diff| ${d} > ${TOL}`);
    worst = Math.max(worst, d);
    await s.release();
  }
  return worst;
}

const ZOO: Record<string, unknown>[] = [
  { arch: 'mlp', inputShape: [1, 28, 28], hidden: [32, 16], numClasses: 10, batchNorm: true, dropout: 0.2 },
  { arch: 'cnn', numClasses: 10, inChannels: 1, inputSize: [28, 28], channels: [4, 8], hidden: 16, dropout: 0.1 },
  { arch: 'lenet5', numClasses: 10, inChannels: 1, inputSize: [28, 28] },
  { arch: 'vgg8', numClasses: 10, inChannels: 3, inputSize: [16, 16] },
  { arch: 'resnet8', numClasses: 10, inChannels: 3, inputSize: [16, 16] },
  { arch: 'wrn_16_1', numClasses: 10, inChannels: 3, inputSize: [16, 16], dropRate: 0.3 },
];

for (const spec of ZOO) {
  test(`ONNX export of ${spec.arch} matches kdistill in onnxruntime-node (≤ 1e-4)`, async () => {
    manualSeed(1);
    const m = createModel(spec);
    warm(m, m.inputShape);
    await compare(m, m.inputShape, { web: spec.arch === 'resnet8' || spec.arch === 'mlp' });
    m.dispose();
  });
}

test('every standard layer exports, at opset 13 (decomposed LayerNorm) and 17, in onnxruntime-node and -web', async () => {
  manualSeed(2);
  const convNet = (): Module => new Sequential(
    new Conv2d(2, 4, 3, { padding: 'same' }), new BatchNorm2d(4), new LeakyReLU(0.1),
    new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1 }), new Tanh()), new Conv2d(4, 4, 1)),
    new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1, dilation: 1 }), new Sigmoid())),
    new MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }), new AvgPool2d(2, { stride: 1, countIncludePad: false }),
    new Conv2d(4, 6, 3, { stride: 2, padding: [1, 0], bias: false, groups: 2 }), new AdaptiveMaxPool2d(2), new AdaptiveAvgPool2d([1, 2]),
    new Flatten(), new Linear(12, 8), new BatchNorm1d(8), new GELU(), new Dropout(0.5), new Linear(8, 5),
  );
  const seqNet = (): Module => new Sequential(
    new Flatten(2, 3), new LayerNorm(12), new Linear(12, 10), new GELU('tanh'), new SiLU(), new LayerNorm([4, 10], 1e-3), new ReLU(), new Flatten(), new Linear(40, 3),
  );
  for (const opset of [13, 17]) {
    const a = convNet();
    warm(a, [2, 9, 11]);
    await compare(a, [2, 9, 11], { opset, web: true });
    const b = seqNet();
    warm(b, [4, 3, 4]);
    await compare(b, [4, 3, 4], { opset, web: true });
  }
});

test('a layer without an exporter is refused by name; registering one makes it export', async () => {
  class Doubler extends Linear {}
  class Custom extends Sequential {
    override forward(x: import('../../src/tensor/tensor.js').Tensor): import('../../src/tensor/tensor.js').Tensor { return x.mul(2); }
  }
  // Subclasses inherit their parent's exporter...
  const d = new Doubler(4, 2);
  d.eval();
  await compare(d, [4]);
  // ...and an unknown Module class is named with the way to fix it.
  const { Module: Base } = await import('../../src/nn/module.js');
  class Scale extends Base {
    forward(x: import('../../src/tensor/tensor.js').Tensor): import('../../src/tensor/tensor.js').Tensor { return x.mul(3); }
  }
  const net = new Sequential(new Linear(4, 4), new Scale());
  assert.throws(() => exportOnnx(net, { inputShape: [4] }), /no exporter for Scale at '1'; register one with registerOnnxExporter\(Scale/);
  registerOnnxExporter(Scale, (ctx, _m, x) => ctx.node('Mul', [x, ctx.constant('three', [3], [])], x.shape, 'scale'));
  net.eval();
  await compare(net, [4]);
  registerOnnxExporter(Custom, (ctx, _m, x) => ctx.node('Mul', [x, ctx.constant('two', [2], [])], x.shape, 'custom'));
  await compare(new Custom().eval(), [3]);
  assert.throws(() => exportOnnx(net, { inputShape: [4], opset: 12 }), /opset must be an integer in 13\.\.17/);
});

/** Initializer names of an ONNX ModelProto (graph = field 7, initializer = 5, name = 8). */
function initializerNames(bytes: Uint8Array): string[] {
  const fields = (b: Uint8Array): [number, Uint8Array | number][] => {
    const out: [number, Uint8Array | number][] = [];
    let p = 0;
    const varint = (): number => {
      let v = 0, s = 0, c: number;
      do { c = b[p++]!; v += (c & 0x7f) * 2 ** s; s += 7; } while (c & 0x80);
      return v;
    };
    while (p < b.length) {
      const tag = varint(), f = Math.floor(tag / 8), w = tag & 7;
      if (w === 0) out.push([f, varint()]);
      else if (w === 2) { const n = varint(); out.push([f, b.subarray(p, p + n)]); p += n; }
      else if (w === 5) { out.push([f, 0]); p += 4; }
      else throw new Error(`wire type ${w}`);
    }
    return out;
  };
  const graph = fields(bytes).find(([f]) => f === 7)![1] as Uint8Array;
  return fields(graph).filter(([f]) => f === 5).map(([, t]) => new TextDecoder().decode(fields(t as Uint8Array).find(([f]) => f === 8)![1] as Uint8Array));
}

test("a method's connectors are not exported: the ONNX file holds exactly the student's weights", () => {
  manualSeed(3);
  const student = createModel({ arch: 'resnet8', numClasses: 10, inChannels: 1, inputSize: [16, 16] }) as ZooModel;
  const teacherNet = createModel({ arch: 'resnet8x4', numClasses: 10, inChannels: 1, inputSize: [16, 16] });
  const teacher = new ModuleTeacher(teacherNet, 10, 'test teacher', 'x');
  const spec = getMethod('fitnet');
  const method = spec.create(resolveParams(spec, { pairs: ['layer2'] }, 'test'));
  method.setup?.({ student, teacher, numClasses: 10, datasetSize: null, sample: randn([2, 1, 16, 16]) });
  const extra = method.extraModules?.() ?? [];
  assert.ok(extra.length > 0 && extra.some((m) => m.numParameters() > 0), 'FitNet owns a trainable connector');
  student.eval();
  const names = initializerNames(exportOnnx(student));
  const own = [...student.stateDict().keys()].filter((k) => !k.endsWith('num_batches_tracked'));
  assert.deepEqual([...names].sort(), [...own].sort());
});

test('exportStudent writes ONNX, safetensors and config.json from a model file, verified in onnxruntime-node', async () => {
  manualSeed(4);
  const dir = mkdtempSync(join(tmpdir(), 'kd-export-'));
  const m = createModel({ arch: 'lenet5', numClasses: 10, inChannels: 1, inputSize: [28, 28] });
  const file = join(dir, 'student.safetensors');
  saveModel(file, m);
  const r = await exportStudent(file, { out: join(dir, 'out') });
  for (const f of ['model.onnx', 'model.safetensors', 'config.json']) assert.ok(existsSync(join(dir, 'out', f)), f);
  assert.ok(r.maxAbsDiff !== null && r.maxAbsDiff <= TOL, `verified: ${r.maxAbsDiff} ${r.note ?? ''}`);
  const cfg = JSON.parse(readFileSync(join(dir, 'out', 'config.json'), 'utf8'));
  assert.equal(cfg.model.arch, 'lenet5');
  assert.deepEqual(cfg.inputShape, [1, 28, 28]);
  assert.equal(cfg.classes.length, 10);
  assert.deepEqual(cfg.onnx, { file: 'model.onnx', input: 'input', output: 'logits', opset: 17 });
  const st = loadSafetensors(join(dir, 'out', 'model.safetensors'));
  assert.deepEqual([...st.tensors.keys()].sort(), [...m.stateDict().keys()].sort());
  assert.equal(JSON.parse(st.metadata.model!).arch, 'lenet5');
  for (const t of st.tensors.values()) t.dispose();
  const only = await exportStudent(file, { out: join(dir, 'onnx-only'), formats: ['onnx'], opset: 13 });
  assert.deepEqual(only.files.map((f) => f.split('/').pop()), ['model.onnx', 'config.json']);
  assert.equal(only.config.safetensors, null);
  await assert.rejects(exportStudent(join(dir, 'nope')), /not found/);
  await assert.rejects(exportStudent(file, { formats: ['tflite' as never] }), /--format takes onnx and\/or safetensors/);
});
