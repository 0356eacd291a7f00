// kdistill sweep on tiny budgets (300 Fashion-MNIST samples, MLP[16], 2 epochs): the search space
// expands to the right trials; the test split is never read by the trials (its files are absent
// while they run); parallel trials equal sequential ones bit for bit; a rerun reuses finished
// trials; best.yaml repeats the best trial; bad input fails before anything trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Rng } from '../../src/data/rng.js';
import { expandTrials, parseSearchFlag, parseSweepBlock, mergeSweepSpecs, sample, type SweepSpec } from '../../src/config/sweep.js';
import { planSweep, sweep, type SweepResult } from '../../src/run/sweep.js';
import { medianRule, TrialStopped } from '../../src/run/sweep-trial.js';
import { loadExperiment } from '../../src/config/experiment.js';
import type { EpochRecord } from '../../src/train/trainer.js';
import { renderSweepHtml } from '../../src/report/sweep.js';
import { ROOT, stripTiming, writeTinyFashionMnist } from '../reliability/helpers.js';

const base = mkdtempSync(join(tmpdir(), 'kd-sweep-'));
const dataDir = writeTinyFashionMnist(join(base, 'data'), 300, 100);
const declared = (): string[] => [];

function experiment(name: string, extra: string[] = [], epochs = 2): string {
  const file = join(base, `${name}.yaml`);
  writeFileSync(file, [
    `name: ${name}`, 'seed: 5', 'threads: 1',
    // A relative data path: best.yaml (in another folder) must rebase it.
    `data: {dataset: fashion-mnist, path: data, batchSize: 32}`,
    'student: {arch: mlp, hidden: [16]}',
    'optimizer: {name: sgd, lr: 0.05, momentum: 0.9}',
    `epochs: ${epochs}`, `output: ${join(base, 'out', name)}`, ...extra,
  ].join('\n') + '\n');
  return file;
}

test('a grid expands to its cartesian product, first parameter slowest; values are checked per path', () => {
  const spec: SweepSpec = { params: [parseSearchFlag('grid', 'optimizer.lr=[0.05, 0.1]'), parseSearchFlag('grid', 'student.hidden=[[8], [16], [32]]')] };
  const doc = parseYaml(readFileSync(experiment('grid'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(expandTrials(spec, doc, 'x.yaml', 0, declared), [
    { 'optimizer.lr': 0.05, 'student.hidden': [8] }, { 'optimizer.lr': 0.05, 'student.hidden': [16] }, { 'optimizer.lr': 0.05, 'student.hidden': [32] },
    { 'optimizer.lr': 0.1, 'student.hidden': [8] }, { 'optimizer.lr': 0.1, 'student.hidden': [16] }, { 'optimizer.lr': 0.1, 'student.hidden': [32] },
  ]);
  // The file's block and the flags mean the same; a flag replaces the block's entry for its path.
  const block = parseSweepBlock({ grid: { 'optimizer.lr': [1, 2], 'student.hidden.0': [4, 8] } }, 'x.yaml');
  const merged = mergeSweepSpecs(block, { params: [parseSearchFlag('grid', 'optimizer.lr=[0.3]')] });
  assert.deepEqual(expandTrials(merged, doc, 'x.yaml', 0, declared), [{ 'optimizer.lr': 0.3, 'student.hidden.0': 4 }, { 'optimizer.lr': 0.3, 'student.hidden.0': 8 }]);
});

test('random trials are seeded and within their ranges (float, log, integer, choice)', () => {
  const doc = parseYaml(readFileSync(experiment('random'), 'utf8')) as Record<string, unknown>;
  const spec = parseSweepBlock({
    trials: 200,
    random: { 'optimizer.lr': { logRange: [0.001, 0.5] }, 'optimizer.momentum': { range: [0.5, 0.99] }, 'student.hidden.0': { range: [8, 12], int: true }, epochs: [1, 2] },
  }, 'x.yaml');
  const a = expandTrials(spec, doc, 'x.yaml', 7, declared);
  assert.equal(a.length, 200);
  assert.deepEqual(expandTrials(spec, doc, 'x.yaml', 7, declared), a, 'same seed, same trials');
  assert.notDeepEqual(expandTrials(spec, doc, 'x.yaml', 8, declared), a, 'another seed, other trials');
  const col = (k: string): number[] => a.map((t) => t[k] as number);
  assert.ok(col('optimizer.lr').every((v) => v >= 0.001 && v <= 0.5));
  assert.ok(col('optimizer.momentum').every((v) => v >= 0.5 && v <= 0.99));
  assert.deepEqual([...new Set(col('student.hidden.0'))].sort((x, y) => x - y), [8, 9, 10, 11, 12], 'every integer of [8, 12], bounds included, nothing else');
  assert.deepEqual([...new Set(col('epochs'))].sort((x, y) => x - y), [1, 2]);
  // Log-uniform: half the draws below the geometric mean sqrt(0.001·0.5) ≈ 0.0224; a uniform draw
  // would put ~4% there. 200 draws: the count is Binomial(200, 0.5), 100 ± 7, so 70..130 fails
  // only if the sampler is wrong (or with probability < 1e-5).
  const below = col('optimizer.lr').filter((v) => v < Math.sqrt(0.001 * 0.5)).length;
  assert.ok(below > 70 && below < 130, `log-uniform draws below the geometric mean: ${below} of 200`);
  // An integer log range stays integral and in range.
  const r = new Rng(1);
  for (let i = 0; i < 100; i++) {
    const v = sample({ kind: 'range', lo: 16, hi: 256, log: true, int: true }, r) as number;
    assert.ok(Number.isInteger(v) && v >= 16 && v <= 256, String(v));
  }
});

test('bad input fails before anything trains, naming the path or value', () => {
  const file = experiment('bad');
  const kd = experiment('bad-kd', [`teacher: {checkpoint: ${join(ROOT, 'assets', 'fashion-mnist-teacher.safetensors')}}`, 'method: {name: kd}']);
  const plan = (f: string, ...flags: [Parameters<typeof parseSearchFlag>[0], string][]): unknown => planSweep(f, { cli: { params: flags.map(([k, v]) => parseSearchFlag(k, v)) }, out: join(base, 'never') });
  assert.throws(() => plan(file, ['grid', 'optimizer.lrr=[0.1]']), /'optimizer\.lrr' is not in the experiment file \(did you mean 'lr'\?\)/);
  assert.throws(() => plan(file, ['grid', 'student.hiden=[[8]]']), /'student\.hiden' is not in the experiment file \(did you mean 'hidden'\?\)/);
  assert.throws(() => plan(kd, ['grid', 'method.params.temprature=[2]']), /'method\.params\.temprature' is not a hyper-parameter of method 'kd' \(did you mean 'temperature'\?\)/);
  // A declared hyper-parameter left at its default in the file may be swept; its declaration's range is enforced per trial.
  assert.throws(() => plan(kd, ['grid', 'method.params.temperature=[4, -1]']), /sweep trial 2 \(method\.params\.temperature=-1\): .*temperature/);
  assert.throws(() => plan(file, ['grid', 'optimizer.lr=[0.1, -0.5]']), /sweep trial 2 \(optimizer\.lr=-0\.5\): .*'optimizer\.lr' must be >= 0/);
  assert.throws(() => plan(file, ['grid', 'data.heldOut=[10]']), /'data\.heldOut' cannot be swept/);
  assert.throws(() => plan(file), /has nothing to search/);
  assert.throws(() => parseSearchFlag('grid', 'optimizer.lr=[]'), /--grid 'optimizer\.lr=\[\]': is an empty list/);
  assert.throws(() => parseSearchFlag('grid', 'optimizer.lr'), /--grid 'optimizer\.lr': no PATH=VALUES \(expected PATH=\[\.\.\.\]/);
  assert.throws(() => parseSearchFlag('grid', 'optimizer.lr=0.1'), /the values must be a list in brackets/);
  assert.throws(() => parseSearchFlag('log-range', 'optimizer.lr=[0, 1]'), /logRange needs a > 0/);
  assert.throws(() => parseSweepBlock({ random: { 'optimizer.lr': { range: [0, 1] } } }, 'x.yaml'), /'sweep\.trials' is required/);
  // The sweep block is part of the experiment file: train/distill check it too.
  const withBlock = experiment('block', ['sweep: {grid: {optimizer.lr: 0.1}}']);
  assert.throws(() => loadExperiment(withBlock), /'sweep\.grid\.optimizer\.lr' must be a list of values/);
  assert.ok(!existsSync(join(base, 'never')), 'nothing was written');
});

test('the median rule stops a trial below the finished trials\' median, and only then', () => {
  const curves = join(base, 'curves.json');
  const rule = medianRule({ curvesFile: curves, metric: 'accuracy', maximise: true, minTrials: 3 }, 3);
  const rec = (epoch: number, accuracy: number): EpochRecord => ({ type: 'epoch', epoch, step: 0, lr: 0, train: {}, seconds: 0, eval: { accuracy } as EpochRecord['eval'] });
  rule(rec(0, 0.1)); // no curves file yet: no finished trial
  writeFileSync(curves, JSON.stringify({ a: [0.5, 0.6, 0.7], b: [0.4, 0.5, 0.6] }));
  rule(rec(0, 0.1)); // 2 finished trials < minTrials
  writeFileSync(curves, JSON.stringify({ a: [0.5, 0.6, 0.7], b: [0.4, 0.5, 0.6], c: [0.3, 0.4, 0.5] }));
  rule(rec(0, 0.4)); // at the median: goes on
  assert.throws(() => rule(rec(1, 0.45)), (e: unknown) => e instanceof TrialStopped && e.at.median === 0.5 && e.at.epoch === 1);
  rule(rec(2, 0.1)); // the last epoch: nothing left to save
});

test('trials never read the test split; parallel equals sequential; a rerun reuses them; best.yaml repeats the best trial', async () => {
  const file = experiment('tiny');
  const cli = { params: [parseSearchFlag('grid', 'optimizer.lr=[0.02, 0.1]')], validation: 60 };
  // The test split's files are gone while the trials run: a trial that read them would fail.
  const testFiles = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map((f) => join(dataDir, f));
  for (const f of testFiles) renameSync(f, `${f}.away`);
  let par: SweepResult, seq: SweepResult;
  try {
    par = await sweep(file, { cli, seeds: [], jobs: 2, out: join(base, 'par') });
    seq = await sweep(file, { cli, seeds: [], jobs: 1, out: join(base, 'seq') });
  } finally {
    for (const f of testFiles) renameSync(`${f}.away`, f);
  }
  const rows = par.record.trials;
  assert.deepEqual(rows.map((r) => r.status), ['finished', 'finished']);
  assert.equal(par.record.validation.samples, 60);
  for (const r of rows) {
    const run = JSON.parse(readFileSync(join(r.dir, 'run.json'), 'utf8')) as { data: { test: unknown; testSources: unknown[]; sizes: Record<string, number> } };
    assert.equal(run.data.test, null);
    assert.deepEqual(run.data.testSources, []);
    assert.equal(run.data.sizes.val, 60);
    const res = JSON.parse(readFileSync(join(r.dir, 'result.json'), 'utf8')) as { test: unknown; val: { accuracy: number } };
    assert.equal(res.test, null);
    assert.equal(res.val.accuracy, r.value);
  }
  // Same seed, one thread each, each trial alone in its process: the same floating-point
  // operations in the same order, so the logs (losses, metrics) are bit-identical, not merely close.
  for (let i = 0; i < rows.length; i++) {
    const a = rows[i]!, b = seq.record.trials[i]!;
    assert.equal(a.key, b.key);
    assert.equal(stripTiming(readFileSync(join(a.dir, 'log.jsonl'), 'utf8')), stripTiming(readFileSync(join(b.dir, 'log.jsonl'), 'utf8')));
    assert.equal(a.value, b.value);
  }
  // A rerun trains nothing: every trial is reused, its files untouched.
  const mtimes = rows.map((r) => statSync(join(r.dir, 'model.safetensors')).mtimeMs);
  const again = await sweep(file, { cli, seeds: [], jobs: 2, out: join(base, 'par') });
  assert.deepEqual(again.record.trials.map((r) => r.reused), [true, true]);
  assert.deepEqual(again.record.trials.map((r) => statSync(join(r.dir, 'model.safetensors')).mtimeMs), mtimes);
  assert.deepEqual(again.record.trials.map((r) => r.value), rows.map((r) => r.value));
  // A changed experiment keys its trials elsewhere: nothing of the old sweep is taken for it.
  const changed = planSweep(experiment('tiny-longer', [], 3), { cli, out: join(base, 'par') });
  assert.ok(changed.trials.every((t) => !rows.some((r) => r.key === t.key)));

  // best.yaml (in the sweep folder, its data path rebased) run as is on the experiment's own seed
  // through the final stage: the same validation accuracy as the best trial, and now a test score.
  const best = rows.reduce((a, b) => (b.value! > a.value! ? b : a), rows[0]!);
  assert.equal(again.record.best!.trial, best.trial);
  const text = readFileSync(again.bestFile!, 'utf8');
  assert.match(text, /path: \.\.\/data\b/);
  assert.doesNotMatch(text, /sweep:/);
  const fin = await sweep(file, { cli, seeds: [5], jobs: 1, out: join(base, 'par') });
  const run = JSON.parse(readFileSync(join(base, 'par', 'best', 'seed5', 'result.json'), 'utf8')) as { val: { accuracy: number }; test: { accuracy: number } };
  assert.equal(run.val.accuracy, best.value);
  assert.equal(stripTiming(readFileSync(join(base, 'par', 'best', 'seed5', 'log.jsonl'), 'utf8')).replace(/"eval":\{[^}]*\},?/g, ''),
    stripTiming(readFileSync(join(best.dir, 'log.jsonl'), 'utf8')).replace(/"eval":\{[^}]*\},?/g, ''), 'the same training steps');
  assert.equal(fin.record.final!.runs[0]!.accuracy, run.test.accuracy);
  assert.match(fin.table, /test acc/);
  // sweep.md on disk ends with the same final table (the records a sweep leaves must hold it).
  const md = readFileSync(join(base, 'par', 'sweep.md'), 'utf8');
  assert.ok(md.includes(`The chosen setting on seeds 5, scored on the test set:\n\n${fin.record.final!.table}`), md);
  // The report: one chart per swept parameter, a point per trial.
  const html = renderSweepHtml(fin.record, fin.table);
  assert.equal((html.match(/<svg/g) ?? []).length, 1);
  assert.equal((html.match(/<circle/g) ?? []).length, 2);
});
