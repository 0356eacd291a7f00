// Sobolev's order-2 term is vacuous on piecewise-linear (ReLU) networks: kdistill says so at
// setup (stderr) and in the run's result.json warnings; smooth networks, or order2 = 0, pass quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { order2Warning } from '../../src/methods/sobolev.js';
import { runExperimentFile } from '../../src/run/index.js';

process.env.KDISTILL_QUIET = '1';
const mlp = (activation: string) => createModel({ arch: 'mlp', numClasses: 10, hidden: [8], activation, inputShape: [4] });

test('order2Warning names the piecewise-linear networks and what the term reduces to', () => {
  const cnn = createModel({ arch: 'cnn', numClasses: 10, channels: [2, 2], hidden: 4 });
  const both = order2Warning([{ role: 'student', model: mlp('relu') }, { role: 'teacher', model: cnn }], 'logprobs');
  assert.match(both!, /the student \(relu\) and the teacher \(relu\) are piecewise linear/);
  assert.match(both!, /only a function of its Jacobian/);
  assert.match(order2Warning([{ role: 'student', model: mlp('leaky_relu') }, { role: 'teacher', model: mlp('tanh') }], 'logits')!, /the student \(leaky_relu\) is piecewise linear.*identically 0/);
  assert.equal(order2Warning([{ role: 'student', model: mlp('tanh') }, { role: 'teacher', model: mlp('gelu') }], 'logprobs'), null, 'smooth networks');
  assert.equal(order2Warning([{ role: 'student', model: createModel({ arch: 'bert', numClasses: 2, vocabSize: 10, layers: 1, hidden: 8, heads: 2, ffn: 8, maxLen: 4 }) }], 'logprobs'), null, 'bert is GELU');
  assert.equal(order2Warning([{ role: 'teacher', model: null }], 'logprobs'), null, 'a network outside the zoo is not judged');
});

test('sobolev setup warns once on stderr for order2 > 0 with a ReLU network, and not for order2 = 0 or smooth networks', () => {
  const spec = getMethod('sobolev');
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const setup = (params: Record<string, unknown>, student: string, teacher: string): string[] => {
      const m = spec.create(resolveParams(spec, params));
      torch.tidy(() => m.setup!({ student: mlp(student), teacher: new ModuleTeacher(mlp(teacher), 10, 't', 't'), numClasses: 10, datasetSize: null }));
      return m.warnings!();
    };
    assert.equal(setup({ order2: 1 }, 'relu', 'tanh').length, 1);
    assert.equal(written.filter((w) => w.startsWith("warning: method 'sobolev': order2 > 0")).length, 1);
    assert.deepEqual(setup({ order2: 0 }, 'relu', 'relu'), []);
    assert.deepEqual(setup({ order2: 1 }, 'tanh', 'tanh'), []);
    assert.equal(written.length, 1);
  } finally {
    process.stderr.write = write;
  }
});

test('the warning reaches result.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-sobolev2-'));
  const file = join(dir, 'chain.yaml');
  writeFileSync(file, `
seed: 1
data: { dataset: fashion-mnist, subset: 128, batchSize: 64 }
optimizer: { name: sgd, lr: 0.01 }
epochs: 1
output: out
stages:
  - { name: teacher, student: { arch: mlp, hidden: [8], activation: relu }, method: { name: scratch } }
  - { name: student, student: { arch: mlp, hidden: [8], activation: tanh }, method: { name: sobolev, params: { order1: 0, order2: 0.1 } } }
`);
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await runExperimentFile(file, { mode: 'distill' });
  } finally {
    process.stderr.write = write;
  }
  const r = JSON.parse(readFileSync(join(dir, 'out', 'stage1-student', 'result.json'), 'utf8')) as { warnings?: string[] };
  // (the one-epoch teacher may also draw the at-chance warning; only sobolev's matters here)
  const ours = (r.warnings ?? []).filter((w) => w.startsWith("method 'sobolev'"));
  assert.equal(ours.length, 1);
  assert.match(ours[0]!, /the teacher \(relu\) is piecewise linear/);
});
