// INT8 in the browser (issue 22): a tiny quantization-aware CNN exported with --quantize int8 --web
// runs its float and INT8 ONNX files in onnxruntime-web (wasm) in headless Chromium; the INT8
// file agrees with kdistill's fake-quantized model, the float one with kdistill's float model.
// The run's report then shows the sizes and latencies, and the browser demo switches its student
// between float and INT8, the QAT model of a quantization-aware run or the post-training-quantized
// model of `kdistill demo`'s float student. Latency is timed on a cross-origin-isolated page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';
import { exportStudent, type Int8Report } from '../../src/export/index.js';
import { chromiumPath, OrtWeb } from '../../src/export/web.js';
import { webTiming } from '../../src/export/index.js';
import { demoExperiment } from '../../src/cli/demo.js';
import { buildRunReport, writeReport } from '../../src/report/index.js';
import { loadModel } from '../../src/nn/safetensors.js';
import { setQuantization } from '../../src/nn/quantize.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { tensor } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { tidy } from '../../src/tensor/scope.js';
import { readOnnx } from './onnx-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'kdistill-int8-web-'));
let runDir = '';
let browser: Browser;

before(async () => {
  // A CNN (conv → batch norm, folded) quantized from the first step: the INT8 file differs from the float one.
  const e = parseExperiment({
    name: 'qat-web', epochs: 1, seed: 5, data: { subset: 300, batchSize: 50 }, student: { arch: 'cnn', channels: [4, 8], hidden: 16, dropout: 0 },
    optimizer: { name: 'adam', lr: 0.003 }, quantize: {}, output: join(dir, 'qat-web'),
  });
  await runExperiment(e, { mode: 'train', resume: false });
  runDir = e.output;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
});
after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('export --quantize int8 --web: onnxruntime-web runs the INT8 model as kdistill fake-quantizes it, and the float model as kdistill computes it', async () => {
  await assert.rejects(exportStudent(runDir, { web: true, out: join(dir, 'no-int8') }), /--web .* applies to --quantize int8/);
  const r = await exportStudent(runDir, { quantize: 'int8', web: true, verifySamples: 300 });
  const w = r.int8!.web!;
  assert.ok(w, 'web measured');
  assert.match(w.version, /^\d+\.\d+\.\d+/);
  assert.equal(w.check.samples, 300);
  // Graph optimisations off: wasm computes QuantizeLinear/DequantizeLinear as written, so as in
  // onnxruntime-node (test/export/int8.test.ts) an activation can only differ by landing on the other
  // side of a rounding boundary (division by the scale vs libtorch's multiplication by its inverse):
  // at most one output step.
  assert.ok(w.check.maxAbsDiff <= w.check.outputStep, `max |diff| ${w.check.maxAbsDiff} > one output step ${w.check.outputStep}`);
  assert.ok(w.check.agreement >= 0.995 && w.check.withinStep >= 0.995, JSON.stringify(w.check));
  // As the demo page runs it (optimisations on): top-1 agreement is the bar.
  assert.ok(w.check.optimized.agreement >= 0.995, `optimized: ${JSON.stringify(w.check.optimized)}`);
  // The float file against kdistill's float model (quantizers off): float32 both sides, only the
  // summation order of the wasm kernels differs, ~1e-6 relative on logits of magnitude ≤ ~20.
  assert.ok(w.check.float, 'float model checked');
  assert.ok(w.check.float.maxAbsDiff < 1e-4, `float max |diff| ${w.check.float.maxAbsDiff}`);
  assert.ok(w.check.float.agreement >= 0.995);
  // Timed on a cross-origin-isolated page (Chromium's 5 µs clock, not the 100 µs one): single runs, median and p90.
  assert.ok(w.timing, 'web timing recorded');
  assert.equal(w.timing.crossOriginIsolated, true);
  assert.equal(w.timing.coarse, false);
  assert.ok(w.timing.clockResolutionMs > 0 && w.timing.clockResolutionMs < 0.1, `clock resolution ${w.timing.clockResolutionMs} ms`);
  assert.ok(w.timing.runs >= 200 && w.timing.warmup > 0, JSON.stringify(w.timing));
  assert.match(w.timing.threads, /1 thread/);
  assert.ok(w.latencyMs, 'web latency measured');
  for (const m of ['float', 'int8'] as const) {
    assert.ok(w.latencyMs[m] > 0, JSON.stringify(w.latencyMs));
    assert.ok(w.latencyP90Ms && w.latencyP90Ms[m] >= w.latencyMs[m], JSON.stringify(w.latencyP90Ms));
    // The same statistic in onnxruntime-node: as many runs after as many warm-ups, one thread.
    assert.ok(r.int8!.latencyMs && r.int8!.latencyMs[m] > 0 && r.int8!.latencyP90Ms && r.int8!.latencyP90Ms[m] >= r.int8!.latencyMs[m]);
  }
  assert.deepEqual([r.int8!.timing?.runs, r.int8!.timing?.warmup], [w.timing.runs, w.timing.warmup]);

  // export/int8.json holds what was measured, and the run's report reads it.
  const saved = JSON.parse(readFileSync(join(runDir, 'export', 'int8.json'), 'utf8')) as Int8Report;
  assert.deepEqual(saved, r.int8);
  assert.deepEqual((await buildRunReport(runDir)).int8, saved);
  const html = await writeReport([runDir], join(dir, 'report.html'));
  const page = await browser.newPage();
  try {
    await page.goto(pathToFileURL(html).href);
    await page.waitForSelector('body[data-rendered]', { timeout: 60000 });
    const rows = await page.$$eval('#int8 tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    assert.equal(rows.length, 2);
    const [float, int8] = rows as [string[], string[]];
    assert.equal(float[0], 'float');
    assert.equal(int8[0], 'int8');
    // Size and both runtimes' latencies, as measured.
    assert.equal(int8[1], `${(saved.bytes.int8 / 1024).toFixed(1)} KiB`);
    assert.equal(int8[2], `${saved.latencyMs!.int8.toFixed(3)} ms`);
    assert.equal(int8[3], `${w.latencyMs.int8.toFixed(3)} ms`);
    assert.equal(float[3], `${w.latencyMs.float.toFixed(3)} ms`);
    assert.match(int8[5]!, new RegExp(`^${(w.check.agreement * 100).toFixed(2)}%`));
  } finally {
    await page.close();
  }
});

test('without the COOP/COEP headers the page is not cross-origin isolated and its latency is marked coarse', async () => {
  const web = await OrtWeb.start({ isolate: false });
  try {
    assert.equal(web.clock.crossOriginIsolated, false);
    // Chromium's clock for pages that are not isolated: 100 µs.
    assert.ok(web.clock.resolutionMs >= 0.05, `clock resolution ${web.clock.resolutionMs} ms`);
    assert.equal(webTiming(web).coarse, true);
  } finally {
    await web.close();
  }
});

test('the browser demo switches its student between the float and the INT8 model', async () => {
  const out = join(dir, 'web');
  const { buildWeb } = await import(pathToFileURL(resolve('scripts', 'build-web.mjs')).href) as {
    buildWeb: (o: object) => Promise<{ models: { student: { int8?: { file: string; method: string } } }; samples: { index: number; label: number }[] }>;
  };
  const { models, samples } = await buildWeb({ student: runDir, teacher: null, out, quiet: true });
  assert.equal(models.student.int8?.method, 'qat');
  assert.ok(existsSync(join(out, 'student.int8.onnx')));

  // kdistill's top-1 probability of each sample, fake-quantized and float; the demo is checked on the
  // sample where the two differ most, so showing the wrong model's number would be caught.
  const testSet = loadFashionMnist({ split: 'test' });
  const { model } = loadModel(join(runDir, 'model.safetensors'));
  model.eval();
  const probs = (i: number): number[] => noGrad(() => tidy(() => Array.from(model.call(tensor(testSet.x.subarray(i * 784, (i + 1) * 784), { shape: [1, 1, 28, 28] })).softmax(1).data<Float32Array>())));
  const fq = samples.map((s) => probs(s.index));
  setQuantization(model, false);
  const fl = samples.map((s) => probs(s.index));
  model.dispose();
  const top = (p: number[]): number => p.indexOf(Math.max(...p));
  let k = 0;
  for (let j = 1; j < samples.length; j++) if (Math.abs(fq[j]![top(fq[j]!)]! - fl[j]![top(fq[j]!)]!) > Math.abs(fq[k]![top(fq[k]!)]! - fl[k]![top(fq[k]!)]!)) k = j;

  await onDemoPage(out, async (page) => {
    assert.equal(await page.isVisible('#precision'), true, 'the switch is shown when there is an INT8 model');
    const shown = async (want: 'float' | 'int8'): Promise<{ top1: string; p: number }> => {
      await page.waitForSelector(`#student-result[data-model="${want}"]`);
      return page.$eval('#student-result', (el) => ({
        top1: (el as HTMLElement).dataset.top1!,
        p: Number.parseFloat(el.querySelector('.bar .p')!.textContent!) / 100,
      }));
    };
    await page.click(`.sample[data-index="${k}"]`);
    const f = await shown('float');
    await page.selectOption('#precision', 'int8');
    const q = await shown('int8');
    assert.match((await page.textContent('#student-result h2'))!, /\(INT8\)/);
    const names = testSet.classNames!;
    assert.equal(f.top1, names[top(fl[k]!)]);
    assert.equal(q.top1, names[top(fq[k]!)]);
    // Shown to 0.1 %: float within rounding (5e-4) plus float32 noise; INT8 also within what
    // onnxruntime's optimised QDQ graph moves a probability (≤ one logit step, here ~1e-2).
    assert.ok(Math.abs(f.p - fl[k]![top(fl[k]!)]!) <= 1e-3, `float: page ${f.p}, kdistill ${fl[k]![top(fl[k]!)]}`);
    assert.ok(Math.abs(q.p - fq[k]![top(fq[k]!)]!) <= 2e-2, `int8: page ${q.p}, kdistill ${fq[k]![top(fq[k]!)]}`);
    await page.selectOption('#precision', 'float');
    assert.deepEqual(await shown('float'), f);
  });
});

/** Opens the built demo folder `out` in Chromium, waits for its models to load, runs `fn`; the page must raise no error. */
async function onDemoPage(out: string, fn: (page: Page) => Promise<void>): Promise<void> {
  const { server, url } = await serve(out);
  const page = await browser.newPage();
  try {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}index.html`);
    await page.waitForSelector('body[data-ready]', { timeout: 60000 });
    await fn(page);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.close();
    server.closeAllConnections();
  }
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
/** The demo folder over loopback HTTP (wasm does not load from file://). */
function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const p = join(root, decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, ''));
    if (!p.startsWith(root) || !existsSync(p)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(p)] ?? 'application/octet-stream' });
    res.end(readFileSync(p));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` })));
}

test("the browser demo of `kdistill demo`'s float student: build-web --calibrate N quantizes it post-training and the page switches to it", async () => {
  // The demo's distilled student (runs/demo/kd, what build-web shows by default), trained tiny.
  const e = demoExperiment('kd', { seed: 3, epochs: 1, subset: 100, output: join(dir, 'demo') });
  await runExperiment(e, { mode: 'distill', resume: false });
  const out = join(dir, 'web-ptq');
  const { buildWeb } = await import(pathToFileURL(resolve('scripts', 'build-web.mjs')).href) as {
    buildWeb: (o: object) => Promise<{
      models: { student: { bytes: number; normalization: { mean: number[]; std: number[] } | null; int8?: { file: string; method: string; bytes: number } } };
      samples: { index: number }[];
    }>;
  };
  // A float run gets no INT8 model without --calibrate, and a calibration set larger than its training set is refused.
  assert.equal((await buildWeb({ student: e.output, teacher: null, out: join(dir, 'web-float'), quiet: true })).models.student.int8, undefined);
  await assert.rejects(buildWeb({ student: e.output, teacher: null, out, calibrate: 101, quiet: true }), /--calibrate must be an integer in 1\.\.100/);
  const { models, samples } = await buildWeb({ student: e.output, teacher: null, out, calibrate: 50, quiet: true });
  const q = models.student.int8!;
  assert.equal(q.method, 'ptq');
  assert.ok(q.bytes < models.student.bytes / 2, `int8 ${q.bytes} B, float ${models.student.bytes} B`);
  const graph = readOnnx(readFileSync(join(out, q.file)));
  const ops = graph.nodes.map((n) => n.op);
  assert.ok(ops.includes('QuantizeLinear') && ops.includes('DequantizeLinear'), ops.join(','));

  // The page runs that file when switched to INT8: its top-1 class is onnxruntime-node's on the same file.
  const ort = await import('onnxruntime-node');
  const testSet = loadFashionMnist({ split: 'test' });
  const session = await ort.InferenceSession.create(readFileSync(join(out, q.file)));
  const i = samples[0]!.index, norm = models.student.normalization;
  // The page feeds the pixels normalised as the run trained (models.json); one channel here.
  const x = Float32Array.from(testSet.x.subarray(i * 784, (i + 1) * 784), (v) => (norm ? (v - norm.mean[0]!) / norm.std[0]! : v));
  const z = (await session.run({ input: new ort.Tensor('float32', x, [1, 1, 28, 28]) })).logits!.data as Float32Array;
  await session.release();
  const want = testSet.classNames![z.indexOf(Math.max(...z))];
  await onDemoPage(out, async (page) => {
    assert.match((await page.textContent('#precision option[value=int8]'))!, /post-training/);
    await page.click('.sample[data-index="0"]'); // data-index: the position in samples.json; samples[0].index is its test-set index
    await page.waitForSelector('#student-result[data-model="float"]');
    await page.selectOption('#precision', 'int8');
    await page.waitForSelector('#student-result[data-model="int8"]');
    assert.equal(await page.$eval('#student-result', (el) => (el as HTMLElement).dataset.top1), want);
  });
});
