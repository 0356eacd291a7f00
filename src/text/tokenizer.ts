// A WordPiece tokenizer trained on the corpus (Schuster & Nakajima 2012; the BERT vocabulary
// format): BERT's basic pre-tokenization (lower-case, split on whitespace and punctuation), a
// vocabulary learnt by merging the most frequent adjacent pieces (the HuggingFace WordPiece
// trainer's procedure), continuation pieces prefixed with '##', and greedy longest-match-first
// encoding. Saved as JSON next to the model, since token ids mean nothing without it.
import { readFileSync, writeFileSync } from 'node:fs';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD = 0, UNK = 1, CLS = 2, SEP = 3, MASK = 4;

export interface TokenizerTrainOptions {
  /** Target vocabulary size, special tokens included. */
  vocabSize: number;
  /** Words seen fewer times are left out of training (they still encode, as pieces or [UNK]). */
  minFrequency?: number;
  /** Longer words encode as [UNK] (BERT: 100; long tokens in mail are mostly encodings). */
  maxWordLength?: number;
  /** Characters seen fewer times stay out of the alphabet (default 10): stray bytes of broken encodings would fill the vocabulary. */
  alphabetMinFrequency?: number;
}

export interface TokenizerJSON {
  type: 'wordpiece';
  version: 1;
  vocab: string[];
  lowercase: boolean;
  maxWordLength: number;
}

const PUNCT = /[\p{P}\p{S}]/u;

/** BERT's BasicTokenizer, simplified: lower-case, strip accents, split on spaces and punctuation. */
export function preTokenize(text: string, lowercase = true): string[] {
  let t = lowercase ? text.toLowerCase() : text;
  t = t.normalize('NFD').replace(/\p{Mn}/gu, '');
  const out: string[] = [];
  let cur = '';
  for (const ch of t) {
    if (/\s/u.test(ch) || ch.charCodeAt(0) < 32) {
      if (cur) { out.push(cur); cur = ''; }
    } else if (PUNCT.test(ch)) {
      if (cur) { out.push(cur); cur = ''; }
      out.push(ch);
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

export class WordPieceTokenizer {
  readonly vocab: string[];
  readonly #ids = new Map<string, number>();
  readonly #cache = new Map<string, number[]>();

  constructor(vocab: string[], readonly lowercase = true, readonly maxWordLength = 100) {
    SPECIAL_TOKENS.forEach((s, i) => {
      if (vocab[i] !== s) throw new Error(`WordPieceTokenizer: vocabulary entry ${i} must be ${s}, got ${JSON.stringify(vocab[i])}`);
    });
    this.vocab = [...vocab];
    this.vocab.forEach((p, i) => {
      if (this.#ids.has(p)) throw new Error(`WordPieceTokenizer: duplicate vocabulary entry ${JSON.stringify(p)}`);
      this.#ids.set(p, i);
    });
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Learns a vocabulary from texts by repeatedly merging the most frequent adjacent piece pair. */
  static train(texts: Iterable<string>, o: TokenizerTrainOptions): WordPieceTokenizer {
    const maxLen = o.maxWordLength ?? 100;
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of preTokenize(t)) if (w.length <= maxLen) counts.set(w, (counts.get(w) ?? 0) + 1);
    const minF = o.minFrequency ?? 2;
    const vocab: string[] = [...SPECIAL_TOKENS];
    const index = new Map<string, number>();
    const add = (p: string): number => {
      let id = index.get(p);
      if (id === undefined) { id = vocab.length; vocab.push(p); index.set(p, id); }
      return id;
    };
    // Alphabet first (initial and continuation forms), so every seen character is encodable.
    const charCount = new Map<string, number>();
    for (const [w, c] of counts) for (const ch of w) charCount.set(ch, (charCount.get(ch) ?? 0) + c);
    const chars = [...charCount].filter(([, c]) => c >= Math.max(minF, o.alphabetMinFrequency ?? 10)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([ch]) => ch);
    for (const ch of chars) add(ch);
    for (const ch of chars) add(`##${ch}`);
    if (vocab.length >= o.vocabSize) return new WordPieceTokenizer(vocab.slice(0, o.vocabSize), true, maxLen);

    // Words as id sequences; pair counts and, per pair, the words containing it (incremental BPE).
    const words: number[][] = [];
    const freq: number[] = [];
    for (const [w, c] of counts) {
      if (c < minF) continue;
      const ids: number[] = [];
      let ok = true;
      [...w].forEach((ch, i) => {
        const id = index.get(i === 0 ? ch : `##${ch}`);
        if (id === undefined) ok = false;
        else ids.push(id);
      });
      if (ok && ids.length > 1) { words.push(ids); freq.push(c); }
    }
    const K = 1 << 21;
    const key = (a: number, b: number): number => a * K + b;
    const pairCount = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    const addWord = (wi: number, sign: number): void => {
      const ids = words[wi]!;
      for (let i = 0; i + 1 < ids.length; i++) {
        const k = key(ids[i]!, ids[i + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[wi]!);
        if (sign > 0) {
          let s = where.get(k);
          if (!s) where.set(k, (s = new Set()));
          s.add(wi);
        }
      }
    };
    for (let wi = 0; wi < words.length; wi++) addWord(wi, 1);
    while (vocab.length < o.vocabSize) {
      let best = -1, bestC = 0;
      for (const [k, c] of pairCount) if (c > bestC || (c === bestC && c > 0 && k < best)) { best = k; bestC = c; }
      if (bestC < minF) break;
      const a = Math.floor(best / K), b = best % K;
      const merged = vocab[a]! + vocab[b]!.slice(2);
      const m = add(merged);
      for (const wi of where.get(best) ?? []) {
        addWord(wi, -1);
        const ids = words[wi]!, out: number[] = [];
        for (let i = 0; i < ids.length; i++) {
          if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) { out.push(m); i++; } else out.push(ids[i]!);
        }
        words[wi] = out;
        addWord(wi, 1);
      }
      pairCount.delete(best);
      where.delete(best);
    }
    return new WordPieceTokenizer(vocab, true, maxLen);
  }

  /** WordPiece ids of one pre-tokenized word: greedy longest match first, [UNK] if it cannot split. */
  #word(w: string): number[] {
    const hit = this.#cache.get(w);
    if (hit) return hit;
    const chars = [...w];
    let out: number[] = [];
    if (chars.length > this.maxWordLength) out = [UNK];
    else {
      let start = 0;
      while (start < chars.length) {
        let end = chars.length, id: number | undefined;
        while (end > start) {
          const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
          id = this.#ids.get(piece);
          if (id !== undefined) break;
          end--;
        }
        if (id === undefined) { out = [UNK]; break; }
        out.push(id);
        start = end;
      }
    }
    if (this.#cache.size < 200_000) this.#cache.set(w, out);
    return out;
  }

  /** Piece ids of a text, without special tokens. */
  tokenize(text: string): number[] {
    const out: number[] = [];
    for (const w of preTokenize(text, this.lowercase)) for (const id of this.#word(w)) out.push(id);
    return out;
  }

  /** [CLS] pieces… [SEP], truncated to maxLen and right-padded with [PAD] (id 0). */
  encode(text: string, maxLen: number): Int32Array {
    if (!Number.isInteger(maxLen) || maxLen < 2) throw new RangeError(`encode: maxLen must be an integer ≥ 2, got ${maxLen}`);
    const ids = this.tokenize(text).slice(0, maxLen - 2);
    const out = new Int32Array(maxLen); // zero-filled = [PAD]
    out[0] = CLS;
    out.set(ids, 1);
    out[ids.length + 1] = SEP;
    return out;
  }

  /** Text of ids: special tokens and padding dropped, '##' pieces joined to the previous one. */
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < SPECIAL_TOKENS.length && id !== UNK) continue;
      const p = this.vocab[id];
      if (p === undefined) throw new RangeError(`decode: id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (p.startsWith('##')) s += p.slice(2);
      else s += (s ? ' ' : '') + p;
    }
    return s;
  }

  toJSON(): TokenizerJSON {
    return { type: 'wordpiece', version: 1, vocab: this.vocab, lowercase: this.lowercase, maxWordLength: this.maxWordLength };
  }
  static fromJSON(j: TokenizerJSON): WordPieceTokenizer {
    if (j?.type !== 'wordpiece' || !Array.isArray(j.vocab)) throw new Error('tokenizer JSON: expected { type: "wordpiece", vocab: [...] }');
    return new WordPieceTokenizer(j.vocab, j.lowercase ?? true, j.maxWordLength ?? 100);
  }
  save(path: string): void {
    writeFileSync(path, JSON.stringify(this.toJSON()));
  }
  static load(path: string): WordPieceTokenizer {
    return WordPieceTokenizer.fromJSON(JSON.parse(readFileSync(path, 'utf8')) as TokenizerJSON);
  }
}
