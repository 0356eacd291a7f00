// The output folder as a shared resource (issue 14): a changed experiment must not resume a run
// it did not start, two runs must not write one folder, and an output that cannot be written
// must fail at once naming the 'output' field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT, runCli, writeExperiment, writeTinyFashionMnist } from './helpers.js';
import { LOCK_FILE, lockFolder } from '../../src/util/lock.js';
import { ensureDir } from '../../src/util/fs.js';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), p));

test('a changed experiment does not resume a finished run: it stops naming each change, and the records stay as they were', async () => {
  const dir = tmp('kd-resume-');
  const data = writeTinyFashionMnist(join(dir, 'data'), 256, 64);
  const exp = writeExperiment(dir, data, { epochs: 1, checkpointEvery: 0 });
  const first = await runCli(['train', exp]);
  assert.equal(first.code, 0, first.stderr);
  const out = join(dir, 'out');
  const records = ['run.json', 'experiment.yaml', 'result.json', 'log.jsonl'].map((f) => readFileSync(join(out, f), 'utf8'));

  // A new learning rate and seed: refused, each change named old → new, the ways out offered.
  writeFileSync(exp, readFileSync(exp, 'utf8').replace('lr: 0.05', 'lr: 0.5'));
  const changed = await runCli(['train', exp, '--seed', '9']);
  assert.equal(changed.code, 1, changed.stdout);
  assert.match(changed.stderr, /optimizer\.lr: 0\.05 → 0\.5/);
  assert.match(changed.stderr, /seed: 5 → 9/);
  assert.match(changed.stderr, /--no-resume/);
  assert.match(changed.stderr, /another output folder/);
  assert.deepEqual(['run.json', 'experiment.yaml', 'result.json', 'log.jsonl'].map((f) => readFileSync(join(out, f), 'utf8')), records, 'the folder is untouched');

  // Changed data under the same path: refused too, naming the file.
  writeFileSync(exp, readFileSync(exp, 'utf8').replace('lr: 0.5', 'lr: 0.05'));
  writeTinyFashionMnist(data, 256, 32);
  const newData = await runCli(['train', exp]);
  assert.equal(newData.code, 1);
  assert.match(newData.stderr, /data file .*t10k-images-idx3-ubyte: sha256 [0-9a-f]{12}… → sha256 [0-9a-f]{12}…/);
  writeTinyFashionMnist(data, 256, 64);

  // More epochs continue the run; --no-resume starts a changed one over.
  const more = await runCli(['train', exp, '--epochs', '2']);
  assert.equal(more.code, 0, more.stderr);
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; epoch: number });
  assert.deepEqual(log.filter((r) => r.type === 'epoch').map((r) => r.epoch), [0, 1], 'epoch 2 appended to epoch 1');
  const fresh = await runCli(['train', exp, '--seed', '9', '--no-resume']);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.equal((JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { seed: number }).seed, 9);
});

test('a second run into a folder in use is refused naming the folder and the holder; a dead holder\'s lock is taken over', async () => {
  const dir = tmp('kd-lock-');
  const data = writeTinyFashionMnist(join(dir, 'data'), 256, 64);
  const exp = writeExperiment(dir, data, { epochs: 1 });
  const out = join(dir, 'out');
  ensureDir(out);
  // This process holds the folder, as a run in progress would.
  const lock = lockFolder(out, 'test');
  try {
    const second = await runCli(['train', exp]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another kdistill run \\(pid ${process.pid} on `));
    assert.ok(!existsSync(join(out, 'log.jsonl')), 'nothing written');
  } finally {
    lock.release();
  }
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'released');
  // A lock left by a process that no longer exists (killed outright).
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: 'earlier' }));
  const r = await runCli(['train', exp]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`taking over the lock of .* from pid ${dead}, which is no longer running`));
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'released at the end of the run');
});

test('an unwritable output fails at once naming the output field (no endless mkdir under /proc)', async () => {
  const dir = tmp('kd-unwritable-');
  const data = writeTinyFashionMnist(join(dir, 'data'), 64, 16);
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  for (const [output, why] of [['/proc/kdistill-x/run', /ENOENT/], [join(file, 'run'), /is a file, not a folder/]] as const) {
    const exp = writeExperiment(dir, data, { epochs: 1, extra: `output: ${output}`, name: 'bad' });
    // writeExperiment's own output line comes first; a duplicate key would be refused, so replace it.
    writeFileSync(exp, readFileSync(exp, 'utf8').replace(/^output: .*\n/m, ''));
    const r = await runCli(['train', exp]);
    assert.ok(r.ms < 30_000, 'fails at once');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml: 'output': cannot create or write the folder/);
    assert.match(r.stderr, why);
    const ex = spawnSync(process.execPath, [CLI, 'export', join(ROOT, 'assets', 'fashion-mnist-teacher.safetensors'), '--out', output], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(ex.status, 1, ex.stderr);
    assert.match(ex.stderr, /export: --out: cannot create or write the folder/);
  }
  assert.throws(() => ensureDir('/proc/kdistill-y/z', "x.yaml: 'output'"), /x\.yaml: 'output': cannot create or write the folder \/proc\/kdistill-y\/z/);
});
