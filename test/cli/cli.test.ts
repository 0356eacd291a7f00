// The kdistill command as a user runs it: exit codes, messages, and a real (tiny) run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/tensor/native.js';
import { METHODS } from '../../src/methods/registry.js';

const BIN = join(packageRoot, 'bin', 'kdistill.js');
function kdistill(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, KDISTILL_QUIET: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('kdistill methods lists every registered method with its paper', () => {
  const r = kdistill('methods');
  assert.equal(r.code, 0);
  for (const m of METHODS) {
    assert.ok(r.out.includes(m.name), `methods output lacks ${m.name}`);
    assert.ok(r.out.includes(m.paper.slice(0, 20)), `methods output lacks the paper of ${m.name}`);
  }
});

test('unknown commands and bad experiment files fail with a message naming the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-cli-'));
  assert.equal(kdistill('frobnicate').code, 2);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'epochs: 1\nstudent: { arch: mlp, hidden: [8] }\noptimizer: { name: sgd, lr: 0.1, momentun: 0.9 }\n');
  const r = kdistill('train', bad);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.yaml: 'optimizer\.momentun' is not a known key \(did you mean 'momentum'\?\)/);
  assert.ok(!r.err.includes('    at '), 'no stack trace');
  const noTeacher = join(dir, 'nt.yaml');
  writeFileSync(noTeacher, 'epochs: 1\nstudent: { arch: mlp, hidden: [8] }\n');
  assert.match(kdistill('distill', noTeacher).err, /'distill' needs a teacher/);
  const badArch = join(dir, 'arch.yaml');
  writeFileSync(badArch, 'epochs: 1\nstudent: { arch: mlpp }\n');
  assert.match(kdistill('train', badArch).err, /'student'.*unknown 'arch' "mlpp"/);
});

test('kdistill train runs a small real experiment and writes the run folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-cli-run-'));
  const exp = join(dir, 'tiny.yaml');
  writeFileSync(exp, [
    'seed: 3', 'data: { dataset: fashion-mnist, subset: 512, batchSize: 64 }', 'student: { arch: mlp, hidden: [16] }',
    'optimizer: { name: sgd, lr: 0.1, momentum: 0.9 }', 'epochs: 2', `output: ${join(dir, 'out')}`, '',
  ].join('\n'));
  const r = kdistill('train', exp);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /tiny .*scratch/);
  for (const f of ['log.jsonl', 'checkpoint.safetensors', 'model.safetensors', 'run.json', 'result.json', 'experiment.yaml']) {
    assert.ok(existsSync(join(dir, 'out', f)), `${f} missing`);
  }
  const run = JSON.parse(readFileSync(join(dir, 'out', 'run.json'), 'utf8')) as { seed: number; versions: { libtorch: string } };
  assert.equal(run.seed, 3);
  assert.match(run.versions.libtorch, /^\d+\.\d+/);
  const ev = kdistill('eval', join(dir, 'out', 'model.safetensors'));
  assert.equal(ev.code, 0, ev.err);
  assert.match(ev.out, /\d+\.\d+%/);
  // A run folder is evaluated on its own experiment's test data: the same numbers here.
  const evDir = kdistill('eval', join(dir, 'out'));
  assert.equal(evDir.code, 0, evDir.err);
  const acc = (out: string): string => /(\d+\.\d+)%/.exec(out)![1]!;
  assert.equal(acc(evDir.out), acc(ev.out));
  const result = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8')) as { test: { accuracy: number } };
  assert.equal(acc(evDir.out), (result.test.accuracy * 100).toFixed(2), "the run's own result");
  const both = kdistill('eval', join(dir, 'out'), '--data', 'mnist');
  assert.equal(both.code, 1);
  assert.match(both.err, /--data applies to a model file/);
});

test('kdistill demo prints the teacher / scratch / distilled table (on a small subset)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-demo-'));
  const r = kdistill('demo', '--epochs', '2', '--subset', '500', '--output', join(dir, 'demo'));
  assert.equal(r.code, 0, r.err);
  for (const row of ['teacher (CNN)', 'student from scratch', 'student distilled (KD)']) assert.ok(r.out.includes(row), `table lacks '${row}'`);
  assert.match(r.out, /KD vs scratch: [+-]\d+\.\d\d points/);
  assert.match(r.out, /92\.\d\d%/, 'the bundled teacher reaches 92.x% on the test set');
});
