// `kdistill export --format hf --quantize int8` read back by transformers.js with dtype 'q8'
// (which loads onnx/model_quantized.onnx), offline, against `kdistill eval` of the INT8 model: a
// quantization-aware spam run, whose model.safetensors is the fake-quantized model kdistill eval
// scores. On every test row, the model loaded by transformers.js gives kdistill's top label, so
// the accuracy computed from transformers.js's labels is the one kdistill eval prints; on the
// rows whose text transformers.js's pipeline tokenizes to kdistill's ids, the pipeline too.
//
// Score tolerance, one quantization step: the INT8 graph runs onnxruntime's optimised QDQ kernels
// (integer matmuls, requantisation), which can move an activation across a rounding boundary
// that fake quantization keeps, so logits differ by up to about one output step (kdistill's
// logit range / 255, what `export` reports as one step); a softmax score moves by at most half the
// largest logit change (|∂p_i/∂z| summed is 2p_i(1−p_i) ≤ 1/2), so scores within one step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AutoModelForSequenceClassification, AutoTokenizer, env, pipeline, Tensor as HfTensor } from '@huggingface/transformers';
import { torch } from '../../src/index.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/api.js';
import { loadModel } from '../../src/nn/safetensors.js';
import { isQuantized } from '../../src/nn/quantize.js';
import { prepareTextData } from '../../src/text/prepare.js';
import { WordPieceTokenizer } from '../../src/text/tokenizer.js';
import { exportHf } from '../../src/export/hf.js';
import { evalCommand } from '../../src/cli/eval.js';
import { readOnnx } from './onnx-reader.js';
import { printedBy } from '../cli/stdout.js';

const SPAM = resolve('test', 'fixtures', 'text', 'spam');
const TEXT = { vocabSize: 300, maxLen: 24, tokenizerChars: 800 };

function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z)), e = Array.from(z, (v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
const argmax = (a: number[]): number => a.indexOf(Math.max(...a));

test("transformers.js loads onnx/model_quantized.onnx (dtype 'q8') offline: kdistill eval's top labels and accuracy, scores within one quantization step", async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'kd-hfq8-'));
  env.allowRemoteModels = false;
  env.localModelPath = root + '/';
  try {
    const runDir = join(root, 'run');
    const e = parseExperiment({
      name: 'spam-qat', seed: 1, epochs: 5, output: runDir, quantize: { startEpoch: 0 },
      data: { dataset: 'spam-assassin', path: SPAM, batchSize: 16, text: TEXT },
      model: { arch: 'bert', layers: 1, hidden: 16, heads: 2, ffn: 32, dropout: 0, typeVocabSize: 2 },
      method: { name: 'scratch' }, optimizer: { name: 'adamw', lr: 0.02 },
    }, join(root, 'run.yaml'));
    (await runExperiment(e, { mode: 'train', resume: false })).student.dispose();

    const out = join(root, 'spam');
    const res = await exportHf(runDir, { out, quantize: 'int8', verifySamples: 16 });
    const q8 = join(out, 'onnx', 'model_quantized.onnx');
    assert.ok(existsSync(q8) && existsSync(join(out, 'onnx', 'model.onnx')));
    assert.equal(res.int8?.method, 'qat');
    // Every Linear of the 1-layer BERT (query, key, value, attention output, intermediate, output,
    // pooler, classifier) takes uint8 inputs and int8 weights; the embeddings stay float (so a
    // model this small is not smaller in INT8: its 300×16 word embeddings dominate).
    const ops = readOnnx(readFileSync(q8)).nodes.map((nd) => nd.op);
    assert.equal(ops.filter((op) => op === 'QuantizeLinear').length, 8);
    assert.equal(ops.filter((op) => op === 'DequantizeLinear').length, 16);
    // export's own check (onnxruntime-node on padded rows vs kdistill's eval-mode model): same top
    // labels, and logits within one step on all but at most one row (see the tolerance above).
    const check = res.int8!.check!;
    assert.ok(check.agreement === 1 && check.optimized.withinStep >= 15 / 16, `export's own check: ${JSON.stringify(check)}`);

    // kdistill's INT8 model as kdistill eval scores it: the QAT model file, quantizers on, on the run's test rows.
    const data = prepareTextData('spam-assassin', e.data.text!, { path: SPAM, runDir, keepTexts: true });
    const test = data.test, L = TEXT.maxLen;
    const { model } = loadModel(join(runDir, 'model.safetensors'));
    let ours: Float32Array;
    try {
      assert.ok(isQuantized(model));
      model.eval();
      ours = noGrad(() => torch.tidy(() => model.call(torch.tensor(test.x, { shape: [test.size, L] })).data<Float32Array>().slice()));
    } finally {
      model.dispose();
    }
    const C = 2;
    const step = (Math.max(...ours) - Math.min(...ours)) / 255;

    const hfModel = await AutoModelForSequenceClassification.from_pretrained('spam', { dtype: 'q8' });
    const hfFloat = await AutoModelForSequenceClassification.from_pretrained('spam', { dtype: 'fp32' });
    let correct = 0, maxScoreDiff = 0, floatDiff = 0, maxLogitDiff = 0;
    try {
      for (let r = 0; r < test.size; r++) {
        const row = Array.from(test.x.subarray(r * L, (r + 1) * L));
        const n = row.filter((v) => v !== 0).length; // right-padded: the real tokens come first
        const feeds = {
          input_ids: new HfTensor('int64', BigInt64Array.from(row.slice(0, n), BigInt), [1, n]),
          attention_mask: new HfTensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
          token_type_ids: new HfTensor('int64', new BigInt64Array(n), [1, n]),
        };
        const tl = (await hfModel(feeds)).logits.data as Float32Array;
        maxLogitDiff = Math.max(maxLogitDiff, ...Array.from(tl, (v, j) => Math.abs(v - ours[r * C + j]!)));
        const theirs = softmax(tl);
        const want = softmax(ours.subarray(r * C, (r + 1) * C));
        assert.equal(argmax(theirs), argmax(want), `test row ${r}: transformers.js q8 ${theirs} vs kdistill ${want}`);
        maxScoreDiff = Math.max(maxScoreDiff, ...theirs.map((p, j) => Math.abs(p - want[j]!)));
        if (argmax(theirs) === test.y![r]) correct++;
        const fl = softmax((await hfFloat(feeds)).logits.data as Float32Array);
        floatDiff = Math.max(floatDiff, ...fl.map((p, j) => Math.abs(p - theirs[j]!)));
      }
    } finally {
      await hfModel.dispose();
      await hfFloat.dispose();
    }
    assert.ok(maxScoreDiff <= step, `max |score diff| ${maxScoreDiff} > one step ${step}`);
    assert.ok(floatDiff > 0, "dtype 'q8' loaded another file than the float model.onnx");

    // kdistill eval of the run folder prints the same accuracy.
    const { value: code, printed } = await printedBy(() => evalCommand([runDir]));
    assert.equal(code, 0);
    const acc = `${((100 * correct) / test.size).toFixed(2)}`;
    assert.ok(printed.includes(acc), `transformers.js's accuracy ${acc} % not in kdistill eval's table:\n${printed}`);

    // The pipeline on texts its tokenizer maps to kdistill's ids: each row's text as decoded
    // (the mails themselves are longer than maxLen, and transformers.js truncates them otherwise: hf.test.ts).
    const tok = WordPieceTokenizer.load(join(runDir, 'tokenizer.json'));
    const hfTok = await AutoTokenizer.from_pretrained('spam');
    const classify = await pipeline('text-classification', 'spam', { dtype: 'q8' });
    let compared = 0;
    try {
      for (let r = 0; r < test.size; r++) {
        const row = Array.from(test.x.subarray(r * L, (r + 1) * L)).filter((v) => v !== 0);
        const text = tok.decode(row);
        const ids = [...(hfTok(text, { truncation: true }) as unknown as { input_ids: { data: BigInt64Array } }).input_ids.data].map(Number);
        if (ids.join() !== row.join()) continue;
        const want = softmax(ours.subarray(r * C, (r + 1) * C));
        const got = (await classify(text)) as { label: string; score: number }[];
        assert.equal(got[0]!.label, ['ham', 'spam'][argmax(want)], `pipeline label of test row ${r}`);
        assert.ok(Math.abs(got[0]!.score - Math.max(...want)) <= step, `pipeline score of test row ${r}: ${got[0]!.score} vs ${Math.max(...want)}`);
        compared++;
      }
    } finally {
      await classify.dispose();
    }
    t.diagnostic(`${test.size} test rows: accuracy ${acc} %, max |score diff| ${maxScoreDiff.toExponential(2)}, max |logit diff| ${maxLogitDiff.toExponential(2)} (one step ${step.toExponential(2)}), ` +
      `q8 vs fp32 file ${floatDiff.toExponential(2)}, pipeline compared on ${compared} rows; export's check ${JSON.stringify(res.int8!.check)}`);
    assert.ok(compared >= test.size / 2, `only ${compared} of ${test.size} decoded test rows tokenize back to the same ids`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
