// Text pipeline, transformer methods and multi-label metrics: WordPiece training/encoding/JSON
// round trip, MLM masking, student initialisation from every other teacher layer, DistilBERT /
// TinyBERT / multi-label KD through the real trainer, and the multi-label metrics on hand-checked
// examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, Tensor } from '../../src/index.js';
import { Rng } from '../../src/data/rng.js';
import { CLS, MASK, PAD, SEP, UNK, WordPieceTokenizer, preTokenize } from '../../src/text/tokenizer.js';
import { mailText } from '../../src/text/corpora.js';
import { MultiLabelBatches, mlmMask, multiLabelDataset, textDataset } from '../../src/text/data.js';
import { pretrainMlm } from '../../src/text/pretrain.js';
import { BertEncoder, createModel, initStudentFromTeacher } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { layerMapping } from '../../src/methods/tinybert.js';
import { train, type BatchSource, type TrainBatch } from '../../src/train/trainer.js';
import { averagePrecision, chooseThreshold, meanAveragePrecision, multiLabelMetrics, thresholdMetrics } from '../../src/train/multilabel-metrics.js';

const CORPUS = [
  'Free money! Click here to claim your free prize now.',
  'Meeting moved to Tuesday; please bring the quarterly report.',
  'You have won a free cruise, call now to claim.',
  'The build failed again on the test server, see the log.',
  'Cheap meds online, free shipping, order now!',
  'Can you review my patch for the tokenizer before Friday?',
];

test('preTokenize lower-cases, strips accents and splits punctuation', () => {
  assert.deepEqual(preTokenize('Héllo, World!! x2'), ['hello', ',', 'world', '!', '!', 'x2']);
});

test('WordPiece: trains, encodes with [CLS]/[SEP]/padding, decodes, round-trips through JSON', () => {
  const tok = WordPieceTokenizer.train(CORPUS, { vocabSize: 120, minFrequency: 1, alphabetMinFrequency: 1 });
  assert.equal(tok.vocab.slice(0, 5).join(' '), '[PAD] [UNK] [CLS] [SEP] [MASK]');
  assert.ok(tok.vocabSize <= 120 && tok.vocabSize > 60);
  assert.ok(tok.vocab.includes('free') && tok.vocab.includes('now'), 'frequent words become single pieces');
  const ids = tok.encode('Free prize now', 8);
  assert.equal(ids.length, 8);
  assert.equal(ids[0], CLS);
  const sep = ids.indexOf(SEP);
  assert.ok(sep > 1 && [...ids.subarray(sep + 1)].every((v) => v === PAD));
  assert.equal(tok.decode(ids), 'free prize now');
  assert.equal(tok.encode('§', 6)[1], UNK, '§ is not in the alphabet');
  const long = tok.encode(CORPUS.join(' '), 10);
  assert.equal(long[9], SEP, 'truncated sequences still end in [SEP]');
  const dir = mkdtempSync(join(tmpdir(), 'kd-tok-'));
  try {
    tok.save(join(dir, 'tok.json'));
    const back = WordPieceTokenizer.load(join(dir, 'tok.json'));
    assert.deepEqual([...back.encode(CORPUS[3]!, 20)], [...tok.encode(CORPUS[3]!, 20)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mailText keeps subject and body, drops headers and HTML', () => {
  const t = mailText('From: a@b\nSubject: Hello there\nX-Spam: yes\n\n<html><b>Buy</b> now</html>');
  assert.equal(t, 'Hello there Buy now');
});

test('MLM masking: only real non-special tokens, targets −100 elsewhere, ~15% chosen, 80% [MASK]', () => {
  const L = 50, n = 400, ids = new Float32Array(n * L);
  for (let i = 0; i < n; i++) { ids[i * L] = CLS; for (let j = 1; j < 40; j++) ids[i * L + j] = 5 + ((i + j) % 90); ids[i * L + 40] = SEP; }
  const { input, target } = mlmMask(ids, 100, new Rng(3), 0.15);
  let chosen = 0, masked = 0, real = 0;
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    if (id === PAD || id === CLS || id === SEP) { assert.equal(target[k], -100n); assert.equal(input[k], BigInt(id)); continue; }
    real++;
    if (target[k] !== -100n) { chosen++; assert.equal(target[k], BigInt(id)); if (input[k] === BigInt(MASK)) masked++; }
  }
  assert.ok(Math.abs(chosen / real - 0.15) < 0.02, `chosen ${chosen / real}`);
  assert.ok(Math.abs(masked / chosen - 0.8) < 0.05, `masked ${masked / chosen}`);
});

const spec = (layers: number, hidden: number, o: Record<string, unknown> = {}) =>
  ({ arch: 'bert', vocabSize: 40, maxLen: 12, layers, hidden, heads: 2, ffn: 2 * hidden, numClasses: 3, dropout: 0, ...o });

test('initStudentFromTeacher copies layers 0, 2 (same width) and per-head leading slices (narrower)', () => {
  torch.tidy(() => {
    const t = createModel(spec(4, 16)) as BertEncoder;
    const s = createModel(spec(2, 16)) as BertEncoder;
    initStudentFromTeacher(s, t);
    const ts = t.stateDict(), ss = s.stateDict();
    assert.ok(ss.get('layer1.intermediate.weight')!.equal(ts.get('layer2.intermediate.weight')!));
    assert.ok(ss.get('layer0.attention.query.weight')!.equal(ts.get('layer0.attention.query.weight')!));
    assert.ok(ss.get('embeddings.word.weight')!.equal(ts.get('embeddings.word.weight')!));
    const n = createModel(spec(2, 8)) as BertEncoder;
    initStudentFromTeacher(n, t);
    const ns = n.stateDict();
    // head 1 of the student (rows 4..7) = the first 4 rows of teacher head 1 (rows 8..11), first 8 columns
    const want = ts.get('layer2.attention.key.weight')!.narrow(0, 8, 4).narrow(1, 0, 8);
    assert.ok(ns.get('layer1.attention.key.weight')!.narrow(0, 4, 4).equal(want));
    assert.ok(ns.get('layer1.attention.output.weight')!.narrow(1, 4, 4).equal(ts.get('layer2.attention.output.weight')!.narrow(1, 8, 4).narrow(0, 0, 8)));
    assert.throws(() => initStudentFromTeacher(createModel(spec(2, 32)) as BertEncoder, t), /wider/);
  });
});

test('layer mapping: uniform m·N/M, last, explicit, with clear errors', () => {
  assert.deepEqual(layerMapping('uniform', 2, 4), [1, 3]);
  assert.deepEqual(layerMapping('uniform', 3, 6), [1, 3, 5]);
  assert.deepEqual(layerMapping('last', 2, 4), [2, 3]);
  assert.deepEqual(layerMapping([0, 2], 2, 4), [0, 2]);
  assert.throws(() => layerMapping('uniform', 3, 4), /multiple/);
  assert.throws(() => layerMapping([0, 9], 2, 4), /indices/);
});

/** Random id batches with padding (rows of different lengths) and labels. */
function batches(n: number, B: number, L: number, multi: boolean, seed = 1): BatchSource & { sample: Tensor } {
  const rng = new Rng(seed);
  const make = (): { x: Float32Array; y: number[] } => {
    const x = new Float32Array(B * L), y: number[] = [];
    for (let i = 0; i < B; i++) {
      const len = 3 + rng.nextInt(L - 3);
      x[i * L] = CLS;
      for (let j = 1; j < len - 1; j++) x[i * L + j] = 5 + rng.nextInt(35);
      x[i * L + len - 1] = SEP;
      if (multi) for (let c = 0; c < 3; c++) y.push(rng.nextInt(2));
      else y.push(rng.nextInt(3));
    }
    return { x, y };
  };
  const data = Array.from({ length: n }, make);
  const s = make();
  return {
    batchesPerEpoch: n,
    sample: torch.tensor(s.x, { shape: [B, L] }).keep(),
    *batches(_e: number, from: number): Iterable<TrainBatch> {
      for (let b = from; b < n; b++) {
        const d = data[b]!;
        yield { x: torch.tensor(d.x, { shape: [B, L] }), y: multi ? torch.tensor(Float32Array.from(d.y), { shape: [B, 3] }) : torch.tensor(BigInt64Array.from(d.y.map(BigInt))) };
      }
    },
  };
}

for (const [name, multi, terms, extras] of [
  ['distilbert', false, ['kd', 'task', 'cos'], 1],
  ['distilbert', true, ['kd', 'task', 'cos'], 1],
  ['tinybert', false, ['emb', 'attn', 'hidden', 'pred'], 3],
  ['tinybert', true, ['emb', 'attn', 'hidden', 'pred'], 3],
  ['multilabel-kd', true, ['bce', 'kd'], 0],
] as const) {
  test(`${name} (${multi ? 'multi-label' : 'single-label'}) trains a narrower 2-layer student from a 4-layer teacher`, async () => {
    const teacherModel = createModel(spec(4, 16, { multiLabel: multi })) as BertEncoder;
    const student = createModel(spec(2, 8, { multiLabel: multi })) as BertEncoder;
    const teacher = new ModuleTeacher(teacherModel, 3, 'test teacher', 'x');
    const src = batches(4, 6, 12, multi);
    const method = getMethod(name).create(resolveParams(getMethod(name), {}));
    const seen = new Set<string>();
    const r = await train({
      student, teacher, method, train: src, numClasses: 3, epochs: 2, optimizer: { name: 'adamw', lr: 1e-3 }, sample: src.sample,
      onEpoch: (e) => Object.keys(e.train).forEach((k) => seen.add(k)),
    });
    assert.equal(r.steps, 8);
    for (const t of terms) assert.ok(seen.has(t), `${name}: term ${t} logged (got ${[...seen].join(', ')})`);
    assert.equal(method.extraModules?.().length ?? 0, extras, 'projections where widths differ');
    for (const e of r.epochs) for (const v of Object.values(e.train)) assert.ok(Number.isFinite(v));
    src.sample.dispose();
    student.dispose();
    teacherModel.dispose();
  });
}

test('MLM pre-training lowers the loss on a repetitive corpus; text datasets and multi-label batches', () => {
  const tok = WordPieceTokenizer.train(CORPUS, { vocabSize: 100, minFrequency: 1, alphabetMinFrequency: 1 });
  const texts = Array.from({ length: 48 }, (_, i) => CORPUS[i % CORPUS.length]!);
  const ds = textDataset(tok, texts, texts.map((_, i) => i % 2), { maxLen: 16, numClasses: 2, name: 'toy' });
  assert.deepEqual(ds.sampleShape, [16]);
  assert.equal(ds.x[0], CLS);
  const m = createModel({ arch: 'bert', vocabSize: tok.vocabSize, maxLen: 16, layers: 1, hidden: 32, heads: 2, ffn: 64, numClasses: 2, mlm: true, dropout: 0 }) as BertEncoder;
  const losses = pretrainMlm(m, ds, { epochs: 12, batchSize: 16, lr: 3e-3, seed: 1 });
  assert.ok(losses[losses.length - 1]! < losses[0]! * 0.8, `MLM loss ${losses[0]} → ${losses[losses.length - 1]}`);
  assert.ok(m.numInferenceParameters() < m.numParameters());
  m.dispose();

  const ml = multiLabelDataset(tok, texts.slice(0, 10), texts.slice(0, 10).map((_, i) => (i % 3 === 0 ? [0, 2] : [1])), { maxLen: 16, labelNames: ['a', 'b', 'c'], name: 'ml' });
  const src = new MultiLabelBatches(ml, 4, 7);
  assert.equal(src.batchesPerEpoch, 3);
  let rows = 0, pos = 0;
  for (const b of src.batches(0, 0)) {
    assert.deepEqual(b.y!.shape, [b.x.shape[0], 3]);
    rows += b.x.shape[0]!;
    pos += b.y!.sum().item();
  }
  assert.equal(rows, 10);
  assert.equal(pos, 4 * 2 + 6);
});

test('multi-label metrics: F1s, subset accuracy, AP and threshold choice on hand-checked examples', () => {
  // 3 samples × 2 labels
  const probs = Float32Array.from([0.9, 0.2, 0.6, 0.7, 0.1, 0.4]);
  const targets = Float32Array.from([1, 0, 0, 1, 0, 1]);
  const m = thresholdMetrics({ probs, n: 3, c: 2 }, targets, 0.5);
  // label 0: tp1 fp1 fn0 → F1 2/3; label 1: tp1 fp0 fn1 → 2/3; micro: tp2 fp1 fn1 → 2/3
  assert.ok(Math.abs(m.microF1 - 2 / 3) < 1e-12 && Math.abs(m.macroF1 - 2 / 3) < 1e-12);
  assert.ok(Math.abs(m.subsetAccuracy - 1 / 3) < 1e-12);
  assert.ok(Math.abs(m.hammingLoss - 2 / 6) < 1e-12);
  // AP: label 0 scores [.9,.6,.1], positive at rank 1 → 1; label 1 [.2,.7,.4], positives ranks 1,2 → 1
  assert.equal(meanAveragePrecision({ probs, n: 3, c: 2 }, targets), 1);
  assert.ok(Math.abs(averagePrecision([0.1, 0.9, 0.5], [true, false, true]) - (1 / 2 + 2 / 3) / 2) < 1e-12);
  // t in (0.2, 0.4]: one false positive (0.6), micro F1 6/7; t in (0.6, 0.7]: one false negative
  // (0.4), 4/5; in between both. Best: (0.2, 0.4], tie broken towards 0.5 → 0.4.
  const th = chooseThreshold({ probs, n: 3, c: 2 }, targets);
  assert.equal(th, 0.4);
  const at = multiLabelMetrics({ probs, n: 3, c: 2 }, targets, th);
  assert.ok(Math.abs(at.microF1 - 6 / 7) < 1e-12 && Math.abs(at.subsetAccuracy - 2 / 3) < 1e-12);
});
