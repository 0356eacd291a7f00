// A text dataset of an experiment file: read the corpus, split it (with data.text.splitSeed; text
// corpora have no fixed test set), get the WordPiece tokenizer (given, the teacher's, or trained on the training
// split only) and encode every split as padded token-id rows.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/dataset.js';
import type { TextDatasetName, TextSpec } from '../config/experiment.js';
import { findPackagesLists, readDebtags, readSpamAssassin } from './corpora.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { multiLabelDataset, multiLabelSubset, textDataset, type MultiLabelDataset } from './data.js';
import { RowTexts } from './teacher-text.js';

export interface PreparedText {
  train: Dataset | MultiLabelDataset;
  val: Dataset | MultiLabelDataset;
  test: Dataset | MultiLabelDataset;
  numClasses: number;
  multiLabel: boolean;
  tokenizer: WordPieceTokenizer;
  /** Where the tokenizer came from: a file, or 'trained'. */
  tokenizerSource: string;
  /** The raw text of every row, when asked for (keepTexts: a teacher with its own tokenizer reads it). */
  texts?: RowTexts;
  describe: string;
}

/** The tokenizer a run saved in its folder (next to its model.safetensors), if any. */
export function runTokenizer(runDirOrModelFile: string): string | null {
  const dir = runDirOrModelFile.endsWith('.safetensors') ? dirname(runDirOrModelFile) : runDirOrModelFile;
  const p = join(dir, 'tokenizer.json');
  return existsSync(p) ? p : null;
}

function splitIndices(n: number, t: TextSpec): { train: number[]; val: number[]; test: number[] } {
  const perm = Array.from(new Rng(t.splitSeed, 0x5e7).permutation(n));
  const nv = Math.round(n * t.valFraction), nt = Math.round(n * t.testFraction);
  if (n - nv - nt < 2) throw new Error(`${n} examples leave no training split after valFraction ${t.valFraction} and testFraction ${t.testFraction}`);
  return { val: perm.slice(0, nv), test: perm.slice(nv, nv + nt), train: perm.slice(nv + nt) };
}

/** Seeded subsample of at most `max` items, kept in their original order. */
function subsample<T>(items: T[], max: number | undefined, seed: number): T[] {
  if (!max || items.length <= max) return items;
  const keep = new Rng(seed, 0x5ab).permutation(items.length).subarray(0, max);
  return Array.from(keep).sort((a, b) => a - b).map((i) => items[i]!);
}

function tokenizerFor(t: TextSpec, trainTexts: () => string[], fallback: string | null): { tok: WordPieceTokenizer; source: string } {
  const file = t.tokenizer ?? fallback;
  if (file) {
    const tok = WordPieceTokenizer.load(file);
    return { tok, source: file };
  }
  return { tok: WordPieceTokenizer.train(trainTexts().map((s) => s.slice(0, t.tokenizerChars)), { vocabSize: t.vocabSize }), source: 'trained' };
}

/**
 * The tokenizer, when data.text names none: `runDir`'s own (a resumed run, or a finished one being
 * evaluated, keeps the ids it trained with), else the teacher checkpoint's run's (teacher and
 * student see the same ids), else one trained on the training split.
 */
export function prepareTextData(dataset: TextDatasetName, t: TextSpec, o: { path?: string; runDir?: string; teacherCheckpoint?: string; keepTexts?: boolean } = {}): PreparedText {
  const fallback = (o.runDir ? runTokenizer(o.runDir) : null) ?? (o.teacherCheckpoint ? runTokenizer(o.teacherCheckpoint) : null);
  if (dataset === 'spam-assassin') {
    const ex = subsample(readSpamAssassin(o.path), t.maxExamples, t.splitSeed);
    const s = splitIndices(ex.length, t);
    const { tok, source } = tokenizerFor(t, () => s.train.map((i) => ex[i]!.text), fallback);
    const texts = o.keepTexts ? new RowTexts() : undefined;
    const mk = (idx: number[], part: string): Dataset => {
      const ds = textDataset(tok, idx.map((i) => ex[i]!.text), idx.map((i) => ex[i]!.label),
        { maxLen: t.maxLen, numClasses: 2, name: `spam-assassin/${part}`, classNames: ['ham', 'spam'] });
      texts?.add(ds, idx.map((i) => ex[i]!.text));
      return ds;
    };
    const spam = ex.filter((e) => e.label === 1).length;
    return {
      train: mk(s.train, 'train'), val: mk(s.val, 'val'), test: mk(s.test, 'test'), numClasses: 2, multiLabel: false, tokenizer: tok, tokenizerSource: source, ...(texts ? { texts } : {}),
      describe: `SpamAssassin, ${ex.length} mails (${spam} spam), ${s.train.length}/${s.val.length}/${s.test.length} train/val/test, vocabulary ${tok.vocabSize}`,
    };
  }
  const files = o.path ? (statSync(o.path).isDirectory() ? findPackagesLists(o.path) : [o.path]) : undefined;
  const corpus = readDebtags({ topTags: t.topTags, exclude: t.excludeTags, ...(files ? { files } : {}) });
  const ex = subsample(corpus.examples, t.maxExamples, t.splitSeed);
  if (ex.length === 0) throw new Error(`no package with a Tag: field among the top ${t.topTags} tags${o.path ? ` in ${o.path}` : ''}`);
  const s = splitIndices(ex.length, t);
  const { tok, source } = tokenizerFor(t, () => s.train.map((i) => ex[i]!.text), fallback);
  const all = multiLabelDataset(tok, ex.map((e) => e.text), ex.map((e) => e.labels), { maxLen: t.maxLen, labelNames: corpus.labelNames, name: 'debtags' });
  const card = ex.reduce((a, e) => a + e.labels.length, 0) / ex.length;
  return {
    train: multiLabelSubset(all, s.train, 'debtags/train'), val: multiLabelSubset(all, s.val, 'debtags/val'), test: multiLabelSubset(all, s.test, 'debtags/test'),
    numClasses: corpus.labelNames.length, multiLabel: true, tokenizer: tok, tokenizerSource: source, ...(o.keepTexts ? { texts: new RowTexts().add(all, ex.map((e) => e.text)) } : {}),
    describe: `debtags: ${corpus.examples.length} tagged packages, ${ex.length} used, ${corpus.labelNames.length} labels (${corpus.labelNames.join(', ')}), ` +
      `${card.toFixed(2)} labels per package, ${s.train.length}/${s.val.length}/${s.test.length} train/val/test, vocabulary ${tok.vocabSize}`,
  };
}
