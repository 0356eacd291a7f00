// Issue 22's latency columns, re-measured: batch-1 latency of the table's six deployed files per
// setting (float scratch/KD, PTQ INT8 of both, QAT INT8 without/with KD; seed 1: the files of
// other seeds have the same graph) in onnxruntime-node and in onnxruntime-web on a
// cross-origin-isolated page (5 µs clock), timed alike: the same first test sample, 50 warm-up
// runs, 500 single runs timed one by one, one thread (node: intra-op 1; wasm: numThreads 1).
// `rounds` repetitions, the file order reversed every other round so that drift of the machine's
// load does not favour one file; the table gives the median over rounds of each round's median
// (and p90), and the spread of the round medians.
//
//   node experiments/quantize/latency.mjs export            # writes the INT8 files (not timed)
//   /work/wt/quiet-bench.sh node experiments/quantize/latency.mjs time [rounds]
//   → results/latency.json, latency.md; `node measure.mjs` then puts the medians in table.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const exp = await import(join(root, 'dist', 'src', 'export', 'index.js'));
const { OrtWeb } = await import(join(root, 'dist', 'src', 'export', 'web.js'));
const { summarizeLatency, latencyCounts } = await import(join(root, 'dist', 'src', 'export', 'latency.js'));
const { loadFashionMnist } = await import(join(root, 'dist', 'src', 'data', 'fashion-mnist.js'));

const SETTINGS = ['demo', 'bench'];
// The table's rows: label, the run (seed 1) and which of its exported files.
const ROWS = [
  ['float student, scratch', 'float-scratch', 'model.onnx'], ['float student, KD', 'float-kd', 'model.onnx'],
  ['PTQ INT8 of the scratch student', 'float-scratch', 'model.int8.onnx'], ['PTQ INT8 of the KD student', 'float-kd', 'model.int8.onnx'],
  ['QAT INT8, no KD (scratch)', 'qat-scratch', 'model.int8.onnx'], ['QAT INT8 with KD', 'qat-kd', 'model.int8.onnx'],
];
const runDir = (setting, variant) => join(root, 'runs', 'quantize', setting, variant, 'seed1');
const fileOf = (setting, variant, f) => join(runDir(setting, variant), 'export', f);

const [mode = 'time', roundsArg = '3'] = process.argv.slice(2);
if (mode === 'export') {
  for (const setting of SETTINGS) {
    for (const variant of ['float-scratch', 'float-kd', 'qat-scratch', 'qat-kd']) {
      const run = runDir(setting, variant);
      if (!existsSync(join(run, 'result.json'))) throw new Error(`${run} is not trained: experiments/quantize/train.sh (or compare … --seeds 1)`);
      // As measure.mjs exported them: PTQ with 1,000 calibration images for a float run.
      await exp.exportStudent(run, { quantize: 'int8', ...(variant.startsWith('float') ? { calibrate: 1000 } : {}) });
      process.stdout.write(`${setting} ${variant}: exported\n`);
    }
  }
  process.exit(0);
}
if (mode !== 'time') throw new Error(`latency.mjs: mode must be export or time, got '${mode}'`);
const rounds = Number(roundsArg);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`latency.mjs: rounds must be a positive integer, got '${roundsArg}'`);

// The same input as `kdistill export` times: the first test sample (Fashion-MNIST, unnormalised as
// the runs trained), batch 1.
const test = loadFashionMnist({ split: 'test' });
const sample = test.x.slice(0, 784), dims = [1, 1, 28, 28];
const files = [];
for (const setting of SETTINGS) {
  for (const [label, variant, f] of ROWS) {
    const file = fileOf(setting, variant, f);
    if (!existsSync(file)) throw new Error(`${file} missing: run \`node experiments/quantize/latency.mjs export\` first`);
    files.push({ setting, label, file, key: `${setting}/${variant}/${f}`, bytes: readFileSync(file).length, node: [], web: [] });
  }
}
const load0 = loadavg();
const web = await OrtWeb.start();
if (!web.clock.crossOriginIsolated) process.stderr.write(`latency.mjs: the page is NOT cross-origin isolated: web latencies are coarse (clock ${web.clock.resolutionMs} ms)\n`);
try {
  for (const f of files) web.add(f.key, readFileSync(f.file));
  for (let r = 0; r < rounds; r++) {
    for (const f of r % 2 ? [...files].reverse() : files) {
      f.node.push(summarizeLatency(await exp.ortLatency(f.file, sample, dims)));
      f.web.push(summarizeLatency(await web.latency(f.key, sample, dims)));
    }
    process.stderr.write(`round ${r + 1}/${rounds} done, load ${loadavg()[0].toFixed(2)}\n`);
  }
} finally {
  await web.close();
}
const load1 = loadavg();
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[(s.length - 1) >> 1]; };
const out = {
  what: 'batch-1 latency, ms: per round the median and p90 of single timed runs; rounds alternate the file order',
  ...latencyCounts(), rounds, input: 'Fashion-MNIST test sample 0, [1, 1, 28, 28]',
  threads: { node: exp.NODE_THREADS, web: exp.WEB_THREADS },
  web: { version: web.version, crossOriginIsolated: web.clock.crossOriginIsolated, clockResolutionMs: web.clock.resolutionMs },
  cores: cpus().length, load: { before: load0, after: load1 }, date: new Date().toISOString(),
  files: files.map((f) => ({ setting: f.setting, label: f.label, file: f.key, bytes: f.bytes, node: f.node, web: f.web })),
};
writeFileSync(join(here, 'results', 'latency.json'), JSON.stringify(out, null, 1) + '\n');
const f3 = (v) => v.toFixed(3);
const cell = (rs) => `${f3(med(rs.map((x) => x.median)))} (p90 ${f3(med(rs.map((x) => x.p90)))}; ${f3(Math.min(...rs.map((x) => x.median)))}–${f3(Math.max(...rs.map((x) => x.median)))})`;
const lines = [];
for (const setting of SETTINGS) {
  lines.push(`### ${setting}`, '', '| model | size | batch-1 ms, onnxruntime-node: median (p90; range of round medians) | batch-1 ms, onnxruntime-web: median (p90; range of round medians) |', '|---|---:|---:|---:|');
  for (const f of files.filter((x) => x.setting === setting)) lines.push(`| ${f.label} | ${(f.bytes / 1024).toFixed(1)} KiB | ${cell(f.node)} | ${cell(f.web)} |`);
  lines.push('');
}
lines.push(`${rounds} rounds × ${out.runs} single runs after ${out.warmup} warm-up per file and runtime; node: ${out.threads.node}; web: ${out.threads.web}, ` +
  `onnxruntime-web ${web.version}, page cross-origin isolated: ${web.clock.crossOriginIsolated} (clock ${web.clock.resolutionMs} ms); ` +
  `1-min load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after, ${cpus().length} cores.`);
writeFileSync(join(here, 'latency.md'), lines.join('\n') + '\n');
process.stdout.write(lines.join('\n') + '\n');
