// INT8 end to end (issue 22): tiny quantization-aware runs (an MLP with batch norm, a CNN) and a
// float run, exported with --quantize int8 (--calibrate for the float one), run in
// onnxruntime-node and compared with kdistill's fake-quantized model; the QDQ graph's scales and
// zero points are read back from the file and compared with the observers'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';
import { exportStudent } from '../../src/export/index.js';
import { loadModel } from '../../src/nn/safetensors.js';
import { layerQuantizers, weightQParams } from '../../src/nn/quantize.js';
import { tidy } from '../../src/tensor/scope.js';
import { readLogEpochs } from '../../src/train/trainer.js';
import { isQuantized } from '../../src/nn/quantize.js';
import { readOnnx } from './onnx-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'kdistill-int8-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function run(name: string, student: Record<string, unknown>, extra: Record<string, unknown>): Promise<string> {
  const e = parseExperiment({
    name, epochs: 2, seed: 4, data: { subset: 300, batchSize: 50 }, student, optimizer: { name: 'adam', lr: 0.003 },
    output: join(dir, name), ...extra,
  });
  await runExperiment(e, { mode: 'train', resume: false });
  return e.output;
}

/** Exports with --quantize int8 and checks the INT8 file against kdistill and its graph against the observers. */
async function checkQat(runDir: string, layers: number, foldedBatchNorms: number): Promise<void> {
  const r = await exportStudent(runDir, { quantize: 'int8', verifySamples: 300 });
  const q = r.int8!;
  assert.equal(q.method, 'qat');
  assert.ok(q.check, `checked: ${q.note ?? ''}`);
  // The QDQ graph as written computes the same dequantized values as fake quantization; the only
  // source of difference is an activation on a rounding boundary (onnxruntime divides by the scale,
  // libtorch multiplies by its inverse), which would move it one input step: within one output step.
  assert.ok(q.check.maxAbsDiff <= q.check.outputStep, `max |diff| ${q.check.maxAbsDiff} > one output step ${q.check.outputStep}`);
  assert.ok(q.check.agreement >= 0.995 && q.check.withinStep >= 0.995, JSON.stringify(q.check));
  // As deployed (onnxruntime's QDQ graph transforms on): top-1 agreement still ≥ 99.5 %.
  assert.ok(q.check.optimized.agreement >= 0.995, `optimized: ${JSON.stringify(q.check.optimized)}`);
  assert.equal(q.check.samples, 300);
  assert.ok(q.bytes.int8 < q.bytes.float, `int8 ${q.bytes.int8} B vs float ${q.bytes.float} B`);
  assert.ok(q.latencyMs && q.latencyMs.int8 > 0 && q.latencyMs.float > 0);
  // Single timed runs: the p90 is recorded beside the median, with how the runs were made.
  assert.ok(q.latencyP90Ms && q.latencyP90Ms.int8 >= q.latencyMs.int8 && q.latencyP90Ms.float >= q.latencyMs.float, JSON.stringify(q.latencyP90Ms));
  assert.ok(q.timing && q.timing.runs >= 200 && q.timing.warmup > 0 && /1 intra-op thread/.test(q.timing.threads), JSON.stringify(q.timing));
  assert.equal(r.config.onnxInt8?.file, 'model.int8.onnx');

  const g = readOnnx(readFileSync(q.file));
  const ops = g.nodes.map((n) => n.op);
  assert.equal(ops.filter((o) => o === 'QuantizeLinear').length, layers, 'one QuantizeLinear per Linear/Conv2d input');
  assert.equal(ops.filter((o) => o === 'DequantizeLinear').length, 2 * layers, 'input and weight DequantizeLinear per layer');
  const floatOps = readOnnx(readFileSync(join(runDir, 'export', 'model.onnx'))).nodes.map((n) => n.op);
  assert.equal(floatOps.filter((o) => o === 'BatchNormalization').length - ops.filter((o) => o === 'BatchNormalization').length, foldedBatchNorms, 'folded batch norms are left out');
  const { model } = loadModel(join(runDir, 'model.safetensors'));
  try {
    model.eval();
    const qs = layerQuantizers(model);
    assert.equal(qs.length, layers);
    tidy(() => {
      for (const { layer, quant } of qs) {
        const base = layer.path;
        const init = (k: string) => {
          const t = g.initializers.get(`${base}.${k}`);
          assert.ok(t, `initializer ${base}.${k}`);
          return t;
        };
        const obs = quant.input.qparamValues();
        assert.equal(new Float32Array(init('input_scale').raw.slice().buffer)[0], obs.scale, `${base} input scale`);
        assert.equal(init('input_zero_point').raw[0], obs.zeroPoint, `${base} input zero point`);
        assert.equal(init('input_zero_point').dtype, 2, 'uint8 activations');
        assert.equal(init('weight_int8').dtype, 3, 'int8 weights');
        const w = weightQParams(quant.folded(layer).weight, quant.spec);
        assert.deepEqual(Array.from(new Float32Array(init('weight_scale').raw.slice().buffer)), Array.from(w.scale.data<Float32Array>()), `${base} weight scales`);
        assert.deepEqual(Array.from(new Int8Array(init('weight_zero_point').raw.slice().buffer)), Array.from(w.zeroPoint.data<Int32Array>()), `${base} weight zero points`);
      }
    });
  } finally {
    model.dispose();
  }
}

test('QAT MLP (batch norm folded, float warm-up epoch): the INT8 ONNX equals the fake-quantized model in onnxruntime-node', async () => {
  const runDir = await run('qat-mlp', { arch: 'mlp', hidden: [32, 16], batchNorm: true }, { quantize: { startEpoch: 1 } });
  // Epoch 0 trained in float, then the run switched quantization on and the saved model has it on.
  assert.equal(readLogEpochs(runDir).length, 2);
  const { model } = loadModel(join(runDir, 'model.safetensors'));
  assert.equal(isQuantized(model), true);
  model.dispose();
  await checkQat(runDir, 3, 2);
});

test('QAT CNN (per-tensor weights, min-max observer): the INT8 ONNX equals the fake-quantized model in onnxruntime-node', async () => {
  const runDir = await run('qat-cnn', { arch: 'cnn', channels: [4, 8], hidden: 16, dropout: 0 },
    { epochs: 1, quantize: { perChannel: false, observer: 'minmax' } });
  await checkQat(runDir, 4, 2);
});

test('post-training quantization of a float run: --calibrate N sets the ranges; without it the export says what is missing', async () => {
  const runDir = await run('float-mlp', { arch: 'mlp', hidden: [32] }, { epochs: 1 });
  await assert.rejects(exportStudent(runDir, { quantize: 'int8' }), /is a float run: --quantize int8 needs --calibrate N/);
  await assert.rejects(exportStudent(runDir, { quantize: 'int8', calibrate: 0 }), /--calibrate must be an integer in 1\.\.300/);
  const r = await exportStudent(runDir, { quantize: 'int8', calibrate: 200, verifySamples: 300, out: join(dir, 'ptq') });
  const q = r.int8!;
  assert.equal(q.method, 'ptq');
  assert.equal(q.calibrationSamples, 200);
  assert.ok(q.check && q.check.agreement >= 0.995 && q.check.maxAbsDiff <= q.check.outputStep && q.check.optimized.agreement >= 0.995, JSON.stringify(q.check));
  // The exported safetensors model is the float one: calibration did not touch the run's model.
  const { metadata } = loadModel(join(dir, 'ptq', 'model.safetensors'));
  assert.equal(metadata.quantize, undefined);
});

test('quantize: in the experiment file is checked (startEpoch within the run, known fields)', () => {
  const base = { epochs: 2, data: { subset: 300 }, student: { arch: 'mlp', hidden: [8] } };
  assert.throws(() => parseExperiment({ ...base, quantize: { startEpoch: 2 } }, 'q.yaml'), /q\.yaml: 'quantize\.startEpoch'.*is 2, but epochs run 0\.\.1/);
  assert.throws(() => parseExperiment({ ...base, quantize: { weights: 'int4' } }, 'q.yaml'), /quantize\.weights.*must be 'int8', got "int4"/);
  assert.throws(() => parseExperiment({ ...base, quantize: { perchannel: true } }, 'q.yaml'), /quantize\.perchannel.*not a known key.*perChannel/);
  const e = parseExperiment({ ...base, quantize: { startEpoch: 1 } }, 'q.yaml');
  assert.deepEqual(e.quantize, { weights: 'int8', activations: 'uint8', perChannel: true, weightScheme: 'symmetric', observer: 'moving-average', averagingConstant: 0.01, startEpoch: 1 });
});
