// Collects the runs of experiments/whom/run.sh into results/: per run its result.json, run.json,
// the epoch records of its log and its console output; and results/table.md with the mean ± std
// over seeds of the final student's test metrics. Usage: node summarize.mjs <runs folder> [<results folder>]
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = process.argv[2] ?? 'runs/whom';
const here = dirname(fileURLToPath(import.meta.url));
// A second argument collects a partial re-run (e.g. the DML schedules) into its own folder.
const dest = process.argv[3] ?? join(here, 'results');
mkdirSync(dest, { recursive: true });

const ORDER = ['scratch', 'kd', 'ta-chain', 'dml', 'dml-sequential', 'online-kd', 'bss', 'bss-noattack', 'adversarial-kd'];
const LABEL = {
  scratch: 'scratch (labels only)', kd: 'KD (CNN → MLP[32])', 'ta-chain': 'TA chain (CNN → MLP[256] → MLP[32])',
  dml: 'DML (2 × MLP[32], no teacher)', 'dml-sequential': 'DML, sequential updates (Algorithm 1)', 'online-kd': 'online KD (MLP[256] trained jointly)', bss: 'BSS', 'bss-noattack': 'BSS weights, no attack (ablation)', 'adversarial-kd': 'adversarial KD',
};
/** Folders holding the final student's run (the chain's is its last stage). */
function finalRun(dir) {
  if (existsSync(join(dir, 'result.json'))) return dir;
  const stages = readdirSync(dir).filter((d) => /^stage\d+-/.test(d)).sort((a, b) => parseInt(a.slice(5)) - parseInt(b.slice(5)));
  return stages.length ? join(dir, stages[stages.length - 1]) : null;
}
const copyRun = (src, to) => {
  mkdirSync(to, { recursive: true });
  for (const f of ['result.json', 'run.json', 'experiment.yaml', 'stage.json']) if (existsSync(join(src, f))) copyFileSync(join(src, f), join(to, f));
  if (existsSync(join(src, 'log.jsonl'))) {
    const epochs = readFileSync(join(src, 'log.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"epoch"'));
    writeFileSync(join(to, 'epochs.jsonl'), epochs.join('\n') + '\n');
  }
};

const rows = new Map();
for (const d of readdirSync(runs)) {
  const m = /^(.*)-s(\d+)$/.exec(d);
  if (!m || !existsSync(join(runs, d)) || !readdirSync(join(runs, d)).length) continue;
  const [, method, seed] = m;
  const fin = finalRun(join(runs, d));
  if (!fin || !existsSync(join(fin, 'result.json'))) continue;
  const r = JSON.parse(readFileSync(join(fin, 'result.json'), 'utf8'));
  const to = join(dest, d);
  if (fin === join(runs, d)) copyRun(fin, to);
  else for (const s of readdirSync(join(runs, d)).filter((x) => x.startsWith('stage'))) copyRun(join(runs, d, s), join(to, s));
  if (existsSync(join(runs, d, 'chain.json'))) copyFileSync(join(runs, d, 'chain.json'), join(to, 'chain.json'));
  for (const ext of ['out', 'seconds']) if (existsSync(join(runs, `${d}.${ext}`))) copyFileSync(join(runs, `${d}.${ext}`), join(dest, `${d}.${ext}`));
  const secs = existsSync(join(runs, `${d}.seconds`)) ? Number(readFileSync(join(runs, `${d}.seconds`), 'utf8')) : NaN;
  if (!rows.has(method)) rows.set(method, []);
  rows.get(method).push({ seed: Number(seed), acc: r.test.accuracy, nll: r.test.nll, ece: r.test.ece, params: r.studentParameters, secs });
}

const stat = (xs) => {
  const n = xs.length, mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd };
};
const fmt = (xs, scale, digits) => {
  const { mean, sd } = stat(xs.map((x) => x * scale));
  return `${mean.toFixed(digits)} ± ${sd.toFixed(digits)}`;
};
const base = rows.get('scratch') ? stat(rows.get('scratch').map((r) => r.acc)).mean : null;
const lines = [
  '| method | seeds | student params | test acc (%) | Δ vs scratch (pp) | NLL | ECE | wall s / run |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
];
for (const k of ORDER.filter((k) => rows.has(k)).concat([...rows.keys()].filter((k) => !ORDER.includes(k)))) {
  const rs = rows.get(k).sort((a, b) => a.seed - b.seed);
  const acc = stat(rs.map((r) => r.acc)).mean;
  lines.push(`| ${LABEL[k] ?? k} | ${rs.map((r) => r.seed).join(',')} | ${rs[0].params} | ${fmt(rs.map((r) => r.acc), 100, 2)} | ` +
    `${base === null ? '–' : ((acc - base) * 100 >= 0 ? '+' : '') + ((acc - base) * 100).toFixed(2)} | ${fmt(rs.map((r) => r.nll), 1, 3)} | ${fmt(rs.map((r) => r.ece), 1, 3)} | ` +
    `${stat(rs.map((r) => r.secs)).mean.toFixed(0)} |`);
}
const perSeed = ['', '| method | ' + [0, 1, 2].map((s) => `seed ${s}`).join(' | ') + ' |', '|---|---:|---:|---:|'];
for (const [k, rs] of rows) perSeed.push(`| ${k} | ${[0, 1, 2].map((s) => { const r = rs.find((x) => x.seed === s); return r ? (r.acc * 100).toFixed(2) : '–'; }).join(' | ')} |`);
const table = lines.join('\n') + '\n' + perSeed.join('\n') + '\n';
writeFileSync(join(dest, 'table.md'), table);
process.stdout.write(table);
