// The one-call library API (fit, distill) on a small real subset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distill, fit, loadFashionMnist, take, setNumThreads } from '../../src/index.js';
import { packageRoot } from '../../src/tensor/native.js';
import { parseExperiment } from '../../src/config/experiment.js';

setNumThreads(1);
const train = take(loadFashionMnist({ split: 'train' }), 1500, 5, { stratified: true });
const testSet = take(loadFashionMnist({ split: 'test' }), 500, 5, { stratified: true });

test('fit trains a teacher and distill turns it into a student that agrees with it', async () => {
  const teacher = await fit({ student: { arch: 'mlp', hidden: [64] }, data: { train, test: testSet }, epochs: 4, seed: 2 });
  assert.ok((teacher.final?.accuracy ?? 0) > 0.7, `teacher accuracy ${teacher.final?.accuracy}`);
  const r = await distill({ teacher: teacher.student, student: { arch: 'mlp', hidden: [16] }, data: { train, test: testSet }, epochs: 4, seed: 2 });
  assert.ok(r.student.numParameters() < teacher.student.numParameters());
  assert.ok((r.final?.agreement ?? 0) > 0.7, `agreement ${r.final?.agreement}`);
  await assert.rejects(distill({ teacher: teacher.student, student: { arch: 'mlp' }, data: { train, test: testSet }, method: 'nope', epochs: 1 }), /unknown method 'nope'/);
});

// One way to assemble a run (issue 16): distill() builds the experiment a file would describe and
// runs it through src/run, so the same settings give the same run, loss for loss. Equality is exact:
// same data rows, seed, thread count and operation order on one machine.
test('the library API and the CLI produce the same run from the same settings', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-api-cli-'));
  const teacher = join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors');
  const settings = { epochs: 2, seed: 4, batchSize: 64, method: { name: 'kd', params: { temperature: 3, alpha: 0.8 } }, optimizer: { name: 'sgd' as const, lr: 0.05, momentum: 0.9 } };
  writeFileSync(join(dir, 'exp.yaml'), [
    'data: { dataset: fashion-mnist, subset: 600, batchSize: 64 }', `teacher: { checkpoint: ${teacher} }`,
    'student: { arch: mlp, hidden: [16] }', 'method: { name: kd, params: { temperature: 3, alpha: 0.8 } }',
    'optimizer: { name: sgd, lr: 0.05, momentum: 0.9 }', 'epochs: 2', 'seed: 4', `output: ${join(dir, 'cli')}`,
  ].join('\n'));
  const cli = spawnSync(process.execPath, [join(packageRoot, 'bin', 'kdistill.js'), 'distill', join(dir, 'exp.yaml')], { encoding: 'utf8', env: { ...process.env, KDISTILL_QUIET: '1' } });
  assert.equal(cli.status, 0, cli.stderr);
  // data.subset takes a seeded, stratified subset of the training set: the API is handed the same rows.
  const full = loadFashionMnist({ split: 'train' });
  const api = await distill({ ...settings, teacher, student: { arch: 'mlp', hidden: [16] }, data: { train: take(full, 600, 4, { stratified: true }), test: loadFashionMnist({ split: 'test' }) }, outDir: join(dir, 'api') });
  const epochs = (run: string): unknown[] => readFileSync(join(dir, run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.type === 'epoch').map(({ seconds: _s, ...r }) => r);
  const cliEpochs = epochs('cli');
  assert.equal(cliEpochs.length, 2);
  assert.deepEqual(epochs('api'), cliEpochs);
  const result = (run: string): unknown => (JSON.parse(readFileSync(join(dir, run, 'result.json'), 'utf8')) as { test: unknown }).test;
  assert.deepEqual(result('api'), result('cli'));
  assert.deepEqual(api.final, result('cli'));
});

test('the library API takes its defaults from the experiment-file defaults, and needs epochs', async () => {
  // An experiment file without optimizer/schedule and fit() without them record the same settings.
  const dir = mkdtempSync(join(tmpdir(), 'kd-api-defaults-'));
  await fit({ student: { arch: 'mlp', hidden: [8] }, data: { train: take(train, 200, 1), test: take(testSet, 100, 1) }, epochs: 1, outDir: dir });
  const settings = (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { settings: { optimizer: unknown; schedule: unknown; data: { batchSize: number } } }).settings;
  const file = parseExperiment({ student: { arch: 'mlp' }, epochs: 1 });
  assert.deepEqual(settings.optimizer, file.optimizer);
  assert.deepEqual(settings.schedule, file.schedule);
  assert.equal(settings.data.batchSize, file.data.batchSize);
  await assert.rejects(fit({ student: { arch: 'mlp' }, data: { train, test: testSet } } as unknown as Parameters<typeof fit>[0]), /'epochs' is required/);
});
