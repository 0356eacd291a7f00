// Reports, the live view and the browser demo, checked in headless Chromium (playwright-core
// driving /usr/bin/chromium): every run writes report.html whose charts are drawn (non-empty SVG
// paths; screenshot in test-artifacts/report.png); `kdistill report` puts runs side by side;
// `kdistill serve` redraws as log.jsonl grows; the web demo classifies a known image correctly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { getNumThreads, setNumThreads } from '../../src/tensor/torch.js';
import { inferenceMsPerSample } from '../../src/train/timing.js';
import { tensor } from '../../src/tensor/factories.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { tidy } from '../../src/tensor/scope.js';
import { parse as parseYaml } from 'yaml';
import { parseExperiment } from '../../src/config/experiment.js';
import { prepareData, type ExperimentResult } from '../../src/run/experiment.js';
import { runExperiment } from '../../src/api.js';
import { checkpointTeacher } from '../../src/teachers/sources.js';
import { cachedTeacher } from '../../src/teachers/cache.js';
import { MultiLabelBatches, type MultiLabelDataset } from '../../src/text/data.js';
import { writeReport } from '../../src/report/index.js';
import { serveRuns } from '../../src/report/serve.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { imageGridPng } from '../../src/util/png.js';

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
    // Generous: a loaded 2-core machine has taken over 15 s to start Chromium and render; a broken page never renders.
    await page.waitForSelector('body[data-rendered]', { timeout: 60000 });
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

/** Legends of a chart: every drawn series has an entry with a swatch of its colour (and dash), and no entry overlaps the plot area. */
async function legendProblems(page: Page, chart: string): Promise<string[]> {
  return page.$eval(`svg.chart[aria-label="${chart}"]`, (svg) => {
    const problems: string[] = [];
    const box = (e: Element): DOMRect => e.getBoundingClientRect();
    const overlap = (a: DOMRect, b: DOMRect): boolean => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    // The plot area: what the axes (and their tick marks) enclose.
    const axes = [...svg.querySelectorAll('line.a')].map(box);
    const plot = { left: Math.min(...axes.map((r) => r.left)), right: Math.max(...axes.map((r) => r.right)), top: Math.min(...axes.map((r) => r.top)), bottom: Math.max(...axes.map((r) => r.bottom)) } as DOMRect;
    const entries = new Map([...svg.querySelectorAll('g.lgi')].map((g) => [g.getAttribute('data-legend'), g]));
    const series = [...svg.querySelectorAll('path[data-series]')];
    if (series.length === 0) problems.push('no series');
    for (const p of series) {
      const label = p.getAttribute('data-series');
      const g = entries.get(label);
      const sw = g?.querySelector('.sw');
      if (!g || !sw) { problems.push(`'${label}': no legend entry with a swatch`); continue; }
      const swColor = sw.tagName === 'rect' ? sw.getAttribute('fill') : sw.getAttribute('stroke');
      if (swColor !== p.getAttribute('stroke')) problems.push(`'${label}': swatch ${swColor}, series ${p.getAttribute('stroke')}`);
      if (sw.tagName === 'line' && sw.getAttribute('stroke-dasharray') !== p.getAttribute('stroke-dasharray')) problems.push(`'${label}': swatch dash differs from the series'`);
      if (box(sw).width === 0) problems.push(`'${label}': swatch not drawn`);
    }
    for (const [label, g] of entries) if (overlap(box(g), plot)) problems.push(`legend '${label}' overlaps the plot area`);
    return problems;
  });
}

/** The x tick labels of a chart. */
const xTicks = (page: Page, chart: string): Promise<string[]> => page.$$eval(`svg.chart[aria-label="${chart}"] text.xt`, (ts) => ts.map((t) => t.textContent ?? ''));

/** How far the charts of a grid reach across the page, as a fraction of the viewport's width. */
const gridSpan = (page: Page, id: string): Promise<number> => page.$eval(`#${id}`, (g) => {
  const rs = [...g.querySelectorAll('svg.chart')].map((c) => c.getBoundingClientRect());
  return (Math.max(...rs.map((r) => r.right)) - Math.min(...rs.map((r) => r.left))) / document.documentElement.clientWidth;
});

/**
 * Every count in a confusion matrix against the cell under it: WCAG contrast ratio of the text's
 * rendered fill to the cell's, (L1 + 0.05) / (L2 + 0.05). Returns the lowest.
 */
const worstCountContrast = (page: Page, chart: string): Promise<{ n: number; worst: number; at: string }> => page.$eval(`svg.chart[aria-label="${chart}"]`, (svg) => {
  const rgb = (c: string): number[] => (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
  const lum = (c: number[]): number => {
    const lin = (v: number): number => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(c[0]!) + 0.7152 * lin(c[1]!) + 0.0722 * lin(c[2]!);
  };
  let worst = Infinity, at = '', n = 0;
  for (const t of svg.querySelectorAll('text.cn')) {
    t.scrollIntoView({ block: 'center' });
    const r = t.getBoundingClientRect();
    const cell = document.elementsFromPoint(r.left + r.width / 2, r.top + r.height / 2).find((e) => e.tagName === 'path' && svg.contains(e));
    if (!cell) return { n, worst: 0, at: `no cell under '${t.textContent}'` };
    const [a, b] = [lum(rgb(getComputedStyle(t).fill)), lum(rgb(getComputedStyle(cell).fill))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    n++;
    if (ratio < worst) { worst = ratio; at = `${t.textContent} (${getComputedStyle(t).fill} on ${getComputedStyle(cell).fill})`; }
  }
  return { n, worst, at };
});

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
  // The teacher row names the teacher's file.
  assert.match(await page.textContent('#table tr.teacher') ?? '', new RegExp(`checkpoint ${join(root, 'teacher', 'model.safetensors').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  // Legends: a colour swatch per series, below the plot instead of over its last points.
  for (const chart of ['loss: loss', 'loss: kd', 'test accuracy', 'learning rate', 'reliability diagram']) assert.deepEqual(await legendProblems(page, chart), [], chart);
  assert.ok(await page.$('svg.chart[aria-label="reliability diagram"] g.lgi rect.sw'), 'the reliability diagram has box swatches');
  // Epoch and step axes: whole numbers only (3 epochs used to give 1, 1.5, 2, 2.5, 3).
  for (const chart of ['test accuracy', 'test nll', 'loss: loss', 'learning rate']) {
    const ts = await xTicks(page, chart);
    assert.ok(ts.length >= 2 && ts.every((t) => /^\d+$/.test(t)), `${chart}: x ticks ${JSON.stringify(ts)}`);
  }
  assert.deepEqual(await xTicks(page, 'test accuracy'), ['1', '2', '3']);
  // Confusion matrices: class names on both axes (true: rows, predicted: columns, above the cells),
  // and every count readable on its cell (WCAG AA for small text: contrast ratio >= 4.5).
  const names = loadFashionMnist({ split: 'test' }).classNames!;
  for (const chart of ['teacher', 'student (kd)']) {
    const cm = await page.$eval(`svg.chart[aria-label="${chart}"]`, (svg) => {
      const cells = [...svg.querySelectorAll('path')].map((p) => p.getBoundingClientRect());
      const top = Math.min(...cells.map((r) => r.top));
      const cols = [...svg.querySelectorAll('text.pl')];
      return {
        rows: [...svg.querySelectorAll('text.tl')].map((t) => t.textContent), cols: cols.map((t) => t.textContent),
        colsAbove: cols.every((t) => t.getBoundingClientRect().bottom <= top + 0.5),
        colsOrdered: cols.map((t) => t.getBoundingClientRect().left).every((x, i, xs) => i === 0 || x > xs[i - 1]!),
        axes: [...svg.querySelectorAll('text.xl')].map((t) => t.textContent),
      };
    });
    assert.deepEqual(cm.rows, names, `${chart}: true-class labels`);
    assert.deepEqual(cm.cols, names, `${chart}: predicted-class labels`);
    assert.ok(cm.colsAbove && cm.colsOrdered, `${chart}: predicted-class labels above the columns, in order`);
    assert.deepEqual(cm.axes.sort(), ['predicted', 'true']);
    const c = await worstCountContrast(page, chart);
    assert.ok(c.n >= 10, `${chart}: ${c.n} counts drawn`);
    assert.ok(c.worst >= 4.5, `${chart}: count ${c.at} has contrast ${c.worst.toFixed(2)} < 4.5`);
  }
  // The page uses the window's width (it used two thirds of it at 1300 px: two fixed 420 px
  // charts per row), and follows a wider window.
  await page.evaluate(() => window.scrollTo(0, 0));
  assert.ok(await gridSpan(page, 'curves') >= 0.9, `curves span ${await gridSpan(page, 'curves')} of 1300 px`);
  await page.setViewportSize({ width: 2200, height: 900 });
  assert.ok(await gridSpan(page, 'curves') >= 0.9, `curves span ${await gridSpan(page, 'curves')} of 2200 px`);
  await page.setViewportSize({ width: 1300, height: 900 });
  mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: join(ART, 'report.png'), fullPage: true });
  assert.ok(existsSync(join(ART, 'report.png')));
  // The report's numbers are the run's own.
  const data = JSON.parse(readFileSync(join(root, 'kd', 'report.json'), 'utf8'));
  assert.equal(data.models[1].accuracy, kdRun.result.final!.accuracy);
  assert.equal(data.models[1].parameters, kdRun.student.numParameters());
  await page.close();
});

test('report: a run that learned from synthesised images shows them (samples.png in the run folder)', async () => {
  // A copy of the kd run with the picture a data-free run (DAFL) saves beside its model.
  const dir = join(root, 'kd-images');
  cpSync(join(root, 'kd'), dir, { recursive: true });
  const px = Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => (i % 28) / 27);
  writeFileSync(join(dir, 'samples.png'), imageGridPng(px, [4, 1, 28, 28], 2));
  const out = join(root, 'images.html');
  await writeReport([dir], out);
  const errors: string[] = [];
  const page = await openPage(pathToFileURL(out).href, errors);
  assert.deepEqual(errors, []);
  // Decoded by the browser: a broken embedding gives naturalWidth 0. Two 28-pixel tiles in a row (plus padding).
  const widths = await page.$$eval('#images img', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
  assert.equal(widths.length, 1);
  assert.ok(widths[0]! >= 56, `image width ${widths[0]}`);
  assert.match(await page.$eval('#images', (e) => e.textContent ?? ''), /generator samples/);
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
  // The compare view's legends: a swatch per run, off the plot.
  for (const chart of ['test accuracy', 'loss: loss', 'learning rate', 'reliability: kd', 'reliability: teacher']) assert.deepEqual(await legendProblems(page, chart), [], chart);
  assert.match(await page.textContent('#table tr.teacher') ?? '', /checkpoint .*teacher\/model\.safetensors/);
  await page.close();
});

test("the teacher's ms / sample is the same in a run's report and in a comparison that measures it again", async () => {
  // Latency is measured on one libtorch thread whatever the process's count, which it leaves as it was.
  const seen: number[] = [];
  const data = loadFashionMnist({ split: 'test' });
  setNumThreads(2);
  try {
    inferenceMsPerSample((x) => { seen.push(getNumThreads()); return teacherRun.student.call(x); }, data, 5, 1);
    assert.equal(getNumThreads(), 2, 'the thread count is given back');
  } finally {
    setNumThreads(1);
  }
  assert.deepEqual([...new Set(seen)], [1]);
  // `kdistill report` on a run whose cached evaluation is gone evaluates it again, in a process
  // whose thread count is not the run's (2 here, as OMP_NUM_THREADS=2 or a multi-core default gives).
  const again = join(root, 'kd-again');
  cpSync(join(root, 'kd'), again, { recursive: true });
  rmSync(join(again, 'report.json'));
  const out = join(root, 'compare-again.html');
  setNumThreads(2);
  try {
    await writeReport([join(root, 'teacher'), again], out);
  } finally {
    setNumThreads(1);
  }
  const embedded = /<script id="kd-data" type="application\/json">(.*?)<\/script>/s.exec(readFileSync(out, 'utf8'))![1]!;
  const compared = JSON.parse(embedded) as { runs: { models: { role: string; name: string; msPerSample: number }[] }[] };
  const own = JSON.parse(readFileSync(join(root, 'kd', 'report.json'), 'utf8')) as { models: { role: string; msPerSample: number }[] };
  const single = own.models.find((m) => m.role === 'teacher')!.msPerSample;
  const inCompare = compared.runs[1]!.models.find((m) => m.role === 'teacher')!.msPerSample;
  // The same model again: the teacher run's own student row, measured at the end of that run.
  const asStudent = compared.runs[0]!.models.find((m) => m.role === 'student')!.msPerSample;
  // Same model, same code, one thread, median of 100 batch-1 forwards each: on a quiet machine
  // these agree within ~20 %. A factor of 3 leaves room for CPU frequency changes and for other
  // processes taking the core during one of the measurements (a preemption moves a few of the
  // 100 samples, rarely the median), while the disagreement being fixed was two orders of
  // magnitude (71.8 vs 0.59 ms; 60 vs 0.5 ms on 2 threads with the cores busy).
  for (const [what, v] of [['comparison', inCompare], ["the teacher run's own row", asStudent]] as const) {
    assert.ok(v / single <= 3 && single / v <= 3, `teacher ms/sample: run report ${single.toFixed(3)}, ${what} ${v.toFixed(3)}`);
  }
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
  const bars = await page.$$eval('#multilabel svg.chart', (svgs) => svgs.map((s) => [s.getAttribute('aria-label'), s.querySelectorAll('rect:not(.sw)').length, s.querySelectorAll('g.lgi rect.sw').length]));
  assert.deepEqual(bars.map((b) => b[0]), ['F1 per label', 'average precision per label']);
  assert.ok(bars.every((b) => (b[1] as number) > 0 && b[2] === 2), `bars drawn, a swatch per model: ${JSON.stringify(bars)}`);
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
