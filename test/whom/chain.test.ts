// Teacher-assistant chains: each stage writes its run folder, the next stage reads the previous
// stage's model.safetensors as its teacher, and a finished stage is skipped on a rerun unless its
// config (or its teacher's weights) changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runExperimentFile } from '../../src/run/index.js';
import { planChain, type ChainResult } from '../../src/run/chain.js';
import type { ZooModel } from '../../src/nn/zoo/index.js';

process.env.KDISTILL_QUIET = '1';

const chainYaml = (studentEpochs: number): string => `
name: tiny-chain
seed: 3
data: { dataset: fashion-mnist, subset: 512, batchSize: 128 }
optimizer: { name: sgd, lr: 0.05, momentum: 0.9 }
epochs: 1
output: out
stages:
  - name: teacher
    student: { arch: mlp, hidden: [32] }
    method: { name: scratch }
  - name: assistant
    student: { arch: mlp, hidden: [16] }
    method: { name: kd, params: { temperature: 4 } }
  - name: student
    student: { arch: mlp, hidden: [8] }
    method: { name: kd, params: { temperature: 4 } }
    epochs: ${studentEpochs}
`;

const mtime = (p: string): number => statSync(p).mtimeMs;

test('a chain runs every stage into <output>/stage<i>-<name>/, each distilling from the previous one, and skips finished stages', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-chain-'));
  const file = join(dir, 'chain.yaml');
  writeFileSync(file, chainYaml(1));
  const r1 = await runExperimentFile(file, { mode: 'distill' }) as ChainResult;
  const stages = ['stage0-teacher', 'stage1-assistant', 'stage2-student'].map((s) => join(dir, 'out', s));
  for (const s of stages) {
    for (const f of ['model.safetensors', 'result.json', 'log.jsonl', 'run.json', 'stage.json', 'checkpoint.safetensors']) assert.ok(existsSync(join(s, f)), `${s}/${f}`);
  }
  assert.deepEqual(r1.stages.map((s) => s.skipped), [false, false, false]);
  // stage i > 0 read stage i−1's weights as its teacher; stage 0 had none
  const run = (i: number) => JSON.parse(readFileSync(join(stages[i]!, 'run.json'), 'utf8')) as { teacher: { description: string } | null };
  assert.equal(run(0).teacher, null);
  assert.equal(run(1).teacher!.description, `checkpoint ${join(stages[0]!, 'model.safetensors')}`);
  assert.equal(run(2).teacher!.description, `checkpoint ${join(stages[1]!, 'model.safetensors')}`);
  assert.ok(existsSync(join(dir, 'out', 'chain.json')));
  assert.deepEqual((r1.student as ZooModel).spec.hidden, [8], 'the result is the last stage\'s student');

  // a rerun redoes nothing
  const models = stages.map((s) => mtime(join(s, 'model.safetensors')));
  const r2 = await runExperimentFile(file, { mode: 'distill' }) as ChainResult;
  assert.deepEqual(r2.stages.map((s) => s.skipped), [true, true, true]);
  assert.deepEqual(stages.map((s) => mtime(join(s, 'model.safetensors'))), models);
  assert.match(r2.summary, /skipped/);
  assert.equal(r2.result.final?.accuracy, r1.result.final?.accuracy);

  // changing the last stage redoes only that stage
  writeFileSync(file, chainYaml(2));
  const r3 = await runExperimentFile(file, { mode: 'distill' }) as ChainResult;
  assert.deepEqual(r3.stages.map((s) => s.skipped), [true, true, false]);
  assert.equal(mtime(join(stages[0]!, 'model.safetensors')), models[0]);
  assert.ok(mtime(join(stages[2]!, 'model.safetensors')) > models[2]!);
  assert.equal(r3.result.epochs.length, 2);
});

test('chain files are validated whole: later stages cannot name a teacher, names are unique, stages are required', () => {
  const base = { epochs: 1, optimizer: { name: 'sgd', lr: 0.1 }, output: '/tmp/x', student: { arch: 'mlp', hidden: [8] } };
  assert.throws(() => planChain({ ...base, stages: [{}, { teacher: { checkpoint: 'a.safetensors' } }] }, 'c.yaml'), /stages\.1\.teacher' is stage 0's model/);
  assert.throws(() => planChain({ ...base, stages: [{ name: 'a' }, { name: 'a' }] }, 'c.yaml'), /repeats 'a'/);
  assert.throws(() => planChain({ ...base, stages: [] }, 'c.yaml'), /non-empty list/);
  assert.throws(() => planChain({ ...base, stages: [{ epoch: 2 }] }, 'c.yaml'), /'epoch' is not a known key/);
  const plan = planChain({ ...base, data: { subset: 100, batchSize: 32 }, stages: [{ name: 'a', data: { batchSize: 16 } }, { name: 'b' }] }, 'c.yaml');
  assert.equal(plan.stages[0]!.experiment.data.batchSize, 16);
  assert.equal(plan.stages[0]!.experiment.data.subset, 100, 'data is merged key by key');
  assert.equal(plan.stages[1]!.experiment.data.batchSize, 32);
  assert.equal(plan.stages[1]!.experiment.method.name, 'kd', 'later stages distill by default');
  assert.deepEqual(plan.stages[1]!.experiment.teachers, [{ checkpoint: '/tmp/x/stage0-a/model.safetensors' }]);
});

test('init: previous — a stage starts from the previous stage\'s weights and distils from its own teacher (FitNets\' two stages)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-chain-init-'));
  const file = join(dir, 'fitnet.yaml');
  const cnn = '{ arch: cnn, channels: [4, 8], hidden: 16 }';
  writeFileSync(file, `
name: tiny-fitnet
seed: 5
data: { dataset: fashion-mnist, subset: 256, batchSize: 128 }
optimizer: { name: sgd, lr: 0.05, momentum: 0.9 }
epochs: 1
output: out
stages:
  - name: teacher
    student: { arch: cnn, channels: [8, 16], hidden: 16 }
    method: { name: scratch }
  - name: hint
    student: ${cnn}
    method: { name: fitnet, params: { pairs: [stage2], hintOnly: true, regressor: conv, loss: half_sse, beta: 0.001 } }
  - name: kd
    init: previous
    teacher: { checkpoint: out/stage0-teacher/model.safetensors }
    student: ${cnn}
    # lr 0: the weights it ends with are those it started from
    optimizer: { name: sgd, lr: 0 }
    method: { name: kd, params: { temperature: 4 } }
`);
  const r = await runExperimentFile(file, { mode: 'distill' }) as ChainResult;
  assert.deepEqual(r.stages.map((s) => s.skipped), [false, false, false]);
  const stages = ['stage0-teacher', 'stage1-hint', 'stage2-kd'].map((s) => join(dir, 'out', s));
  const run = (i: number) => JSON.parse(readFileSync(join(stages[i]!, 'run.json'), 'utf8')) as { teacher: { description: string } | null };
  assert.equal(run(1).teacher!.description, `checkpoint ${join(stages[0]!, 'model.safetensors')}`, 'the hint stage learns from the previous model');
  assert.equal(run(2).teacher!.description, `checkpoint ${join(stages[0]!, 'model.safetensors')}`, 'init: previous keeps the original teacher, not stage 1\'s student');
  const terms = (i: number): string[] => Object.keys((JSON.parse(readFileSync(join(stages[i]!, 'log.jsonl'), 'utf8').split('\n').find((l) => l.includes('"type":"epoch"'))!) as { train: Record<string, number> }).train);
  assert.ok(terms(1).includes('hint') && !terms(1).includes('ce') && !terms(1).includes('kd'), `hint stage terms: ${terms(1).join(', ')}`);
  // stage 2 started from stage 1's weights (lr 0 keeps them); the regressor is not part of the student
  const { loadSafetensors } = await import('../../src/nn/safetensors.js');
  const w1 = loadSafetensors(join(stages[1]!, 'model.safetensors')).tensors, w2 = loadSafetensors(join(stages[2]!, 'model.safetensors')).tensors;
  assert.deepEqual([...w1.keys()].sort(), [...w2.keys()].sort(), 'the hint stage saved the student alone (no regressor)');
  for (const k of [...w1.keys()].filter((k) => k.endsWith('weight') && !k.includes('running'))) {
    assert.deepEqual([...w2.get(k)!.toFloat64Array()], [...w1.get(k)!.toFloat64Array()], `${k} carried over`);
  }
  // the stage's hash covers the weights it starts from: new stage-1 weights redo stage 2
  const { planChain: plan, stageHash } = await import('../../src/run/chain.js');
  const { readExperimentDocument } = await import('../../src/config/experiment.js');
  const e2 = plan(readExperimentDocument(file).raw, file).stages[2]!.experiment;
  assert.deepEqual(e2.init, { from: 'file', path: join(stages[1]!, 'model.safetensors') });
  const before = stageHash(e2);
  writeFileSync(join(stages[1]!, 'model.safetensors'), Buffer.concat([readFileSync(join(stages[1]!, 'model.safetensors')), Buffer.from(' ')]));
  assert.notEqual(stageHash(e2), before);
});

test('init: previous is a later stage\'s key', () => {
  const base = { epochs: 1, optimizer: { name: 'sgd', lr: 0.1 }, output: '/tmp/x', student: { arch: 'mlp', hidden: [8] } };
  assert.throws(() => planChain({ ...base, stages: [{ init: 'previous' }] }, 'c.yaml'), /stages\.0\.init' is 'previous', but stage 0 has no previous stage/);
  assert.throws(() => planChain({ ...base, init: 'previous', stages: [{}, {}] }, 'c.yaml'), /'previous' is a stage key/);
  const p = planChain({ ...base, teacher: { checkpoint: '/tmp/t.safetensors' }, stages: [{ name: 'a' }, { name: 'b', init: 'previous' }] }, 'c.yaml');
  assert.deepEqual(p.stages[1]!.experiment.teachers, [{ checkpoint: '/tmp/t.safetensors' }], 'the shared (original) teacher');
  assert.deepEqual(p.stages[1]!.experiment.init, { from: 'file', path: '/tmp/x/stage0-a/model.safetensors' });
});
