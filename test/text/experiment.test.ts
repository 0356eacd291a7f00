// Text through the main experiment format and runner (issue 8): text datasets, the tokenizer kept
// with the teacher and reused by its students, MLM pre-training, DistilBERT initialisation,
// multi-label runs scored with a threshold chosen on validation, and the compare table. Real text:
// small fixtures cut from SpamAssassin and Debian's package index (test/fixtures/text).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment, compare } from '../../src/api.js';
import { prepareTextData } from '../../src/text/prepare.js';
import { loadModel } from '../../src/nn/safetensors.js';
import { exportStudent } from '../../src/export/index.js';
import { evalCommand } from '../../src/cli/eval.js';
import { torch } from '../../src/index.js';
import { printedBy } from '../cli/stdout.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/text/', import.meta.url));
const SPAM = join(FIX, 'spam'), PACKAGES = join(FIX, 'Packages');
const text = { vocabSize: 300, maxLen: 24, tokenizerChars: 800 };
const bert = (layers: number, hidden: number): Record<string, unknown> => ({ arch: 'bert', layers, hidden, heads: 2, ffn: 2 * hidden, dropout: 0 });
const adamw = { name: 'adamw', lr: 0.002, weightDecay: 0.01 };

function err(raw: Record<string, unknown>): string {
  try {
    parseExperiment({ epochs: 1, optimizer: adamw, student: bert(1, 8), ...raw }, 'text.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected a validation error');
}

test('text experiment files are validated whole: text options, augmentation, mlm, init, multi-label transfer', () => {
  const spam = { dataset: 'spam-assassin' };
  assert.match(err({ data: { text: { maxLen: 8 } } }), /text\.yaml: 'data\.text' applies to text datasets \(spam-assassin, debtags\) only/);
  assert.match(err({ data: { ...spam, augment: { flip: true } } }), /'data\.augment' image augmentation and normalize do not apply to text/);
  assert.match(err({ data: { ...spam, text: { valFraction: 0.9 } } }), /'data\.text\.valFraction' must be <= 0\.5/);
  assert.match(err({ data: { ...spam, text: { vocab: 10 } } }), /'data\.text\.vocab' is not a known key/);
  assert.match(err({ data: spam, student: { arch: 'mlp' }, mlm: { epochs: 1 } }), /'mlm' pre-trains a bert model on a text dataset only/);
  assert.match(err({ data: spam, init: 'teacher' }), /'init' needs exactly one teacher given as 'checkpoint'/);
  assert.match(err({ data: spam, init: 'student' }), /'init\.from' must be 'teacher' or a model file/);
  assert.match(err({ data: { dataset: 'debtags', transfer: 'held-out' } }), /multi-label 'debtags' supports transfer 'train' only/);
  const e = parseExperiment({ epochs: 1, optimizer: adamw, student: bert(1, 8), data: spam, mlm: { epochs: 2 } }, 'text.yaml');
  assert.deepEqual(e.data.text, { vocabSize: 3000, maxLen: 64, tokenizerChars: 2000, splitSeed: 1, valFraction: 0.1, testFraction: 0.2, topTags: 20, excludeTags: [] });
  assert.deepEqual(e.mlm, { epochs: 2, lr: 0.002, maskProb: 0.15 }, 'mlm lr defaults to the optimizer lr');
});

test('text splits depend on data.text.splitSeed only, and debtags reads a Packages file as multi-hot labels', () => {
  const spec = { ...text, splitSeed: 1, valFraction: 0.1, testFraction: 0.2, topTags: 6, excludeTags: ['role::program'] };
  const a = prepareTextData('spam-assassin', spec, { path: SPAM }), b = prepareTextData('spam-assassin', spec, { path: SPAM });
  assert.deepEqual([a.train.size, a.val.size, a.test.size], [56, 8, 16]);
  assert.deepEqual(a.test.x, b.test.x, 'same split seed, same test rows');
  const c = prepareTextData('spam-assassin', { ...spec, splitSeed: 2 }, { path: SPAM });
  assert.notDeepEqual(c.test.x, a.test.x);
  assert.equal(a.tokenizerSource, 'trained');
  const d = prepareTextData('debtags', spec, { path: PACKAGES });
  assert.equal(d.multiLabel, true);
  assert.equal(d.numClasses, 6);
  const t = (d.train as { targets: Float32Array }).targets;
  assert.equal(t.length, d.train.size * 6);
  assert.ok(t.every((v) => v === 0 || v === 1) && t.some((v) => v === 1));
  assert.doesNotMatch(d.describe, /role::program/, 'excluded tags are not labels');
});

test('spam: an MLM-pre-trained teacher run keeps its tokenizer; a DistilBERT-initialised student reuses it; compare tabulates both', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kd-text-'));
  try {
    const data = { dataset: 'spam-assassin', path: SPAM, batchSize: 16, text };
    const teacherRun = join(root, 'teacher');
    const t = await runExperiment(parseExperiment({
      name: 'spam-teacher', seed: 1, epochs: 1, data, model: bert(2, 16), mlm: { epochs: 1 }, method: { name: 'scratch' }, optimizer: adamw, output: teacherRun,
    }, join(root, 'teacher.yaml')), { mode: 'train', resume: false });
    for (const f of ['model.safetensors', 'tokenizer.json', 'result.json', 'report.html']) assert.ok(existsSync(join(teacherRun, f)), f);
    const tr = JSON.parse(readFileSync(join(teacherRun, 'result.json'), 'utf8'));
    assert.equal(tr.mlmLosses.length, 1);
    assert.ok(tr.mlmLosses[0] > 0 && Number.isFinite(tr.mlmLosses[0]));
    assert.ok(tr.test.accuracy >= 0 && tr.test.accuracy <= 1 && tr.msPerSample > 0);
    assert.equal(tr.studentParameters, (t.student as unknown as { numInferenceParameters(): number }).numInferenceParameters(), 'the MLM head is not counted');
    assert.match(t.summary, /test acc/);
    const ex = await exportStudent(teacherRun, { formats: ['safetensors'], verify: false });
    assert.equal(ex.config.tokenizer, 'tokenizer.json', 'a text model is exported with the tokenizer that made its ids');
    assert.equal(readFileSync(join(ex.dir, 'tokenizer.json'), 'utf8'), readFileSync(join(teacherRun, 'tokenizer.json'), 'utf8'));
    assert.deepEqual(ex.config.classes, ['ham', 'spam']);
    assert.equal(ex.config.inputDtype, 'int64');
    const again = prepareTextData('spam-assassin', t.experiment.data.text!, { path: SPAM, runDir: teacherRun });
    assert.equal(again.tokenizerSource, join(teacherRun, 'tokenizer.json'), 'a resumed or re-evaluated run reads the tokenizer it trained with');

    // lr 0: the student keeps its initialisation, which must be the teacher's (narrowed) weights.
    const studentFile = join(root, 'student.yaml');
    const studentRaw = {
      name: 'spam-distilbert', seed: 1, epochs: 1, data: { ...data, text: { maxLen: 24 } }, teacher: { checkpoint: join(teacherRun, 'model.safetensors') },
      init: 'teacher', student: bert(1, 8), method: { name: 'distilbert' }, optimizer: { name: 'adamw', lr: 0, weightDecay: 0 }, output: join(root, 'student'),
    };
    const { writeFileSync } = await import('node:fs');
    const { stringify } = await import('yaml');
    writeFileSync(studentFile, stringify(studentRaw));
    const { rows, table } = await compare([studentFile], [1]);
    const run = join(root, 'student', 'seed1');
    assert.equal(readFileSync(join(run, 'tokenizer.json'), 'utf8'), readFileSync(join(teacherRun, 'tokenizer.json'), 'utf8'), "the student reads the teacher's tokenizer");
    const s = loadModel(join(run, 'model.safetensors')).model.stateDict();
    const tw = loadModel(join(teacherRun, 'model.safetensors')).model.stateDict();
    const same = torch.tidy(() => s.get('embeddings.word.weight')!.equal(tw.get('embeddings.word.weight')!.narrow(1, 0, 8)));
    assert.ok(same, 'embeddings initialised from the teacher');
    assert.equal(rows.length, 2);
    assert.match(rows[0]!.name, /^teacher \(spam-teacher\)$/);
    assert.match(table, /ms\/sample/);
    assert.match(table, /spam-distilbert/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('debtags: multi-label runs train with BCE / Bernoulli KD and report F1s and mAP at a validation-chosen threshold', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kd-debtags-'));
  try {
    const base = {
      seed: 1, epochs: 2, data: { dataset: 'debtags', path: PACKAGES, batchSize: 16, text: { ...text, topTags: 6 } }, optimizer: adamw,
    };
    const e = parseExperiment({ ...base, name: 'tags', student: bert(1, 16), method: { name: 'multilabel-kd', params: { alpha: 0 } }, output: join(root, 'tags') }, join(root, 'tags.yaml'));
    const r = await runExperiment(e, { mode: 'train', resume: false });
    const res = JSON.parse(readFileSync(join(root, 'tags', 'result.json'), 'utf8'));
    for (const k of ['microF1', 'macroF1', 'subsetAccuracy', 'mAP', 'threshold']) assert.ok(typeof res.test[k] === 'number' && res.test[k] >= 0 && res.test[k] <= 1, k);
    assert.ok(existsSync(join(root, 'tags', 'report.html')), 'multi-label runs write a report too');
    // `kdistill eval <run folder>` scores it again on its own data, to the same numbers.
    const { value: code, printed } = await printedBy(() => evalCommand([join(root, 'tags')]));
    assert.equal(code, 0);
    assert.match(printed, /micro F1/);
    assert.ok(printed.includes(res.test.microF1.toFixed(4)) && printed.includes(res.test.mAP.toFixed(4)), printed);
    assert.equal(res.classNames.length, 6);
    assert.ok(res.classNames.every((n: string) => n.includes('::')), 'label names are the tags');
    assert.match(r.summary, /micro F1/);
    const last = readFileSync(join(root, 'tags', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.bce !== undefined);
    assert.ok(last.length > 0, 'BCE logged per step');
    const bad = parseExperiment({ ...base, name: 'bad', student: bert(1, 16), method: { name: 'scratch' }, output: join(root, 'bad') }, join(root, 'bad.yaml'));
    await assert.rejects(runExperiment(bad, { mode: 'train', resume: false }), /bad\.yaml: multi-label 'debtags' trains with method 'multilabel-kd'/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
