// TinyBERT's data augmentation for task-specific distillation (Jiao et al., Findings of EMNLP 2020,
// §3.3 and Algorithm 1; the authors' TinyBERT/data_augmentation.py). Each word of a training text
// gets a candidate set: for a single-piece word, the K most probable tokens of a masked language
// model at that word's position with the word masked; for a word of several pieces the paper
// takes its K nearest GloVe neighbours. Each of N_a copies then replaces every word, with
// probability p_t, by a uniformly chosen candidate. As in the authors' code, candidates are found
// once per word on the original text, only alphabetic words outside a stop-word list take part,
// continuation pieces (##…) are dropped from the K predictions, and a copy equal to the original
// or to an earlier copy is not kept.
//
// Differences from the paper, forced or chosen here:
//  - no GloVe offline: a multi-piece word keeps itself (as the authors' code does for a word GloVe
//    does not know);
//  - the masked text is the sentence alone ([CLS] x_masked [SEP], Algorithm 1); the authors' code
//    feeds the masked sentence paired with the original, which kdistill's BERT (no segment
//    embeddings, positions up to maxLen) cannot take;
//  - special tokens ([PAD], [CLS], [SEP], [MASK], [UNK]) are dropped from the K predictions, as
//    ## pieces are: a [PAD] or [SEP] in mid-text would change what the encoder attends to;
//  - it works on the encoded id rows (words = a piece and its ## continuations), so only the words
//    inside the first maxLen tokens are seen, and a replacement keeps the row's length.
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/dataset.js';
import type { BertEncoder } from '../nn/zoo/transformer.js';
import { CLS, MASK, PAD, SEP, UNK } from './tokenizer.js';
import type { MultiLabelDataset } from './data.js';
import type { MlmAugmentSpec } from '../config/experiment.js';

export type { MlmAugmentSpec };

/**
 * The English stop words the authors' script never replaces (NLTK's list, which it spells out).
 * Only lower-case alphabetic entries matter here: other words are not replaceable anyway.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  ('i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself it its itself ' +
    'they them their theirs themselves this that these those am is are was were be been being have has had having do does did doing ' +
    'a an the and but if or because as until while of at by for with about against between into through during before after above ' +
    'below to from up down in out on off over under again further then once here there all any both each few more most other some such ' +
    'no nor not only own same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn hasn ' +
    'haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn').split(' '),
);

/** Whether a word takes part (the authors' _is_valid and stop-word test): letters a–z only, not a stop word. */
export function isReplaceable(word: string): boolean {
  return /^[a-z]+$/.test(word.toLowerCase()) && !STOP_WORDS.has(word.toLowerCase());
}

/** A word of an encoded row: the position of its first piece and its number of pieces. */
export interface WordSpan {
  start: number;
  pieces: number;
}

/** The words of a [CLS] … [SEP] [PAD]… row: a piece and the ## pieces after it. */
export function wordSpans(row: ArrayLike<number>, vocab: readonly string[]): WordSpan[] {
  const out: WordSpan[] = [];
  for (let i = 0; i < row.length; i++) {
    const id = row[i]!;
    if (id === PAD || id === SEP) break;
    if (id === CLS) continue;
    const piece = vocab[id];
    if (piece === undefined) throw new RangeError(`wordSpans: id ${id} at position ${i} is outside the vocabulary (size ${vocab.length})`);
    const last = out[out.length - 1];
    if (piece.startsWith('##') && last) last.pieces++;
    else out.push({ start: i, pieces: 1 });
  }
  return out;
}

/**
 * A word's candidates from the masked-LM logits at its position: the `topK` highest (ties: the
 * lower id first), then those `isWord` rejects dropped (the authors drop ## pieces after taking
 * the K, so fewer than K may remain); `fallback` (the word itself) when none is left.
 */
export function mlmCandidates(logits: ArrayLike<number>, topK: number, isWord: (id: number) => boolean, fallback: number): number[] {
  const k = Math.min(topK, logits.length);
  const best: number[] = [];
  for (let id = 0; id < logits.length; id++) {
    const v = logits[id]!;
    if (best.length === k && !(v > logits[best[k - 1]!]!)) continue;
    let j = best.length === k ? k - 1 : best.length;
    while (j > 0 && v > logits[best[j - 1]!]!) j--;
    best.splice(j, 0, id);
    if (best.length > k) best.pop();
  }
  const kept = best.filter(isWord);
  return kept.length ? kept : [fallback];
}

/** A replaceable word: its position in the row and its candidate ids. */
export interface ReplacementSlot {
  pos: number;
  candidates: number[];
}

/**
 * The replacement rule (the authors' augment loop, with the randomness as explicit uniform draws
 * in [0, 1)): for each of `copies` copies, for each slot in order, a candidate is chosen
 * (index ⌊u·|C|⌋) and, when the next draw is below `prob`, put in place of the word. Two draws per
 * slot per copy, always, as the authors' random.choice + random.random. Copies equal to the
 * original or to an earlier copy are dropped; the kept copies are returned in order.
 */
export function replaceWords(row: ArrayLike<number>, slots: readonly ReplacementSlot[], copies: number, prob: number, uniform: () => number): Int32Array[] {
  const seen = new Set<string>([Array.prototype.join.call(row, ',')]);
  const out: Int32Array[] = [];
  for (let n = 0; n < copies; n++) {
    const copy = Int32Array.from(row);
    for (const s of slots) {
      const c = s.candidates[Math.min(s.candidates.length - 1, Math.floor(uniform() * s.candidates.length))]!;
      if (uniform() < prob) copy[s.pos] = c;
    }
    const key = copy.join(',');
    if (!seen.has(key)) { seen.add(key); out.push(copy); }
  }
  return out;
}

/** What an augmentation did, for result.json. */
export interface AugmentStats {
  examples: number;
  /** Rows after augmentation: the originals and every kept copy. */
  rows: number;
  /** Single-piece replaceable words (masked-LM queries) and multi-piece replaceable words (kept as they are: no GloVe). */
  singlePieceWords: number;
  multiPieceWords: number;
  /** Copies dropped as duplicates of the original or of an earlier copy. */
  duplicates: number;
  /** Share of the kept copies' word pieces that differ from the original's. */
  changedPieceShare: number;
  seconds: number;
}

/**
 * Masked-LM logits for a batch of `batch` id rows (float32, [batch, L], each with one [MASK]) at
 * `positions` (flat indices b·L + p): [batch, V], row-major.
 */
export type MaskedLmScorer = (ids: Float32Array, positions: BigInt64Array, batch: number) => Float32Array;

/** A BERT's MLM head as a scorer: in eval mode, without gradients, the head on the masked positions only ([B, V], not [B, L, V]). */
export function teacherScorer(model: BertEncoder): MaskedLmScorer {
  const head = model.mlmHead;
  if (!head) throw new Error('data.text.augment: the teacher has no MLM head (train it with mlm: so its masked-LM predictions exist)');
  const L = model.spec.maxLen, H = model.spec.hidden;
  return (ids, positions, batch) => model.inEvalMode(() => noGrad(() => tidy(() => {
    const len = ids.length / batch;
    if (len > L) throw new RangeError(`data.text.augment: rows of ${len} tokens, but the teacher takes at most ${L}`);
    const h = model.encode(tensor(ids, { shape: [batch, len] })).reshape([batch * len, H]);
    return head.call(h.indexSelect(0, tensor(positions, { shape: [batch] }))).contiguous().data<Float32Array>();
  })));
}

/**
 * The augmented training set: each example followed by its kept copies, with its label (or
 * multi-hot targets). `scorer` gives the masked-LM logits (the teacher's: teacherScorer), for
 * `batchSize` masked rows at a time. Example i's draws come from `draws(i)`, by default the
 * stream (spec.seed, i), so an example's copies do not depend on the others.
 */
export function mlmAugment<D extends Dataset>(scorer: MaskedLmScorer, data: D, vocab: readonly string[], spec: MlmAugmentSpec, o: {
  batchSize?: number; onProgress?: (done: number, total: number) => void; draws?: (example: number) => () => number;
} = {}): { data: D; stats: AugmentStats } {
  const t0 = Date.now();
  const L = data.sampleShape[0]!, V = vocab.length;
  const rowOf = (i: number): Float32Array => data.x.subarray(i * L, (i + 1) * L);
  // The masked-LM queries: one per single-piece replaceable word, in row and position order.
  const queries: { row: number; slot: ReplacementSlot }[] = [];
  const slots: ReplacementSlot[][] = [];
  let multi = 0;
  for (let i = 0; i < data.size; i++) {
    const row = rowOf(i), s: ReplacementSlot[] = [];
    for (const w of wordSpans(row, vocab)) {
      if (!isReplaceable(spanText(row, w, vocab))) continue;
      if (w.pieces > 1) { multi++; continue; }
      const slot = { pos: w.start, candidates: [] as number[] };
      s.push(slot);
      queries.push({ row: i, slot });
    }
    slots.push(s);
  }
  const special = new Set([PAD, UNK, CLS, SEP, MASK]);
  const isWord = (id: number): boolean => !special.has(id) && !vocab[id]!.startsWith('##');
  const B = o.batchSize ?? 64;
  for (let q0 = 0; q0 < queries.length; q0 += B) {
    const batch = queries.slice(q0, q0 + B);
    const ids = new Float32Array(batch.length * L), at = new BigInt64Array(batch.length);
    batch.forEach((q, b) => {
      ids.set(rowOf(q.row), b * L);
      ids[b * L + q.slot.pos] = MASK;
      at[b] = BigInt(b * L + q.slot.pos);
    });
    const logits = scorer(ids, at, batch.length);
    if (logits.length !== batch.length * V) throw new RangeError(`data.text.augment: the masked-LM scorer gave ${logits.length} logits for ${batch.length} rows of a ${V}-token vocabulary`);
    batch.forEach((q, b) => { q.slot.candidates = mlmCandidates(logits.subarray(b * V, (b + 1) * V), spec.topK, isWord, rowOf(q.row)[q.slot.pos]!); });
    o.onProgress?.(Math.min(queries.length, q0 + B), queries.length);
  }
  // The copies.
  const draws = o.draws ?? ((i: number) => { const rng = new Rng(spec.seed, 0x7b1a, i); return () => rng.nextDouble(); });
  const rows: ArrayLike<number>[] = [];
  const from: number[] = [];
  let duplicates = 0, changed = 0, copyPieces = 0;
  for (let i = 0; i < data.size; i++) {
    const row = rowOf(i);
    const copies = replaceWords(row, slots[i]!, spec.copies, spec.prob, draws(i));
    duplicates += spec.copies - copies.length;
    rows.push(row);
    from.push(i);
    const pieces = wordSpans(row, vocab).reduce((a, w) => a + w.pieces, 0);
    for (const c of copies) {
      rows.push(c);
      from.push(i);
      copyPieces += pieces;
      for (let p = 0; p < L; p++) if (c[p] !== row[p]) changed++;
    }
  }
  const x = new Float32Array(rows.length * L);
  rows.forEach((r, j) => x.set(r, j * L));
  const y = data.y ? Int32Array.from(from, (i) => data.y![i]!) : null;
  const ml = data as unknown as Partial<MultiLabelDataset>;
  let targets: Float32Array | undefined;
  if (ml.targets) {
    const C = data.numClasses, t = new Float32Array(rows.length * C);
    from.forEach((i, j) => t.set(ml.targets!.subarray(i * C, (i + 1) * C), j * C));
    targets = t;
  }
  const name = `${data.name}+mlm-augment(copies ${spec.copies}, p ${spec.prob}, K ${spec.topK}, seed ${spec.seed})`;
  // Built from the original's fields so the same kind of dataset (single- or multi-label) comes out;
  // 'origin' is left out: the copies are new samples that no per-sample cache of the original holds.
  const { origin: _origin, ...rest } = data as Dataset & { origin?: unknown };
  const out = { ...rest, name, x, y, size: rows.length, ...(targets ? { targets } : {}) } as unknown as D;
  return {
    data: out,
    stats: {
      examples: data.size, rows: rows.length, singlePieceWords: queries.length, multiPieceWords: multi, duplicates,
      changedPieceShare: copyPieces ? changed / copyPieces : 0, seconds: (Date.now() - t0) / 1000,
    },
  };
}

/** A word's text: its pieces joined, ## dropped. */
function spanText(row: ArrayLike<number>, w: WordSpan, vocab: readonly string[]): string {
  let s = '';
  for (let p = w.start; p < w.start + w.pieces; p++) s += vocab[row[p]!]!.replace(/^##/, '');
  return s;
}
