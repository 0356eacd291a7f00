// Reports, the live view and the browser demo, checked in headless Chromium (playwright-core
// driving /usr/bin/chromium): every run writes report.html whose charts are drawn (non-empty SVG
// paths; screenshot in test-artifacts/report.png); `kdistill report` puts runs side by side;
// `kdistill serve` redraws as log.jsonl grows; the web demo classifies a known image correctly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { setNumThreads } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { tidy } from '../../src/tensor/scope.js';
import { parse as parseYaml } from 'yaml';
import { parseExperiment } from '../../src/config/experiment.js';
import { prepareData, runExperiment, type ExperimentResult } from '../../src/train/experiment.js';
import { checkpointTeacher } from '../../src/teachers/sources.js';
import { cachedTeacher } from '../../src/teachers/cache.js';
import { MultiLabelBatches, type MultiLabelDataset } from '../../src/text/data.js';
import { writeReport } from '../../src/report/index.js';
import { serveRuns } from '../../src/report/serve.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';

setNumThreads(1);
const ART = resolve('test-artifacts');
const root = mkdtempSync(join(tmpdir(), 'kd-report-'));
let browser: Browser;
let teacherRun: ExperimentResult, kdRun: ExperimentResult;

const yamlOf = (name: string, extra: string): string => `name: ${name}
seed: 1
threads: 1
data: { dataset: fashion-mnist, subset: 1000, batchSize: 100 }
optimizer: { name: adam, lr: 0.01 }
output: ${join(root, name)}
${extra}`;
const run = (text: string, mode: 'train' | 'distill'): Promise<ExperimentResult> =>
  runExperiment(parseExperiment(parseYaml(text), join(root, 'experiment.yaml'), text), { mode, resume: false });

before(async () => {
  process.env.KDISTILL_QUIET = '1';
  teacherRun = await run(yamlOf('teacher', 'student: { arch: cnn, channels: [4, 8], hidden: 32 }\nmethod: { name: scratch }\nepochs: 2\n'), 'train');
  kdRun = await run(yamlOf('kd', `teacher: { checkpoint: ${join(root, 'teacher', 'model.safetensors')} }
student: { arch: mlp, hidden: [16] }
method: {name: kd}
teacherCache: { mode: 'off' }
epochs: 3
`), 'distill');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  rmSync(root, { recursive: true, force: true });
});

async function openPage(url: string, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  page.on('pageerror', (e) => errors.push(e.message));
  // Self-contained means no request leaves the page's own origin.
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('file:') && !u.startsWith('http://127.0.0.1') && !u.startsWith('data:')) errors.push(`network request to ${u}`);
  });
  await page.goto(url);
  try {
    await page.waitForSelector('body[data-rendered]', { timeout: 15000 });
  } catch (e) {
    throw new Error(`${url} did not render: ${errors.join('; ') || (e as Error).message}`);
  }
  return page;
}

async function chartStats(page: Page): Promise<{ charts: number; paths: number; empty: number; rows: number; titles: string[] }> {
  return page.evaluate(() => {
    const paths = [...document.querySelectorAll('svg.chart path')];
    return {
      charts: document.querySelectorAll('svg.chart').length,
      paths: paths.length,
      empty: paths.filter((p) => !(p.getAttribute('d') ?? '').trim() || (p as SVGGraphicsElement).getBBox().width === 0).length,
      rows: document.querySelectorAll('#table tbody tr').length,
      titles: [...document.querySelectorAll('svg.chart')].map((s) => s.getAttribute('aria-label') ?? ''),
    };
  });
}

test('every run writes a self-contained report.html whose charts render in headless Chromium', async () => {
  const file = join(root, 'kd', 'report.html');
  assert.ok(existsSync(file) && existsSync(join(root, 'teacher', 'report.html')), 'both runs wrote report.html');
  const html = readFileSync(file, 'utf8');
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(https?:)?\/\//, 'no external resources');
  const errors: string[] = [];
  const page = await openPage(pathToFileURL(file).href, errors);
  const s = await chartStats(page);
  assert.deepEqual(errors, []);
  for (const t of ['loss: loss', 'loss: ce', 'loss: kd', 'test accuracy', 'test agreement', 'test ece', 'learning rate', 'teacher', 'student (kd)', 'reliability diagram']) {
    assert.ok(s.titles.includes(t), `chart '${t}' in ${JSON.stringify(s.titles)}`);
  }
  assert.equal(s.empty, 0, 'every SVG path is drawn');
  assert.ok(s.paths > 20, `${s.paths} paths`);
  assert.equal(s.rows, 2, 'teacher and student rows');
  const table = await page.textContent('#table');
  assert.match(table!, /teacher.*student \(kd\)/s);
  assert.match(table!, /\d+\.\d\d%/);
  assert.match(await page.textContent('#experiments') ?? '', /method: \{name: kd\}/);
  mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: join(ART, 'report.png'), fullPage: true });
  assert.ok(existsSync(join(ART, 'report.png')));
  // The report's numbers are the run's own.
  const data = JSON.parse(readFileSync(join(root, 'kd', 'report.json'), 'utf8'));
  assert.equal(data.models[1].accuracy, kdRun.result.final!.accuracy);
  assert.equal(data.models[1].parameters, kdRun.student.numParameters());
  await page.close();
});

test('kdistill report puts several runs side by side: one table, overlaid curves', async () => {
  const out = join(root, 'compare.html');
  await writeReport([join(root, 'teacher'), join(root, 'kd')], out);
  const errors: string[] = [];
  const page = await openPage(pathToFileURL(out).href, errors);
  const s = await chartStats(page);
  assert.deepEqual(errors, []);
  assert.equal(s.empty, 0);
  // The teacher of kd is the teacher run's student: teacher row, then both students.
  assert.equal(s.rows, 3);
  const series = await page.$$eval('svg[aria-label="test accuracy"] path[data-series]', (ps) => ps.map((p) => p.getAttribute('data-series')));
  assert.deepEqual(series, ['teacher', 'kd']);
  await page.close();
});

test('a multi-label run (debtags) reports F1s and mAP per model and draws F1 / AP per label', async () => {
  const packages = resolve('test/fixtures/text/Packages');
  const base = (name: string, extra: string): string => `name: ${name}
seed: 1
epochs: 2
data: { dataset: debtags, path: ${packages}, batchSize: 16, text: { vocabSize: 300, maxLen: 24, topTags: 5 } }
student: { arch: bert, layers: 1, hidden: 16, heads: 2, ffn: 32, dropout: 0 }
optimizer: { name: adamw, lr: 0.002 }
output: ${join(root, name)}
${extra}`;
  await run(base('tags-teacher', 'method: { name: multilabel-kd, params: { alpha: 0 } }\n'), 'train');
  await run(base('tags-kd', `teacher: { checkpoint: ${join(root, 'tags-teacher', 'model.safetensors')} }\nmethod: { name: multilabel-kd }\nteacherCache: { dir: ${join(root, 'tags-cache')} }\n`), 'distill');
  // The teacher-output cache serves multi-label batches by row index: the rows of every training
  // batch get the live teacher's logits for those rows. Not bit-equal: the cache's build pass runs
  // the teacher on batches of 256 in dataset order, training on shuffled batches of 16, and BLAS
  // kernels sum in a batch-shape- and CPU-dependent order. In float32 that moves a logit by a few
  // ulps of the values summed (~1e-6 here, logits are O(1)); 1e-4 leaves a wide margin, while a
  // row served for another row would be off by the logits' spread (O(0.1-1)).
  const kd = parseExperiment(parseYaml(base('tags-kd', '')), join(root, 'experiment.yaml'));
  const tags = prepareData({ ...kd, output: join(root, 'tags-kd') });
  const teacher = checkpointTeacher(join(root, 'tags-teacher', 'model.safetensors'));
  const cached = cachedTeacher(teacher, tags.transfer, { dir: join(root, 'tags-cache'), notice: () => {} });
  assert.equal(readdirSync(join(root, 'tags-cache')).filter((f) => f.startsWith('debtags_train')).length, 1, 'the cached run used the cache');
  let worst = 0, rows = 0;
  for (const b of new MultiLabelBatches(tags.transfer as MultiLabelDataset, 16, 1).batches(0, 0)) {
    const [c, l] = noGrad(() => tidy(() => [cached.logitsAt(b.indices!, b.x).data<Float32Array>(), teacher.logits(b.x).data<Float32Array>()]));
    for (let i = 0; i < l.length; i++) worst = Math.max(worst, Math.abs(c[i]! - l[i]!));
    rows += b.indices!.length;
    b.x.dispose();
    b.y?.dispose();
  }
  assert.equal(rows, tags.transfer.size);
  assert.ok(worst <= 1e-4, `cached vs live teacher logits on training batches: max |diff| ${worst}`);
  // End to end, the same run with the live teacher lands close. Those rounding differences in its
  // targets grow a little over training, and a metric on the test split moves in steps (one
  // example or one swapped rank: 0.0035 in mAP between two CPUs), so only a gross difference fails.
  await run(base('tags-kd-live', `teacher: { checkpoint: ${join(root, 'tags-teacher', 'model.safetensors')} }\nmethod: { name: multilabel-kd }\nteacherCache: off\n`), 'distill');
  const cachedRes = JSON.parse(readFileSync(join(root, 'tags-kd', 'result.json'), 'utf8')), liveRes = JSON.parse(readFileSync(join(root, 'tags-kd-live', 'result.json'), 'utf8'));
  for (const k of ['microF1', 'macroF1', 'subsetAccuracy', 'mAP']) assert.ok(Math.abs(cachedRes.test[k] - liveRes.test[k]) <= 0.05, `${k}: cached ${cachedRes.test[k]} vs live ${liveRes.test[k]}`);
  const data = JSON.parse(readFileSync(join(root, 'tags-kd', 'report.json'), 'utf8'));
  assert.equal(data.multiLabel.labels.length, 5);
  assert.deepEqual(data.multiLabel.models.map((m: { model: string }) => m.model), ['teacher', 'student (tags-kd)']);
  const res = JSON.parse(readFileSync(join(root, 'tags-kd', 'result.json'), 'utf8'));
  assert.equal(data.multiLabel.models[1].microF1, res.test.microF1, "the report's numbers are the run's own");
  const errors: string[] = [];
  const page = await openPage(pathToFileURL(join(root, 'tags-kd', 'report.html')).href, errors);
  assert.deepEqual(errors, []);
  const bars = await page.$$eval('#multilabel svg.chart', (svgs) => svgs.map((s) => [s.getAttribute('aria-label'), s.querySelectorAll('rect').length]));
  assert.deepEqual(bars.map((b) => b[0]), ['F1 per label', 'average precision per label']);
  assert.ok(bars.every((b) => (b[1] as number) > 0), `bars drawn: ${JSON.stringify(bars)}`);
  assert.match(await page.textContent('#multilabel') ?? '', /micro F1.*teacher.*student \(tags-kd\)/s);
  assert.match(await page.textContent('#confusion') ?? '', /not drawn for multi-label runs/);
  await page.close();
});

test('kdistill serve shows a running experiment and redraws as its log grows (loopback only)', async () => {
  // A copy of the run without its model: what a run in progress looks like.
  const live = join(root, 'live');
  cpSync(join(root, 'kd'), live, { recursive: true });
  for (const f of ['model.safetensors', 'report.json', 'report.html', 'result.json']) rmSync(join(live, f));
  const lines = readFileSync(join(live, 'log.jsonl'), 'utf8').trim().split('\n');
  const epochs = lines.filter((l) => l.includes('"type":"epoch"'));
  // Start with the first epoch only.
  const firstEnd = lines.indexOf(epochs[0]!);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(live, 'log.jsonl'), lines.slice(0, firstEnd + 1).join('\n') + '\n');
  const { server, url } = await serveRuns([live], { port: 0, everyMs: 200 });
  try {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const addr = server.address();
    assert.ok(typeof addr === 'object' && addr && addr.address === '127.0.0.1');
    const errors: string[] = [];
    const page = await openPage(url, errors);
    assert.match(await page.textContent('#table') ?? '', /epoch 1, running/);
    const before = await page.$eval('svg[aria-label="loss: kd"] path[data-series]', (p) => p.getAttribute('d')!.length);
    appendFileSync(join(live, 'log.jsonl'), lines.slice(firstEnd + 1).join('\n') + '\n');
    await page.waitForFunction(() => /epoch 3, running/.test(document.getElementById('table')!.textContent ?? ''), undefined, { timeout: 10000 });
    const afterLen = await page.$eval('svg[aria-label="loss: kd"] path[data-series]', (p) => p.getAttribute('d')!.length);
    assert.ok(afterLen > before, `the curve grew (${before} → ${afterLen} path characters)`);
    assert.equal((await chartStats(page)).empty, 0);
    assert.deepEqual(errors, []);
    const res = await fetch(`${url}data.json`);
    const data = await res.json() as { runs: { status: string; epochs: { epoch: number[] } }[] };
    assert.equal(data.runs[0]!.status, 'running');
    assert.deepEqual(data.runs[0]!.epochs.epoch, [1, 2, 3]);
    await page.close();
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.onnx': 'application/octet-stream' };
function staticServer(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const p = join(dir, decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '') || 'index.html');
    if (!p.startsWith(dir) || !existsSync(p)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(p)] ?? 'application/octet-stream' });
    res.end(readFileSync(p));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    ok({ server, url: `http://127.0.0.1:${a.port}/` });
  }));
}

test('the browser demo classifies a known Fashion-MNIST image correctly with onnxruntime-web, next to the teacher', async () => {
  const out = join(root, 'web');
  const { buildWeb } = await import(pathToFileURL(resolve('scripts', 'build-web.mjs')).href) as { buildWeb: (o: object) => Promise<{ samples: { index: number; label: number }[] }> };
  const { samples } = await buildWeb({ student: join(root, 'kd'), teacher: join(root, 'teacher'), out, quiet: true });
  // A sample both kdistill models get right: the page must say the same.
  const test = loadFashionMnist({ split: 'test' });
  const pred = (m: { call: (x: import('../../src/tensor/tensor.js').Tensor) => import('../../src/tensor/tensor.js').Tensor }, i: number): number =>
    noGrad(() => tidy(() => m.call(tensor(test.x.subarray(i * 784, (i + 1) * 784), { shape: [1, 1, 28, 28] })).argmax({ dim: 1 }).item()));
  kdRun.student.eval();
  teacherRun.student.eval();
  const k = samples.findIndex((s) => pred(kdRun.student, s.index) === s.label && pred(teacherRun.student, s.index) === s.label);
  assert.ok(k >= 0, 'some sample is classified correctly by both models');
  const label = test.classNames![samples[k]!.label]!;
  const { server, url } = await staticServer(out);
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}index.html`);
    await page.waitForSelector('body[data-ready]', { timeout: 30000 });
    await page.click(`.sample[data-index="${k}"]`);
    await page.waitForSelector('#student-result[data-top1]');
    await page.waitForSelector('#teacher-result[data-top1]');
    assert.equal(await page.$eval('#student-result', (e) => (e as HTMLElement).dataset.top1), label);
    assert.equal(await page.$eval('#teacher-result', (e) => (e as HTMLElement).dataset.top1), label);
    assert.equal(await page.locator('#student-result .bar').count(), 3, 'top-3');
    // Drawing on the canvas classifies too.
    await page.mouse.move(150, 150);
    const box = (await page.locator('#pad').boundingBox())!;
    await page.mouse.move(box.x + 100, box.y + 60);
    await page.mouse.down();
    await page.mouse.move(box.x + 180, box.y + 220, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction(() => document.getElementById('truth')!.textContent === '');
    await page.waitForSelector('#student-result .bar');
    assert.deepEqual(errors, []);
    mkdirSync(ART, { recursive: true });
    await page.screenshot({ path: join(ART, 'web-demo.png') });
    await page.close();
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
