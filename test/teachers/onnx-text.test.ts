// ONNX text teachers as Optimum exports them (input_ids, attention_mask, token_type_ids: int64,
// dynamic batch and sequence; output logits), against scripts/fixtures/hf_bert_onnx.py: the tiny
// Hugging Face BERT of hf_bert.py exported by torch.onnx.export in transformers.js's layout
// (onnx/model.onnx + tokenizer.json + config.json), with PyTorch's logits on raw texts.
// Tolerance 1e-5: float32 on both sides, a 2-layer width-16 model with logits of order 1, so only
// summation order differs (~1e-6); a wrong id, mask or segment moves logits by ~1e-1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setNumThreads } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import { tidy } from '../../src/tensor/scope.js';
import { OnnxTeacher } from '../../src/teachers/onnx.js';
import { WordPieceTokenizer } from '../../src/text/tokenizer.js';
import { textDataset } from '../../src/text/data.js';
import { findTeacherTokenizer, onnxClassNames, RowTexts, teacherMaxLength, teacherTokens } from '../../src/text/teacher-text.js';
import { onnxTeacher } from '../../src/run/experiment.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/api.js';
import { evalCommand } from '../../src/cli/eval.js';
import { printedBy } from '../cli/stdout.js';

setNumThreads(1);
const DIR = resolve('test', 'fixtures', 'hf-bert-onnx');
const MODEL = join(DIR, 'onnx', 'model.onnx');
const REF = JSON.parse(readFileSync(resolve('test', 'fixtures', 'hf-bert-onnx-reference.json'), 'utf8')) as {
  texts: string[]; ids: number[][]; logits: number[][]; pair: { ids: number[]; tokenTypes: number[]; logits: number[] };
};
const PACKAGES = resolve('test', 'fixtures', 'text', 'Packages');
const TOL = 1e-5;

function maxDiff(a: ArrayLike<number>, b: number[]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < b.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
const logitsOf = (t: OnnxTeacher, x: ReturnType<typeof tensor>): Float32Array => tidy(() => t.logits(x).data<Float32Array>().slice());

test('the teacher finds its tokenizer, length and labels in its Hugging Face folder (onnx/model.onnx)', () => {
  assert.equal(findTeacherTokenizer(MODEL), join(DIR, 'tokenizer.json'));
  assert.equal(teacherMaxLength(join(DIR, 'tokenizer.json')), 24, "config.json's max_position_embeddings");
  assert.deepEqual(onnxClassNames(MODEL), ['negative', 'neutral', 'positive']);
  // Optimum's own layout: model.onnx beside tokenizer.json.
  const flat = mkdtempSync(join(tmpdir(), 'kd-onnxtext-'));
  try {
    cpSync(MODEL, join(flat, 'model.onnx'));
    assert.equal(findTeacherTokenizer(join(flat, 'model.onnx')), null);
    cpSync(join(DIR, 'tokenizer.json'), join(flat, 'tokenizer.json'));
    assert.equal(findTeacherTokenizer(join(flat, 'model.onnx')), join(flat, 'tokenizer.json'));
  } finally {
    rmSync(flat, { recursive: true, force: true });
  }
});

test("an ONNX text teacher fed raw text through its own tokenizer gives PyTorch's logits, whatever the student's tokenizer", () => {
  // The student's tokenizer is another vocabulary (trained here, kdistill's special ids).
  const student = WordPieceTokenizer.train(REF.texts.concat(['the quick brown fox']), { vocabSize: 120, minFrequency: 1, alphabetMinFrequency: 1 });
  const ds = textDataset(student, REF.texts, null, { maxLen: 16, numClasses: 3, name: 'texts' });
  const tokens = teacherTokens(join(DIR, 'tokenizer.json'), { tokenizer: student, texts: new RowTexts().add(ds, REF.texts) });
  // Its ids are the ones transformers' BertTokenizer gives (the fixture script's own WordPiece).
  REF.texts.forEach((t, i) => assert.deepEqual([...tokens.tokenizer.encode(t, 24)].filter((v) => v !== 0), REF.ids[i], t));
  const teacher = new OnnxTeacher(MODEL, { tokens: tokens.feed, feedChecksum: tokens.checksum });
  try {
    assert.deepEqual(teacher.textInputs, ['input_ids', 'attention_mask', 'token_type_ids']);
    assert.equal(teacher.numClasses, 3);
    assert.match(teacher.description, /ONNX text model/);
    const got = logitsOf(teacher, tensor(ds.x, { shape: [ds.size, 16] }));
    const d = maxDiff(got, REF.logits.flat());
    assert.ok(d < TOL, `max |kdistill − PyTorch| = ${d}`);
    assert.equal(tokens.decoded(), 0, 'every row found its recorded text');
    // A row without a recorded text is the student's ids decoded: same text here (lower-case, known words).
    const other = textDataset(student, ['the cat sat on the mat.'], null, { maxLen: 16, numClasses: 3, name: 'other' });
    const one = logitsOf(teacher, tensor(other.x, { shape: [1, 16] }));
    assert.equal(tokens.decoded(), 1);
    assert.ok(one.every(Number.isFinite));
  } finally {
    teacher.dispose();
  }
});

test("token ids given directly (the student uses the teacher's tokenizer): mask from id 0, token_type_ids reach the graph", () => {
  const L = Math.max(...REF.ids.map((r) => r.length));
  const rows = Float32Array.from(REF.ids.flatMap((r) => [...r, ...new Array<number>(L - r.length).fill(0)]));
  const plain = new OnnxTeacher(MODEL);
  try {
    assert.ok(maxDiff(logitsOf(plain, tensor(rows, { shape: [REF.ids.length, L] })), REF.logits.flat()) < TOL);
  } finally {
    plain.dispose();
  }
  const n = REF.pair.ids.length;
  const pair = new OnnxTeacher(MODEL, {
    tokens: () => ({ batch: 1, length: n, inputIds: BigInt64Array.from(REF.pair.ids.map(BigInt)), attentionMask: new BigInt64Array(n).fill(1n), tokenTypeIds: BigInt64Array.from(REF.pair.tokenTypes.map(BigInt)) }),
  });
  try {
    const got = logitsOf(pair, tensor(new Float32Array(n), { shape: [1, n] }));
    assert.ok(maxDiff(got, REF.pair.logits) < TOL, 'segment 1 of a pair');
    assert.ok(maxDiff(got, REF.logits.at(-1)!) > 1e-3, 'token types change the logits');
  } finally {
    pair.dispose();
  }
});

test('an input the teacher does not understand, a text teacher without tokenizer or on image data: errors naming the inputs and the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-onnxtext-'));
  try {
    // Same-length rename inside the protobuf keeps the file valid: token_type_ids → segment_ids_x.
    const buf = readFileSync(MODEL);
    const from = Buffer.from('token_type_ids'), to = Buffer.from('segment_ids_xy');
    let at = buf.indexOf(from);
    assert.ok(at >= 0);
    for (; at >= 0; at = buf.indexOf(from, at + 1)) to.copy(buf, at);
    mkdirSync(join(dir, 'renamed'));
    writeFileSync(join(dir, 'renamed', 'model.onnx'), buf);
    assert.throws(() => new OnnxTeacher(join(dir, 'renamed', 'model.onnx')),
      /inputs are 'input_ids', 'attention_mask', 'segment_ids_xy'; kdistill feeds a text model input_ids, attention_mask, token_type_ids .* does not know what to give 'segment_ids_xy'/);
    cpSync(MODEL, join(dir, 'model.onnx'));
    const student = { tokenizer: WordPieceTokenizer.train(['a b c'], { vocabSize: 20, minFrequency: 1, alphabetMinFrequency: 1 }) };
    assert.throws(() => onnxTeacher({ onnx: join(dir, 'model.onnx') }, student), /is a text model \(inputs input_ids, attention_mask, token_type_ids\), but it has no tokenizer: put its tokenizer\.json/);
    assert.throws(() => onnxTeacher({ onnx: MODEL }, undefined), /is a text model .* but the data is not text/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a short distillation from the ONNX text teacher runs on debtags (the student keeps its own tokenizer)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kd-onnxtext-'));
  try {
    // The fixture's 3 outputs as 3 debtags labels; its id2label (sentiment) would not match them.
    const teacherDir = join(root, 'teacher');
    cpSync(DIR, teacherDir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(teacherDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.id2label;
    delete cfg.label2id;
    writeFileSync(join(teacherDir, 'config.json'), JSON.stringify(cfg));
    const e = parseExperiment({
      name: 'onnx-text', seed: 1, epochs: 1, output: join(root, 'run'),
      data: { dataset: 'debtags', path: PACKAGES, batchSize: 16, text: { vocabSize: 300, maxLen: 24, tokenizerChars: 800, topTags: 3, maxExamples: 64 } },
      teacher: { onnx: join(teacherDir, 'onnx', 'model.onnx') },
      student: { arch: 'bert', layers: 1, hidden: 8, heads: 2, ffn: 16, dropout: 0 },
      method: { name: 'multilabel-kd' }, optimizer: { name: 'adamw', lr: 0.002 },
    }, join(root, 'run.yaml'));
    const r = await runExperiment(e, { mode: 'distill', resume: false });
    try {
      const res = JSON.parse(readFileSync(join(root, 'run', 'result.json'), 'utf8')) as { test: { microF1: number }; steps: number };
      assert.ok(res.steps > 0);
      assert.ok(res.test.microF1 >= 0 && res.test.microF1 <= 1);
      // The student's vocabulary (trained, ~300 ids) is not the teacher's 40: ids ≥ 40 fed to the
      // teacher's embedding would have failed in onnxruntime, so the teacher tokenized the texts.
      const studentVocab = (JSON.parse(readFileSync(join(root, 'run', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
      assert.ok(Object.keys(studentVocab).length > 40);
      assert.match(r.teacher!.description, /ONNX text model/);
      // kdistill eval scores the teacher beside the student the same way: the run's own, and --teacher FILE.
      for (const args of [[join(root, 'run')], [join(root, 'run'), '--teacher', join(teacherDir, 'onnx', 'model.onnx')]]) {
        const { value: code, printed } = await printedBy(() => evalCommand(args));
        assert.equal(code, 0);
        assert.match(printed, /teacher: ONNX text model/, printed);
      }
    } finally {
      r.student.dispose();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
