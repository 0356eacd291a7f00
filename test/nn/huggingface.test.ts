// Hugging Face BERT checkpoints (src/nn/huggingface.ts) against the PyTorch reference in
// scripts/fixtures/hf_bert.py: a tiny BertForSequenceClassification with Hugging Face's parameter
// names, token-type embeddings, pooler and the additive attention mask. Tolerance 1e-5: float32
// on both sides, 2 layers of width 16 and logits of order 1, so only summation order differs
// (~1e-6); a mis-mapped tensor (say, the two LayerNorms of a layer swapped) moves logits by ~0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { packageRoot } from '../../src/tensor/native.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { BertEncoder } from '../../src/nn/zoo/transformer.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { initStudentFromHf, loadHfBert } from '../../src/nn/huggingface.js';
import { checkpointTeacher } from '../../src/teachers/sources.js';
import { parseSafetensors, serializeSafetensors } from '../../src/nn/safetensors.js';

const DIR = join(packageRoot, 'test', 'fixtures', 'hf-bert');
const REF = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'hf-bert-reference.json'), 'utf8')) as { ids: number[][]; logits: number[][] };
const ids = (): ReturnType<typeof torch.tensor> => torch.tensor(BigInt64Array.from(REF.ids.flat().map(BigInt)), { shape: [REF.ids.length, REF.ids[0]!.length] });

function maxDiff(a: ArrayLike<number>, b: number[]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < b.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** A copy of the fixture folder with config.json and/or the tensors edited. */
function edited(o: { config?: (c: Record<string, unknown>) => void; tensors?: (names: Map<string, unknown>) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kd-hf-'));
  cpSync(DIR, dir, { recursive: true });
  if (o.config) {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    o.config(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  }
  if (o.tensors) {
    const f = parseSafetensors(readFileSync(join(dir, 'model.safetensors')));
    o.tensors(f.tensors as Map<string, unknown>);
    writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(f.tensors));
  }
  return dir;
}

test('a Hugging Face BERT folder loads with its logits equal to PyTorch within 1e-5', () => {
  const { model, classNames, classifierLoaded } = loadHfBert(DIR, { requireClassifier: true });
  try {
    assert.deepEqual(classNames, ['negative', 'neutral', 'positive']);
    assert.ok(classifierLoaded);
    assert.equal(model.spec.typeVocabSize, 2);
    const got = noGrad(() => torch.tidy(() => model.call(ids()).data<Float32Array>()));
    const d = maxDiff(got, REF.logits.flat());
    assert.ok(d < 1e-5, `max |kdistill − PyTorch| = ${d}`);
    // The token-type row matters: without it the logits move far beyond the tolerance.
    const spec = { ...model.spec, typeVocabSize: 0 };
    const bare = createModel(spec) as BertEncoder;
    const state = new Map([...model.stateDict()].filter(([k]) => !k.startsWith('embeddings.tokenType')));
    bare.loadStateDict(state, true);
    bare.eval();
    const without = noGrad(() => torch.tidy(() => bare.call(ids()).data<Float32Array>()));
    assert.ok(maxDiff(without, REF.logits.flat()) > 1e-3);
    bare.dispose();
  } finally {
    model.dispose();
  }
});

test('as a teacher: checkpoint: <folder> gives the same logits and the class names of id2label', () => {
  const t = checkpointTeacher(DIR);
  try {
    assert.equal(t.numClasses, 3);
    assert.deepEqual(t.classNames, ['negative', 'neutral', 'positive']);
    const got = noGrad(() => torch.tidy(() => t.logits(ids()).data<Float32Array>()));
    assert.ok(maxDiff(got, REF.logits.flat()) < 1e-5);
  } finally {
    t.model.dispose();
  }
});

test('as a student init: a narrower, shorter student without token types takes the slices and folds the type row into positions', () => {
  const full = loadHfBert(DIR).model;
  // Same widths and depth, no token-type embeddings, 16 positions instead of 24: logits of the
  // initialised student equal the checkpoint's on single-segment inputs (classifier included,
  // since the file has one of the student's width).
  const student = createModel({ arch: 'bert', vocabSize: 40, maxLen: 16, layers: 2, hidden: 16, heads: 4, ffn: 32, numClasses: 3 }) as BertEncoder;
  try {
    const copied = initStudentFromHf(student, DIR);
    assert.ok(copied.includes('layer1.outNorm.weight') && copied.includes('classifier.weight'));
    student.eval();
    const a = noGrad(() => torch.tidy(() => student.call(ids()).data<Float32Array>()));
    assert.ok(maxDiff(a, REF.logits.flat()) < 1e-5, 'folding the type-0 row into the positions is exact');
    // A 2-class student keeps its own head: the file's 3-row classifier does not fit.
    const two = createModel({ arch: 'bert', vocabSize: 40, maxLen: 16, layers: 1, hidden: 8, heads: 4, ffn: 16, numClasses: 2 }) as BertEncoder;
    const before = noGrad(() => two.classifier.weight.clone());
    const names = initStudentFromHf(two, DIR, [1]);
    assert.ok(!names.some((n) => n.startsWith('classifier.')));
    assert.ok(noGrad(() => two.classifier.weight.equal(before)));
    assert.ok(noGrad(() => torch.tidy(() => two.layers[0]!.outNorm.weight!.equal(full.layers[1]!.outNorm.weight!.narrow(0, 0, 8)))));
    before.dispose();
    two.dispose();
    // A student with another vocabulary is refused, naming the fix.
    const other = createModel({ arch: 'bert', vocabSize: 50, maxLen: 16, layers: 2, hidden: 16, heads: 4, ffn: 32, numClasses: 3 }) as BertEncoder;
    assert.throws(() => initStudentFromHf(other, DIR), /vocab_size 40, but the student's tokenizer has 50 tokens.*vocab\.txt/);
    other.dispose();
  } finally {
    student.dispose();
    full.dispose();
  }
});

test('bad checkpoints fail naming the file and the field or tensor at fault', () => {
  const dirs: string[] = [];
  const at = (d: string): string => (dirs.push(d), d);
  try {
    assert.throws(() => loadHfBert(at(edited({ config: (c) => { c.model_type = 'gpt2'; } }))), /config\.json: 'model_type' must be 'bert'.*"gpt2"/);
    assert.throws(() => loadHfBert(at(edited({ config: (c) => { c.hidden_act = 'gelu_new'; } }))), /'hidden_act' must be 'gelu'/);
    assert.throws(() => loadHfBert(at(edited({ config: (c) => { c.pad_token_id = 1; } }))), /'pad_token_id' must be 0/);
    assert.throws(() => loadHfBert(at(edited({ config: (c) => { c.num_hidden_layers = 3; } }))), /model\.safetensors: missing BERT tensors bert\.encoder\.layer\.2\./);
    assert.throws(() => loadHfBert(at(edited({ config: (c) => { c.intermediate_size = 30; } }))), /'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[32, 16\], config\.json implies \[30, 16\]/);
    assert.throws(() => loadHfBert(at(edited({ tensors: (m) => { m.set('bert.extra.weight', m.get('classifier.bias')); } }))), /tensors not in a BERT \(bert\.extra\.weight\)/);
    assert.throws(() => loadHfBert(at(edited({ tensors: (m) => { m.delete('classifier.weight'); m.delete('classifier.bias'); } })), { requireClassifier: true, numClasses: 3 }),
      /no 'classifier\.weight': a teacher needs a fine-tuned classification head/);
    const bin = at(edited({}));
    rmSync(join(bin, 'model.safetensors'));
    writeFileSync(join(bin, 'pytorch_model.bin'), 'x');
    assert.throws(() => loadHfBert(bin), /no model\.safetensors \(it has pytorch_model\.bin.*save_file/);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
