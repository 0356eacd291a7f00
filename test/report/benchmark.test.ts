// The benchmark table from sweep folders (src/report/benchmark.ts and `kdistill compare <sweep-dir>…`),
// on tiny fake sweeps written here: the rows, Δ against scratch with its standard error, the seed
// noise verdict, s/epoch from the logs, both folder layouts, unfinished sweeps, and bad folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchmarkTable, deltaOf, readBenchmark, readBenchmarkRow } from '../../src/report/benchmark.js';
import { packageRoot } from '../../src/tensor/native.js';

const base = mkdtempSync(join(tmpdir(), 'kd-bench-table-'));

/** A finished sweep folder: sweep.json with its final runs, and each seed's result.json and log.jsonl. */
function fakeSweep(name: string, method: string, acc: number[], o: { agreement?: boolean; layout?: 'sweep' | 'results'; epochSeconds?: number[] } = {}): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const runs = acc.map((a, i) => ({ seed: i + 1, accuracy: a, ece: 0.05 + i * 0.01, nll: 0.4, ...(o.agreement ? { agreement: a + 0.03 } : {}) }));
  runs.forEach((r) => {
    const d = o.layout === 'results' ? join(dir, `seed${r.seed}`) : join(dir, 'best', `seed${r.seed}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'result.json'), JSON.stringify({ name, method, seed: r.seed, test: r }));
    const secs = o.epochSeconds ?? [1, 3];
    writeFileSync(join(d, 'log.jsonl'), [
      JSON.stringify({ type: 'step', epoch: 0, step: 0, loss: 1 }),
      ...secs.map((s, e) => JSON.stringify({ type: 'epoch', epoch: e, seconds: s })),
    ].join('\n') + '\n');
  });
  writeFileSync(join(dir, 'sweep.json'), JSON.stringify({
    name, metric: 'accuracy', trials: [{ trial: 1 }],
    best: { trial: 1, settings: { 'optimizer.lr': 0.05, 'method.params.temperature': 4 } },
    final: { seeds: runs.map((r) => r.seed), runs, table: '' },
  }));
  return dir;
}

const scratch = fakeSweep('bench-scratch', 'scratch', [0.80, 0.82, 0.81]);
const kd = fakeSweep('bench-kd', 'kd', [0.84, 0.85, 0.86], { agreement: true, epochSeconds: [2, 2, 5] });
// A copy of a sweep's records (experiments/benchmark/results/<method>): seed<N>/ beside sweep.json.
const copied = fakeSweep('bench-copied', 'dkd', [0.80, 0.83, 0.83], { layout: 'results' });

test('Δ is the difference of the means ± the standard error of that difference; beyond noise when |Δ| > 2 SE', () => {
  // Means 0.85 and 0.81, sample std 0.01 each over 3 seeds: SE = sqrt(2 · 0.01² / 3) = 0.008165.
  const d = deltaOf([0.84, 0.85, 0.86], [0.80, 0.82, 0.81]);
  assert.ok(Math.abs(d.delta - 0.04) < 1e-12);
  assert.ok(Math.abs(d.se - Math.sqrt(2e-4 / 3)) < 1e-12);
  assert.equal(d.beyond, true);
  // 0.82 vs 0.81: std 0.01732 and 0.01, SE = sqrt((3e-4 + 1e-4) / 3) = 0.011547 > 0.01 / 2.
  const n = deltaOf([0.80, 0.83, 0.83], [0.80, 0.82, 0.81]);
  assert.ok(Math.abs(n.se - Math.sqrt(4e-4 / 3)) < 1e-12);
  assert.equal(n.beyond, false);
});

test('the table: best first, Δ against the scratch row, agreement only where every seed has it, s/epoch from the logs', () => {
  const { rows, unfinished } = readBenchmark([scratch, kd, copied]);
  assert.deepEqual(unfinished, []);
  assert.deepEqual(rows.map((r) => r.method), ['scratch', 'kd', 'dkd']);
  assert.equal(rows[1]!.runs[0]!.secondsPerEpoch, 3, 'the mean of the epochs\' seconds (2, 2, 5)');
  const lines = benchmarkTable(rows, { label: (n) => n.replace(/^bench-/, ''), timingMark: (n) => (n === 'kd' ? ' †' : '') }).split('\n');
  assert.match(lines[0]!, /\| method +\| seeds \| +test acc % \| Δ vs scratch \(points\) \|/);
  const cells = lines.slice(2).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  assert.deepEqual(cells.map((c) => c[0]), ['kd', 'copied', 'scratch']);
  assert.deepEqual(cells[0], ['kd', '3', '85.00 ± 1.00', '+4.00 ± 0.82', 'yes', '88.00 ± 1.00', '6.00 ± 1.00', '3.0 †', 'lr 0.05, temperature 4']);
  assert.deepEqual(cells[1]!.slice(2, 8), ['82.00 ± 1.73', '+1.00 ± 1.15', 'no', '–', '6.00 ± 1.00', '2.0']);
  assert.deepEqual(cells[2]!.slice(3, 6), ['–', '–', '–'], 'the baseline has no Δ, and no agreement without a teacher');
  // Another baseline by name; one that is not a row is refused, naming the rows there are.
  assert.match(benchmarkTable(rows, { baseline: 'bench-kd' }), /Δ vs bench-kd[\s\S]*bench-scratch \| +3 \| 81\.00 ± 1\.00 \| +-4\.00 ± 0\.82/);
  assert.throws(() => benchmarkTable(rows, { baseline: 'dist' }), /baseline 'dist' is not among the rows \(bench-scratch, bench-kd, bench-copied\)/);
});

test('a sweep still running or without final seeds is reported unfinished; a folder that is no sweep fails naming it', () => {
  const running = join(base, 'running');
  mkdirSync(join(running, 'trials'), { recursive: true });
  const chosenOnly = fakeSweep('bench-none', 'kd', []);
  assert.equal(readBenchmarkRow(running), null);
  assert.equal(readBenchmarkRow(chosenOnly), null);
  assert.deepEqual(readBenchmark([kd, running, chosenOnly]).unfinished, [running, chosenOnly]);
  const empty = join(base, 'empty');
  mkdirSync(empty);
  assert.throws(() => readBenchmarkRow(empty), (e: Error) => e.message.includes(empty) && /no sweep\.json here/.test(e.message));
  const bad = join(base, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'sweep.json'), '{"name": "x"}');
  assert.throws(() => readBenchmarkRow(bad), (e: Error) => e.message.includes(join(bad, 'sweep.json')) && /not a sweep record/.test(e.message));
  writeFileSync(join(bad, 'sweep.json'), '{"name": ');
  assert.throws(() => readBenchmarkRow(bad), /sweep\.json: not readable as JSON/);
});

test('kdistill compare <sweep-dir>… prints the table without training; mixed or misplaced arguments are refused', () => {
  const BIN = join(packageRoot, 'bin', 'kdistill.js');
  const run = (...args: string[]): { code: number; out: string; err: string } => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, KDISTILL_QUIET: '1' } });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };
  const running = join(base, 'cli-running');
  mkdirSync(join(running, 'trials'), { recursive: true });
  const ok = run('compare', scratch, kd, running, '--baseline', 'bench-scratch');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /Δ vs bench-scratch/);
  assert.match(ok.out, /\| bench-kd +\| +3 \| 85\.00 ± 1\.00 \| +\+4\.00 ± 0\.82 \| +yes \|/);
  assert.ok(ok.out.includes(`not finished (no final seeds yet): ${running}`));
  const mixed = run('compare', kd, join(base, 'kd.yaml'));
  assert.equal(mixed.code, 1);
  assert.match(mixed.err, /is a folder: compare takes either experiment files or sweep folders, not both/);
  assert.match(run('compare', kd, '--seeds', '1,2').err, /--seeds and --out apply to experiment files/);
  assert.match(run('compare', join(base, 'kd.yaml'), '--baseline', 'x').err, /--baseline applies to sweep folders/);
});
