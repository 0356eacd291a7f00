// Operator profiles (src/tensor/profiler.ts, src/train/profile.ts, `kdistill train --profile`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/tensor/native.js';
import { torch } from '../../src/torch.js';
import * as F from '../../src/tensor/functional.js';
import { tidy } from '../../src/tensor/scope.js';
import { profile, startProfile, stopProfile, type OpProfile } from '../../src/tensor/profiler.js';
import { StepProfiler, type StepsProfile } from '../../src/train/profile.js';

const w = torch.randn([32, 16]).requiresGrad_(true).keep();
const b = torch.randn([32]).requiresGrad_(true).keep();
const x = torch.randn([8, 16]).keep();
const step = (): void => tidy(() => F.linear(x, w, b).relu().sum().backward());
const calls = (ops: OpProfile[], name: string): number => ops.find((o) => o.name === name)?.calls ?? 0;

test('a profile counts every call of an operator, forward and backward, with self time inside total', () => {
  const p = profile(() => {
    for (let i = 0; i < 3; i++) step();
  });
  // linear with a bias is one addmm per forward; the weight's gradient is an mm in backward
  assert.equal(calls(p.ops, 'aten::addmm'), 3);
  assert.ok(calls(p.ops, 'aten::mm') >= 3, 'backward matmuls');
  assert.equal(calls(p.ops, 'aten::relu'), 3);
  for (const o of p.ops) assert.ok(o.selfMs >= 0 && o.selfMs <= o.totalMs + 1e-9, `${o.name}: self ${o.selfMs} > total ${o.totalMs}`);
  // aten::linear calls addmm: its total time includes addmm's
  assert.ok(p.ops.find((o) => o.name === 'aten::linear')!.totalMs >= p.ops.find((o) => o.name === 'aten::addmm')!.totalMs);
  // op time is part of the wall-clock time (5 %: the two clocks are read at different points)
  assert.ok(p.opMs > 0 && p.opMs <= p.wallMs * 1.05, `op time ${p.opMs} ms within wall ${p.wallMs} ms`);
  for (let i = 1; i < p.ops.length; i++) assert.ok(p.ops[i - 1]!.selfMs >= p.ops[i]!.selfMs, 'sorted by self time');
  // one profile at a time; after stopping, nothing more is recorded
  startProfile();
  assert.throws(() => startProfile(), /already being recorded/);
  assert.equal(stopProfile(0).ops.length, 0);
  step();
  assert.throws(() => stopProfile(0), /no profile is being recorded/);
});

test('StepProfiler records exactly the steps of its window, and a window the run cut short', () => {
  const got: StepsProfile[] = [];
  const sp = new StepProfiler({ from: 2, steps: 3 }, (p) => got.push(p));
  for (let i = 0; i < 7; i++) sp.around(i, step);
  sp.finish(); // nothing open: no second report
  assert.equal(got.length, 1);
  assert.equal(calls(got[0]!.ops, 'aten::addmm'), 3);
  assert.deepEqual([got[0]!.firstStep, got[0]!.lastStep], [2, 4]);
  const short = new StepProfiler({ from: 1, steps: 10 }, (p) => got.push(p));
  for (let i = 0; i < 4; i++) short.around(i, step);
  short.finish();
  assert.equal(got.length, 2);
  assert.equal(calls(got[1]!.ops, 'aten::addmm'), 3);
  assert.deepEqual([got[1]!.firstStep, got[1]!.lastStep], [1, 3]);
});

test('kdistill train --profile-steps prints the top operators and writes profile.json/.txt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-profile-'));
  const exp = join(dir, 'tiny.yaml');
  writeFileSync(exp, ['seed: 1', 'data: { dataset: fashion-mnist, subset: 512, batchSize: 64 }', 'student: { arch: mlp, hidden: [16] }',
    'optimizer: { name: sgd, lr: 0.1 }', 'epochs: 1', `output: ${join(dir, 'out')}`, ''].join('\n'));
  const r = spawnSync(process.execPath, [join(packageRoot, 'bin', 'kdistill.js'), 'train', exp, '--profile-steps', '2-4'], { encoding: 'utf8', env: { ...process.env, KDISTILL_QUIET: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /profile of 3 training steps \(2–4/);
  assert.match(r.stdout, /aten::addmm/);
  const p = JSON.parse(readFileSync(join(dir, 'out', 'profile.json'), 'utf8')) as StepsProfile;
  // two linear layers with bias (hidden and head) → one addmm each per step, 3 steps
  assert.equal(calls(p.ops, 'aten::addmm'), 6);
  assert.match(readFileSync(join(dir, 'out', 'profile.txt'), 'utf8'), /aten::addmm +6 /);
  const bad = spawnSync(process.execPath, [join(packageRoot, 'bin', 'kdistill.js'), 'train', exp, '--profile-steps', '5-2'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--profile-steps must be A-B/);
});
