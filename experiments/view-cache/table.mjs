// The tables of experiments/view-cache (README.md here) from the finished runs
// (runs/view-cache/<method>-<signal>/seed<N>): for each method and teacher signal, test accuracy,
// agreement with the teacher, NLL and ECE over seeds; the paired difference views − on per seed
// (a seed fixes the training subset, the student's initialisation, the batch order and the
// student's views, so only the teacher's signal differs) with its standard error; and whether the
// live teacher (off) trained bit-identically to the view cache (views): the step losses, the
// saved weights and the test metrics; and whether the views runs reproduce the benchmark table's
// own final runs (experiments/benchmark/results/<method>/seed<N>), which used the view cache through
// teacherCache: auto. Run: node experiments/view-cache/table.mjs [folder], the folder of the runs
// (default runs/view-cache, where run.sh writes them; experiments/view-cache/results holds the
// committed copies, without the weights).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? new URL('../../runs/view-cache/', import.meta.url).pathname;
const benchmark = new URL('../benchmark/results/', import.meta.url).pathname;
const METHODS = ['kd', 'dkd'];
const SIGNALS = ['views', 'on', 'off'];
const SEEDS = [1, 2, 3];
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));
const pm = (v, k = 100, d = 2) => `${(mean(v) * k).toFixed(d)} ± ${(sd(v) * k).toFixed(d)}`;
const signed = (x, d = 2) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

function run(m, s, seed) {
  const dir = join(root, `${m}-${s}`, `seed${seed}`);
  if (!existsSync(join(dir, 'result.json'))) return null;
  const log = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return {
    test: JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')).test,
    steps: log.filter((e) => e.type === 'step').map((e) => e.loss),
    secPerEpoch: mean(log.filter((e) => e.type === 'epoch').map((e) => e.seconds)),
    weights: existsSync(join(dir, 'model.safetensors')) ? readFileSync(join(dir, 'model.safetensors')) : null,
  };
}

const runs = {};
for (const m of METHODS) for (const s of SIGNALS) runs[`${m}-${s}`] = SEEDS.map((seed) => run(m, s, seed)).filter(Boolean);

const out = ['| method | teacher signal | seeds | test acc % | agreement % | NLL | ECE % | s/epoch |', '|---|---|---:|---:|---:|---:|---:|---:|'];
const label = { views: 'views (teacher on the same augmented view)', on: 'on (teacher on the clean image)', off: 'off (live teacher on the view)' };
for (const m of METHODS) {
  for (const s of SIGNALS) {
    const rs = runs[`${m}-${s}`];
    if (rs.length === 0) continue;
    const t = rs.map((r) => r.test);
    out.push(`| ${m} | ${label[s]} | ${rs.length} | ${pm(t.map((x) => x.accuracy))} | ${pm(t.map((x) => x.agreement))} | ${pm(t.map((x) => x.nll), 1, 4)} | ${pm(t.map((x) => x.ece))} | ${mean(rs.map((r) => r.secPerEpoch)).toFixed(1)} |`);
  }
}

// Two-sided 95 % critical values of Student's t for n − 1 degrees of freedom: with 3 seeds "beyond
// 2 SE" (the benchmark table's rule) is a loose test; t > t95 is the paired t-test's.
const T95 = { 1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57 };
out.push('', '| method | seeds | Δ test acc views − on (points, mean ± SE) | per seed | beyond 2 SE? | t (95 % needs) | Δ agreement (points) | Δ NLL, mean ± SE (t) | Δ ECE (points), mean ± SE (t) |', '|---|---:|---:|---|:---:|---:|---:|---:|---:|');
const pairs = (m, k, scale) => {
  const v = runs[`${m}-views`], o = runs[`${m}-on`];
  return Array.from({ length: Math.min(v.length, o.length) }, (_, i) => (v[i].test[k] - o[i].test[k]) * scale);
};
for (const ms of [...METHODS.map((m) => [m]), METHODS]) {
  const d = (k, scale) => ms.flatMap((m) => pairs(m, k, scale));
  const acc = d('accuracy', 100);
  const n = acc.length;
  const withT = (v, digits) => {
    const e = sd(v) / Math.sqrt(v.length);
    return `${signed(mean(v), digits)} ± ${e.toFixed(digits)}${v.length > 1 && e > 0 ? ` (${(Math.abs(mean(v)) / e).toFixed(1)})` : ''}`;
  };
  if (n === 0) continue;
  const se = sd(acc) / Math.sqrt(n);
  const t = n > 1 && se > 0 ? Math.abs(mean(acc)) / se : NaN;
  out.push(`| ${ms.join(' + ')} | ${n} | ${signed(mean(acc))} ± ${se.toFixed(2)} | ${acc.map((x) => signed(x)).join(', ')} | ${n > 1 && Math.abs(mean(acc)) > 2 * se ? 'yes' : 'no'} | ` +
    `${Number.isNaN(t) ? '–' : `${t.toFixed(2)} (${T95[n - 1] ?? '–'})`} | ${signed(mean(d('agreement', 100)))} | ${withT(d('nll', 1), 4)} | ${withT(d('ece', 100), 2)} |`);
}

out.push('', '| method | seed | step losses identical (views vs off) | first differing step | max \\|Δ loss\\| | weights identical | Δ test acc (points) |', '|---|---:|---:|---:|---:|:---:|---:|');
for (const m of METHODS) {
  const v = runs[`${m}-views`], o = runs[`${m}-off`];
  for (let i = 0; i < Math.min(v.length, o.length); i++) {
    const a = v[i].steps, b = o[i].steps;
    const same = a.filter((x, j) => x === b[j]).length;
    const first = a.findIndex((x, j) => x !== b[j]);
    const maxd = Math.max(0, ...a.map((x, j) => Math.abs(x - b[j])));
    out.push(`| ${m} | ${SEEDS[i]} | ${same} of ${a.length}${a.length !== b.length ? ` (off: ${b.length})` : ''} | ${first < 0 ? '–' : first} | ${maxd.toPrecision(3)} | ` +
      `${!v[i].weights || !o[i].weights ? '–' : Buffer.compare(v[i].weights, o[i].weights) === 0 ? 'yes' : 'no'} | ${signed((v[i].test.accuracy - o[i].test.accuracy) * 100)} |`);
  }
}
const same = [];
for (const m of METHODS) {
  runs[`${m}-views`].forEach((r, i) => {
    const f = join(benchmark, m, `seed${SEEDS[i]}`, 'result.json');
    if (!existsSync(f)) return;
    const b = JSON.parse(readFileSync(f, 'utf8')).test;
    same.push(`${m} seed ${SEEDS[i]}: ${JSON.stringify(b) === JSON.stringify(r.test) ? 'identical test metrics' : `differs (benchmark ${(b.accuracy * 100).toFixed(2)} %, here ${(r.test.accuracy * 100).toFixed(2)} %)`}`);
  });
}
out.push('', `views runs against the benchmark table's final runs: ${same.join('; ')}`);
console.log(out.join('\n'));
