// Mismatches caught before training starts, each with a message that says what to change:
// teacher/student class counts, label ids out of range, inputs a model cannot take, TorchScript
// teachers whose output is not logits. "Before training" = no log.jsonl in the output folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/tensor/torch.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { saveModel } from '../../src/nn/safetensors.js';
import { runExperimentFile } from '../../src/run/index.js';
import { FIX, writeExperiment, writeTinyFashionMnist } from './helpers.js';

const base = mkdtempSync(join(tmpdir(), 'kd-mismatch-'));
const data = writeTinyFashionMnist(join(base, 'data'), 128, 64);
let n = 0;
let caught = 0;

/** Runs an experiment that must fail before training with a message matching every pattern. */
async function mustFail(what: string, yaml: { extra: string; data?: string; student?: string }, ...patterns: RegExp[]): Promise<void> {
  const dir = join(base, `case${n++}`);
  const file = writeExperiment(dir, data, { epochs: 1, extra: yaml.extra });
  let text = readFileSync(file, 'utf8');
  if (yaml.data) text = text.replace(/^data: .*$/m, `data: ${yaml.data}`);
  if (yaml.student) text = text.replace(/^student: .*$/m, `student: ${yaml.student}`);
  writeFileSync(file, text);
  await assert.rejects(runExperimentFile(file, { mode: yaml.extra.includes('teacher') ? 'distill' : 'train' }), (e: Error) => {
    for (const p of patterns) assert.match(e.message, p, `${what}: ${e.message}`);
    assert.ok(e.message.includes(file), `${what}: the message names the experiment file: ${e.message}`);
    return true;
  });
  assert.ok(!existsSync(join(dir, 'out', 'log.jsonl')), `${what}: training started`);
  caught++;
}

function csv(file: string, rows: [number[], number | string][]): string {
  writeFileSync(file, 'a,b,c,d,label\n' + rows.map(([x, y]) => `${x.join(',')},${y}`).join('\n') + '\n');
  return file;
}
const rows = (labels: (number | string)[]): [number[], number | string][] => labels.map((l, i) => [[i, i / 2, -i, 1], l]);

test('teacher and student with different numbers of classes', async () => {
  manualSeed(1);
  const t5 = join(base, 'teacher5.safetensors');
  saveModel(t5, createModel({ arch: 'mlp', hidden: [8], numClasses: 5, inputShape: [1, 28, 28] }));
  await mustFail('checkpoint teacher, 5 classes', { extra: `teacher: {checkpoint: ${t5}}` }, /predicts 5 classes but the data has 10/, /use a teacher trained on the same label set/);
  await mustFail('TorchScript teacher, 5 classes', { extra: `teacher: {torchscript: ${join(FIX, 'five.pt')}}` }, /predicts 5 classes but the data has 10/);
});

test('label ids out of range are caught at data preparation', async () => {
  const train = csv(join(base, 'train.csv'), rows([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]));
  const badTest = csv(join(base, 'test-bad.csv'), rows([0, 1, 7, 2]));
  await mustFail('test label beyond the training classes', { data: `{dataset: csv, path: ${train}, testPath: ${badTest}, batchSize: 4}`, extra: '' },
    /test-bad\.csv has label id 7 at sample 2, out of range for the 3 classes/, /fix the label|data\.numClasses/);
  const stray = csv(join(base, 'stray.csv'), rows([0, 1, 2, 0, 1, 2, 999, 1, 2, 0, 1, 2]));
  await mustFail('a stray label id', { data: `{dataset: csv, path: ${stray}, batchSize: 4}`, extra: '' },
    /label id 999 .*only 4 distinct ids/, /data\.numClasses/);
  await mustFail('labels beyond declared numClasses', { data: `{dataset: csv, path: ${train}, numClasses: 2, batchSize: 4}`, extra: '' },
    /'data\.numClasses' is 2 but .* has label id 2/);
  const badDir = writeTinyFashionMnist(join(base, 'badlabel'), 64, 32);
  const lbl = join(badDir, 't10k-labels-idx1-ubyte');
  const bytes = readFileSync(lbl);
  bytes[8 + 5] = 12;
  writeFileSync(lbl, bytes);
  await mustFail('MNIST-format labels beyond 10 classes', { data: `{dataset: fashion-mnist, path: ${badDir}, batchSize: 4}`, extra: '' },
    /label \d+ at index \d+ is out of range \(10 classes\)/);
});

test('an input shape the model cannot take', async () => {
  const train = csv(join(base, 'train2.csv'), rows([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]));
  await mustFail('image CNN student on tabular rows', { data: `{dataset: csv, path: ${train}, batchSize: 4}`, student: '{arch: lenet5}', extra: '' }, /'student'/, /\[4\]/);
  await mustFail('TorchScript teacher for 3×32×32 images', { extra: `teacher: {torchscript: ${join(FIX, 'rgb32.pt')}}` }, /cannot take inputs of shape \[2, 1, 28, 28\]/);
});

test('TorchScript teachers whose output is not logits', async () => {
  await mustFail('softmax probabilities', { extra: `teacher: {torchscript: ${join(FIX, 'probs.pt')}}` }, /outputs probabilities/, /export the model without its final softmax/);
  await mustFail('a dict without teacher.output', { extra: `teacher: {torchscript: ${join(FIX, 'dict.pt')}}` }, /set teacher\.output to the tuple index or dict key/);
  await mustFail('a [B, 10, 2] map', { extra: `teacher: {torchscript: ${join(FIX, 'fmap.pt')}}` }, /returned shape \[2, 10, 2\].*expected logits \[batch, classes\]/);
});

test('count', () => {
  console.log(`# mismatch: ${caught} mismatches caught before training`);
  assert.ok(caught >= 10);
});
