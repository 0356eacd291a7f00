// TinyBERT's data augmentation (src/text/augment.ts): the replacement rule against a reference
// written from the authors' data_augmentation.py (scripts/fixtures/tinybert_augment.py, fixed
// masked-LM logits and uniform draws), the teacher's MLM head as the scorer, determinism for a
// seed, the experiment-file option, and a run that distils on the augmented set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../src/tensor/native.js';
import { torch } from '../../src/index.js';
import { BertEncoder } from '../../src/nn/zoo/transformer.js';
import { mlmAugment, mlmCandidates, teacherScorer, wordSpans, type MaskedLmScorer } from '../../src/text/augment.js';
import { MASK } from '../../src/text/tokenizer.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { MultiLabelDataset } from '../../src/text/data.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/api.js';
import { saveModel } from '../../src/nn/safetensors.js';

interface Case { name: string; copies: number; prob: number; topK: number; queries: [number, number][]; logits: number[][]; draws: number[][]; candidates: number[][][]; expected: number[][][] }
const fx = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'text', 'tinybert-augment.json'), 'utf8')) as { vocab: string[]; maxLen: number; rows: number[][]; cases: Case[] };
const L = fx.maxLen, V = fx.vocab.length;

function fixtureData(): Dataset {
  return { name: 'fixture', sampleShape: [L], x: Float32Array.from(fx.rows.flat()), y: Int32Array.from(fx.rows, (_, i) => i % 2), size: fx.rows.length, numClasses: 2 };
}

/** Serves the fixture's logits in query order, checking that each row arrives masked at its word and otherwise intact. */
function fixtureScorer(c: Case): { scorer: MaskedLmScorer; served: () => number } {
  let q = 0;
  const scorer: MaskedLmScorer = (ids, positions, batch) => {
    const out = new Float32Array(batch * V);
    for (let b = 0; b < batch; b++, q++) {
      const [row, pos] = c.queries[q]!;
      assert.equal(Number(positions[b]), b * L + pos, `query ${q}: position`);
      const want = [...fx.rows[row]!];
      want[pos] = MASK;
      assert.deepEqual(Array.from(ids.subarray(b * L, (b + 1) * L)), want, `query ${q}: row ${row} with word ${pos} masked`);
      out.set(c.logits[q]!, b * V);
    }
    return out;
  };
  return { scorer, served: () => q };
}

test("the replacement rule matches the authors' procedure on fixed logits and draws", () => {
  const isWord = (id: number): boolean => id > MASK && !fx.vocab[id]!.startsWith('##');
  for (const c of fx.cases) {
    // Candidates: argsort's top K, then ## pieces and special tokens dropped (logits are
    // float32 normals, no ties, so the order is the same whichever sort breaks ties).
    c.queries.forEach(([row, pos], q) => {
      const k = c.queries.slice(0, q).filter(([r]) => r === row).length;
      assert.deepEqual(mlmCandidates(Float32Array.from(c.logits[q]!), c.topK, isWord, fx.rows[row]![pos]!), c.candidates[row]![k], `${c.name}: candidates of query ${q}`);
    });
    const { scorer, served } = fixtureScorer(c);
    const used = fx.rows.map(() => 0);
    const draws = (i: number) => () => {
      assert.ok(used[i]! < c.draws[i]!.length, `${c.name}: example ${i} drew more than the reference`);
      return c.draws[i]![used[i]!++]!;
    };
    const { data, stats } = mlmAugment(scorer, fixtureData(), fx.vocab, { copies: c.copies, prob: c.prob, topK: c.topK, seed: 0 }, { batchSize: 4, draws });
    assert.equal(served(), c.queries.length, `${c.name}: one masked-LM query per single-piece replaceable word`);
    assert.deepEqual(used, c.draws.map((d) => d.length), `${c.name}: two draws per word per copy, as the reference`);
    const expected = c.expected.flat();
    assert.equal(data.size, expected.length, `${c.name}: originals and kept copies`);
    assert.deepEqual(Array.from(data.x), expected.flat(), `${c.name}: augmented rows`);
    assert.deepEqual(Array.from(data.y!), c.expected.flatMap((rows, i) => rows.map(() => i % 2)), `${c.name}: each copy keeps its example's label`);
    assert.equal(stats.duplicates, c.expected.reduce((a, rows) => a + c.copies - (rows.length - 1), 0), `${c.name}: duplicates counted`);
    assert.equal(stats.singlePieceWords, c.queries.length);
  }
});

test('word spans group ## pieces; copies follow their example, with its multi-hot targets, differing only at single-piece words', () => {
  assert.deepEqual(wordSpans(fx.rows[1]!, fx.vocab), [{ start: 1, pieces: 3 }, { start: 4, pieces: 1 }, { start: 5, pieces: 2 }, { start: 7, pieces: 1 }]);
  const base = fixtureData(), n = base.size;
  // Example i's targets: one-hot at i, so every output row names its example.
  const targets = Float32Array.from({ length: n * n }, (_, j) => (j % (n + 1) === 0 ? 1 : 0));
  const ml: MultiLabelDataset = { ...base, y: null, numClasses: n, targets, labelNames: fx.rows.map((_, i) => `l${i}`) };
  const c = fx.cases[0]!;
  const { data } = mlmAugment(fixtureScorer(c).scorer, ml, fx.vocab, { copies: c.copies, prob: c.prob, topK: c.topK, seed: 3 });
  assert.equal(data.y, null);
  const replaceable = fx.rows.map((_, r) => new Set(c.queries.filter(([q]) => q === r).map(([, p]) => p)));
  let prev = -1;
  for (let j = 0; j < data.size; j++) {
    const t = Array.from(data.targets.subarray(j * n, (j + 1) * n));
    const i = t.indexOf(1);
    assert.equal(t.reduce((a, b) => a + b, 0), 1, `row ${j}: one example's targets`);
    const row = Array.from(data.x.subarray(j * L, (j + 1) * L));
    if (i !== prev) {
      assert.equal(i, prev + 1, `row ${j}: examples in order`);
      assert.deepEqual(row, fx.rows[i], `row ${j}: each example's original comes first`);
      prev = i;
    }
    row.forEach((id, p) => { if (id !== fx.rows[i]![p]) assert.ok(replaceable[i]!.has(p), `row ${j}: position ${p} changed but is no single-piece word`); });
  }
  assert.equal(prev, n - 1);
});

test("the teacher's MLM head scores the masked positions, and augmentation is deterministic for a seed", () => {
  torch.manualSeed(5);
  const model = new BertEncoder({ arch: 'bert', vocabSize: V, maxLen: L, hidden: 8, layers: 1, heads: 2, ffn: 16, numClasses: 2, dropout: 0.1, multiLabel: false, mlm: true });
  const scorer = teacherScorer(model);
  const ids = Float32Array.from([...fx.rows[0]!, ...fx.rows[2]!]);
  ids[2] = MASK;
  ids[L + 5] = MASK;
  const got = scorer(ids, BigInt64Array.from([2n, BigInt(L + 5)]), 2);
  torch.tidy(() => {
    const full = model.inEvalMode(() => model.mlmLogits(torch.tensor(ids, { shape: [2, L] }))).data<Float32Array>();
    // Same operations on the same rows, only fewer of them: float32 rounding may differ in the
    // last bits with the matrix shapes, far below 1e-5 on logits of order 1.
    for (let v = 0; v < V; v++) {
      assert.ok(Math.abs(got[v]! - full[2 * V + v]!) < 1e-5, `row 0 token ${v}`);
      assert.ok(Math.abs(got[V + v]! - full[(L + 5) * V + v]!) < 1e-5, `row 1 token ${v}`);
    }
  });
  assert.ok(model.training, 'the scorer restores the mode it found');
  const spec = { copies: 4, prob: 0.4, topK: 15, seed: 7 };
  const a = mlmAugment(scorer, fixtureData(), fx.vocab, spec).data;
  const b = mlmAugment(scorer, fixtureData(), fx.vocab, spec).data;
  const other = mlmAugment(scorer, fixtureData(), fx.vocab, { ...spec, seed: 8 }).data;
  assert.deepEqual(a.x, b.x, 'same seed, same augmented set');
  assert.notDeepEqual(other.x, a.x, 'another seed draws other replacements');
  assert.ok(a.size > fixtureData().size, 'copies were added');
});

const FIX = fileURLToPath(new URL('../../../test/fixtures/text/', import.meta.url));
const bert = (layers: number, hidden: number): Record<string, unknown> => ({ arch: 'bert', layers, hidden, heads: 2, ffn: 2 * hidden, dropout: 0 });
const adamw = { name: 'adamw', lr: 0.002, weightDecay: 0.01 };

test('data.text.augment: the paper\'s defaults, checked against its teacher, and a tinybert run on the augmented set', async () => {
  const spam = { dataset: 'spam-assassin', path: join(FIX, 'spam'), batchSize: 16, text: { vocabSize: 300, maxLen: 24, tokenizerChars: 800 } };
  const e = parseExperiment({ epochs: 1, student: bert(1, 8), teacher: { checkpoint: 't.safetensors' }, data: { ...spam, text: { augment: {} } } }, 'x.yaml');
  assert.deepEqual(e.data.text!.augment, { copies: 20, prob: 0.4, topK: 15, seed: 0 });
  assert.throws(() => parseExperiment({ epochs: 1, student: bert(1, 8), data: { ...spam, text: { augment: {} } } }, 'x.yaml'), /x\.yaml: 'data\.text\.augment' replaces words with the teacher's masked-LM predictions: give one 'teacher' with a 'checkpoint'/);
  assert.throws(() => parseExperiment({ epochs: 1, student: bert(1, 8), teacher: { checkpoint: 't.safetensors' }, data: { ...spam, text: { augment: { prob: 1.5 } } } }, 'x.yaml'), /'data\.text\.augment\.prob' must be <= 1/);
  assert.throws(() => parseExperiment({ epochs: 1, student: bert(1, 8), teacher: { checkpoint: 't.safetensors' }, data: { ...spam, text: { augment: { copy: 2 } } } }, 'x.yaml'), /'data\.text\.augment\.copy' is not a known key/);

  const root = mkdtempSync(join(tmpdir(), 'kd-aug-'));
  try {
    const teacherRun = join(root, 'teacher');
    const teacherRaw = { name: 't', seed: 1, epochs: 1, data: spam, model: bert(2, 16), method: { name: 'scratch' }, optimizer: adamw, output: teacherRun };
    await runExperiment(parseExperiment({ ...teacherRaw, mlm: { epochs: 1 } }, join(root, 't.yaml')), { mode: 'train', resume: false });
    const student = (output: string, augment?: Record<string, unknown>): Record<string, unknown> => ({
      name: 's', seed: 1, epochs: 2, data: { ...spam, text: { maxLen: 24, ...(augment ? { augment } : {}) } }, teacher: { checkpoint: join(teacherRun, 'model.safetensors') },
      student: bert(1, 8), method: { name: 'tinybert' }, teacherCache: 'off', optimizer: adamw, output,
    });
    const r = await runExperiment(parseExperiment(student(join(root, 's'), { copies: 2, seed: 4 }), join(root, 's.yaml')), { mode: 'distill', resume: false });
    const res = JSON.parse(readFileSync(join(root, 's', 'result.json'), 'utf8'));
    const aug = res.textAugment;
    assert.ok(aug.examples > 0 && aug.rows > aug.examples && aug.rows <= 3 * aug.examples, `originals plus up to 2 copies each: ${JSON.stringify(aug)}`);
    assert.equal(aug.rows + aug.duplicates, 3 * aug.examples);
    assert.ok(aug.singlePieceWords > 0 && aug.changedPieceShare > 0);
    assert.equal(r.result.steps, 2 * Math.ceil(aug.rows / 16), 'the student trains on the augmented rows');

    // A teacher without an MLM head cannot propose words: the run says so before training.
    const plainRun = join(root, 'plain');
    await runExperiment(parseExperiment({ ...teacherRaw, output: plainRun }, join(root, 'p.yaml')), { mode: 'train', resume: false });
    const plain = { checkpoint: join(plainRun, 'model.safetensors') };
    await assert.rejects(runExperiment(parseExperiment({ ...student(join(root, 's2'), {}), teacher: plain }, join(root, 's2.yaml')), { mode: 'distill', resume: false }),
      /s2\.yaml: 'data\.text\.augment' replaces words with masked-LM predictions, but the teacher \(checkpoint .*\) is not a BERT with an MLM head/);
    assert.ok(!existsSync(join(root, 's2', 'model.safetensors')));
    // ... but another MLM model of the same vocabulary can (the paper's pre-trained BERT beside the fine-tuned teacher).
    const mlmFile = join(teacherRun, 'model.safetensors');
    await runExperiment(parseExperiment({ ...student(join(root, 's3'), { copies: 1, model: mlmFile }), teacher: plain, epochs: 1 }, join(root, 's3.yaml')), { mode: 'distill', resume: false });
    assert.equal(JSON.parse(readFileSync(join(root, 's3', 'result.json'), 'utf8')).textAugment.model, mlmFile);
    // One of another vocabulary would propose other words.
    const other = join(root, 'other.safetensors');
    saveModel(other, new BertEncoder({ arch: 'bert', vocabSize: 50, maxLen: 24, hidden: 8, layers: 1, heads: 2, ffn: 16, numClasses: 2, dropout: 0, multiLabel: false, mlm: true }));
    await assert.rejects(runExperiment(parseExperiment({ ...student(join(root, 's4'), { model: other }), teacher: plain }, join(root, 's4.yaml')), { mode: 'distill', resume: false }),
      /s4\.yaml: 'data\.text\.augment\.model': .*other\.safetensors was trained on another vocabulary \(50 tokens\) than the data's/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
