// Issue 22's table, from the runs train.sh trained: every run is exported with
// `kdistill export --quantize int8` (a float run post-training-quantized with --calibrate 1000),
// and the float and INT8 files' test accuracy is measured where they are deployed: onnxruntime-node
// (graph optimisations on, one thread) on the full 10,000-image test set. Seed 1 of each run is
// also checked and timed in onnxruntime-web (--web, headless Chromium). Writes results/ (one JSON
// file per run) and table.md, the README's table.
//
//   node experiments/quantize/measure.mjs [demo|bench ...] [float-scratch|float-kd|qat-scratch|qat-kd ...]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const { exportStudent } = await import(join(root, 'dist', 'src', 'export', 'index.js'));
const { runExperimentOf } = await import(join(root, 'dist', 'src', 'report', 'data.js'));
const { prepareData } = await import(join(root, 'dist', 'src', 'run', 'experiment.js'));
const ort = await import('onnxruntime-node');

const ALL_VARIANTS = ['float-scratch', 'float-kd', 'qat-scratch', 'qat-kd'];
const args = process.argv.slice(2);
const SETTINGS = args.filter((a) => !ALL_VARIANTS.includes(a)).length ? args.filter((a) => !ALL_VARIANTS.includes(a)) : ['demo', 'bench'];
// Variants named on the command line are measured (several processes may share the work); the table covers all.
const MEASURE = args.filter((a) => ALL_VARIANTS.includes(a)).length ? args.filter((a) => ALL_VARIANTS.includes(a)) : ALL_VARIANTS;
const VARIANTS = ALL_VARIANTS;
const SEEDS = [1, 2, 3];
const CALIBRATE = 1000;

/** Top-1 accuracy of an ONNX file on a dataset in onnxruntime-node (optimisations on, one thread, batches of 500). */
async function ortAccuracy(file, d) {
  const s = await ort.InferenceSession.create(readFileSync(file), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  let right = 0;
  for (let i = 0; i < d.size; i += 500) {
    const n = Math.min(500, d.size - i);
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(d.x.subarray(i * per, (i + n) * per)), [n, ...d.sampleShape]) });
    const z = r[s.outputNames[0]].data, c = z.length / n;
    for (let k = 0; k < n; k++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (z[k * c + j] > z[k * c + best]) best = j;
      if (best === d.y[i + k]) right++;
    }
  }
  await s.release();
  return right / d.size;
}

// One file per measured run (results/<setting>/<variant>.seed<N>.json): measuring processes never write the same file.
const resultFile = (setting, key) => join(here, 'results', setting, `${key.replace('/', '.')}.json`);
const results = {};
for (const setting of SETTINGS) {
  results[setting] = {};
  for (const variant of VARIANTS) {
    for (const seed of SEEDS) {
      const key = `${variant}/seed${seed}`;
      if (existsSync(resultFile(setting, key))) results[setting][key] = JSON.parse(readFileSync(resultFile(setting, key), 'utf8'));
    }
  }
}
for (const setting of SETTINGS) {
  for (const variant of MEASURE) {
    for (const seed of SEEDS) {
      const run = join(root, 'runs', 'quantize', setting, variant, `seed${seed}`);
      const key = `${variant}/seed${seed}`;
      if (results[setting][key]) continue;
      // Measured while train.sh still runs: a run not finished yet is left for the next call.
      if (!existsSync(join(run, 'result.json'))) {
        process.stdout.write(`${setting} ${key}: not trained yet (train.sh), skipped\n`);
        continue;
      }
      const web = seed === 1;
      const load = loadavg()[0];
      const t0 = Date.now();
      const r = await exportStudent(run, { quantize: 'int8', ...(variant.startsWith('float') ? { calibrate: CALIBRATE } : {}), web });
      const e = runExperimentOf(run);
      const test = prepareData({ ...e, output: run }).test;
      const fq = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8')).test;
      const q = r.int8;
      results[setting][key] = {
        run, method: q.method, test: test.size,
        accuracy: { float: await ortAccuracy(join(r.dir, 'model.onnx'), test), int8: await ortAccuracy(q.file, test), run: fq.accuracy },
        bytes: q.bytes, latencyMs: { node: q.latencyMs, web: q.web?.latencyMs ?? null },
        check: { node: q.check, web: q.web?.check ?? null }, webVersion: q.web?.version ?? null,
        load1: load, loadAfter: loadavg()[0], cores: cpus().length, seconds: (Date.now() - t0) / 1000,
      };
      mkdirSync(dirname(resultFile(setting, key)), { recursive: true });
      writeFileSync(resultFile(setting, key), JSON.stringify(results[setting][key], null, 1) + '\n');
      const a = results[setting][key].accuracy;
      process.stdout.write(`${setting} ${key}: float ${(a.float * 100).toFixed(2)} %, int8 ${(a.int8 * 100).toFixed(2)} % (run's own ${(a.run * 100).toFixed(2)} %), load ${load.toFixed(2)}\n`);
    }
  }
}

// The table: test accuracy of the deployed file (INT8 rows: model.int8.onnx; float rows: model.onnx), mean ± std over seeds.
const ms = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return { m, s };
};
const f2 = (v) => v.toFixed(2), f3 = (v) => v.toFixed(3);
// Latency columns: latency.mjs's re-measurement on a quiet machine (cross-origin-isolated page,
// single timed runs) when it exists, else the per-run numbers measured above under load.
const latencyFile = join(here, 'results', 'latency.json');
const quiet = existsSync(latencyFile) ? JSON.parse(readFileSync(latencyFile, 'utf8')) : null;
const quietCell = (setting, label, rt) => {
  const f = quiet.files.find((x) => x.setting === setting && label.startsWith(x.label));
  if (!f) throw new Error(`${latencyFile}: no ${setting} row '${label}'`);
  const m = (k) => { const v = f[rt].map((x) => x[k]).sort((a, b) => a - b); return v[(v.length - 1) >> 1]; };
  return `${f3(m('median'))} (p90 ${f3(m('p90'))})`;
};
const lines = [];
for (const setting of SETTINGS) {
  const R = results[setting];
  if (VARIANTS.some((v) => SEEDS.some((s) => !R[`${v}/seed${s}`]))) continue;
  const seeds = (v) => SEEDS.map((s) => R[`${v}/seed${s}`]);
  const ref = ms(seeds('float-kd').map((x) => x.accuracy.float * 100));
  const rows = [
    ['float student, scratch', 'float-scratch', 'float'], ['float student, KD', 'float-kd', 'float'],
    [`PTQ INT8 of the scratch student (calibrate ${CALIBRATE})`, 'float-scratch', 'int8'], [`PTQ INT8 of the KD student (calibrate ${CALIBRATE})`, 'float-kd', 'int8'],
    ['QAT INT8, no KD (scratch)', 'qat-scratch', 'int8'], ['QAT INT8 with KD', 'qat-kd', 'int8'],
  ];
  const latHead = quiet ? 'batch-1 ms, node: median (p90) | batch-1 ms, web: median (p90)' : 'batch-1 ms, node | batch-1 ms, web';
  lines.push(`### ${setting}`, '', `| model | test acc % (deployed file, onnxruntime-node) | Δ vs float KD (points) | size | ${latHead} | top-1 agreement with kdistill, node / web | load (1-min avg) of the accuracy runs |`, '|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [label, v, which] of rows) {
    const rs = seeds(v);
    const acc = ms(rs.map((x) => x.accuracy[which] * 100));
    // Difference of means; its standard error from both rows' seed spreads.
    const d = acc.m - ref.m, se = Math.sqrt((acc.s ** 2 + ref.s ** 2) / SEEDS.length);
    const lat = (rt) => quiet ? quietCell(setting, label, rt) : latUnderLoad(rt);
    const latUnderLoad = (rt) => { const xs = rs.map((x) => x.latencyMs[rt]?.[which]).filter((x) => x !== undefined && x !== null); return xs.length ? (xs.length > 1 ? `${f3(ms(xs).m)} ± ${f3(ms(xs).s)}` : f3(xs[0])) : '–'; };
    const agree = which === 'int8' ? `${f2(ms(rs.map((x) => x.check.node.optimized.agreement * 100)).m)} / ${rs[0].check.web ? f2(rs[0].check.web.optimized.agreement * 100) : '–'}` : `– / ${rs[0].check.web?.float ? f2(rs[0].check.web.float.agreement * 100) : '–'}`;
    const loads = rs.map((x) => x.load1);
    lines.push(`| ${label} | ${f2(acc.m)} ± ${f2(acc.s)} | ${v === 'float-kd' && which === 'float' ? '–' : `${d >= 0 ? '+' : ''}${f2(d)} ± ${f2(se)}`} | ${(rs[0].bytes[which] / 1024).toFixed(1)} KiB | ${lat('node')} | ${lat('web')} | ${agree} | ${f2(Math.min(...loads))}–${f2(Math.max(...loads))} |`);
  }
  lines.push('');
}
if (quiet) {
  lines.push(`Latency: \`latency.mjs\` (seed 1's files), median over ${quiet.rounds} rounds of each round's median (p90) of ${quiet.runs} single batch-1 runs after ${quiet.warmup} warm-up, ` +
    `one thread in both runtimes; web page cross-origin isolated: ${quiet.web.crossOriginIsolated}; 1-min load ${quiet.load.before[0].toFixed(2)}–${quiet.load.after[0].toFixed(2)} on ${quiet.cores} cores (quiet-bench).`, '');
}
const table = lines.join('\n');
writeFileSync(join(here, 'table.md'), table + '\n');
process.stdout.write('\n' + table + '\n');
