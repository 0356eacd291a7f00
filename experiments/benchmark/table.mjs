// The benchmark table from the finished sweeps (runs/benchmark/<method>-sweep): for each method,
// test accuracy over its final seeds, Δ against scratch with the standard error of the difference
// (and whether |Δ| exceeds twice it), agreement with the teacher, ECE, seconds per epoch and the
// hyper-parameters its sweep chose on the validation split. Run: node experiments/benchmark/table.mjs
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../runs/benchmark/', import.meta.url).pathname;
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));
const pm = (v, k = 100, d = 2) => `${(mean(v) * k).toFixed(d)} ± ${(sd(v) * k).toFixed(d)}`;

function method(dir) {
  const sweep = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
  const seeds = (sweep.final?.seeds ?? []).filter((s) => existsSync(join(dir, 'best', `seed${s}`, 'result.json')));
  if (seeds.length === 0) return null;
  const runs = seeds.map((s) => {
    const d = join(dir, 'best', `seed${s}`);
    const r = JSON.parse(readFileSync(join(d, 'result.json'), 'utf8'));
    const epochs = readFileSync(join(d, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'epoch');
    return { ...r.test, secPerEpoch: mean(epochs.map((e) => e.seconds)) };
  });
  return { name: sweep.name.replace(/^bench-/, ''), runs, chosen: sweep.best.settings, trials: sweep.trials.length };
}

const rows = readdirSync(root).filter((d) => d.endsWith('-sweep') && existsSync(join(root, d, 'sweep.json'))).map((d) => method(join(root, d))).filter(Boolean);
const scratch = rows.find((r) => r.name === 'scratch');
const acc = (r) => r.runs.map((x) => x.accuracy);
const lines = [
  '| method | seeds | test acc % | Δ vs scratch (points) | beyond seed noise? | agreement % | ECE % | s/epoch | chosen on validation |',
  '|---|---:|---:|---:|:---:|---:|---:|---:|---|',
];
for (const r of rows.sort((a, b) => mean(acc(b)) - mean(acc(a)))) {
  let delta = '–', beyond = '–';
  if (scratch && r !== scratch) {
    const d = mean(acc(r)) - mean(acc(scratch));
    const se = Math.sqrt(sd(acc(r)) ** 2 / r.runs.length + sd(acc(scratch)) ** 2 / scratch.runs.length);
    delta = `${d >= 0 ? '+' : ''}${(d * 100).toFixed(2)} ± ${(se * 100).toFixed(2)}`;
    beyond = Math.abs(d) > 2 * se ? 'yes' : 'no';
  }
  const agr = r.runs.every((x) => x.agreement !== undefined) ? pm(r.runs.map((x) => x.agreement)) : '–';
  const chosen = Object.entries(r.chosen).map(([k, v]) => `${k.replace(/^method\.params\./, '').replace(/^optimizer\./, '')} ${v}`).join(', ');
  lines.push(`| ${r.name} | ${r.runs.length} | ${pm(acc(r))} | ${delta} | ${beyond} | ${agr} | ${pm(r.runs.map((x) => x.ece))} | ${mean(r.runs.map((x) => x.secPerEpoch)).toFixed(1)} | ${chosen} |`);
}
console.log(lines.join('\n'));
