// WordPiece tokenization (Schuster & Nakajima 2012; BERT's vocabulary format) in Hugging Face's
// tokenizer.json format. Encoding goes through @huggingface/tokenizers (the JavaScript tokenizer
// of transformers.js: BertNormalizer, BertPreTokenizer, WordPiece), so kdistill's ids are the ones
// transformers.js and Hugging Face's tokenizers compute from the same file. Training the
// vocabulary stays here: no TypeScript library trains WordPiece (Hugging Face's trainer is Rust,
// with Python bindings only). It learns by merging the most frequent adjacent pieces, the
// procedure of Hugging Face's WordPiece trainer, on words split by the same normaliser and
// pre-tokenizer. Saved as tokenizer.json next to the model, since token ids mean nothing without it;
// reads Hugging Face's tokenizer.json and vocab.txt, and kdistill's older {type: 'wordpiece'} files.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { atomicWrite } from '../util/fs.js';

/** The special tokens of a vocabulary kdistill trains, at these ids. */
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

/** kdistill's tokenizer file before it wrote Hugging Face's format (still read). */
export interface LegacyTokenizerJSON {
  type: 'wordpiece';
  version: 1;
  vocab: string[];
  lowercase: boolean;
  maxWordLength: number;
}

/** Hugging Face's tokenizer.json for a BERT WordPiece tokenizer (the fields kdistill writes and reads). */
export interface HfTokenizerJSON {
  version: '1.0';
  truncation: null | { direction: 'Right'; max_length: number; strategy: 'LongestFirst'; stride: 0 };
  padding: null;
  added_tokens: { id: number; content: string; single_word: false; lstrip: false; rstrip: false; normalized: false; special: true }[];
  normalizer: { type: 'BertNormalizer'; clean_text: boolean; handle_chinese_chars: boolean; strip_accents: boolean | null; lowercase: boolean };
  pre_tokenizer: { type: 'BertPreTokenizer' };
  post_processor: Record<string, unknown>;
  decoder: { type: 'WordPiece'; prefix: '##'; cleanup: boolean };
  model: { type: 'WordPiece'; unk_token: string; continuing_subword_prefix: '##'; max_input_chars_per_word: number; vocab: Record<string, number> };
}

function normalizerConfig(lowercase: boolean): HfTokenizerJSON['normalizer'] {
  return { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase };
}

/** BERT's basic tokenization (Hugging Face's BertNormalizer + BertPreTokenizer): the words WordPiece splits. */
export function preTokenize(text: string, lowercase = true): string[] {
  const t = lowercase ? BASIC_LOWER : BASIC_CASED;
  return t.pre_tokenizer!.pre_tokenize_text(t.normalizer!.normalize(text));
}
/** The library's normaliser and pre-tokenizer, reached through a tokenizer with a one-token vocabulary. */
function basic(lowercase: boolean): Tokenizer {
  return new Tokenizer({
    normalizer: normalizerConfig(lowercase), pre_tokenizer: { type: 'BertPreTokenizer' }, post_processor: null, decoder: null, added_tokens: [],
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', vocab: { '[UNK]': 0 } },
  }, {});
}
const BASIC_LOWER = basic(true), BASIC_CASED = basic(false);

export class WordPieceTokenizer {
  readonly vocab: string[];
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  /** [MASK], when the vocabulary has one (MLM pre-training needs it). */
  readonly maskId: number | null;
  readonly #ids = new Map<string, number>();
  readonly #hf: Tokenizer;

  /**
   * `vocab` in id order; [PAD], [UNK], [CLS] and [SEP] anywhere in it (Hugging Face's BERT
   * vocabularies put [UNK] at 100), except [PAD], which must be id 0: kdistill's BERT masks id 0.
   */
  constructor(vocab: string[], readonly lowercase = true, readonly maxWordLength = 100, source = 'vocabulary') {
    this.vocab = [...vocab];
    this.vocab.forEach((p, i) => {
      if (this.#ids.has(p)) throw new Error(`${source}: duplicate vocabulary entry ${JSON.stringify(p)} (ids ${this.#ids.get(p)} and ${i})`);
      this.#ids.set(p, i);
    });
    const need = (t: string): number => {
      const id = this.#ids.get(t);
      if (id === undefined) throw new Error(`${source}: the vocabulary has no ${t} token`);
      return id;
    };
    this.padId = need('[PAD]');
    if (this.padId !== PAD) throw new Error(`${source}: [PAD] must be id 0 (kdistill masks id 0 as padding), it is ${this.padId}`);
    this.unkId = need('[UNK]');
    this.clsId = need('[CLS]');
    this.sepId = need('[SEP]');
    this.maskId = this.#ids.get('[MASK]') ?? null;
    this.#hf = new Tokenizer(this.toJSON(), {});
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Id of a token, or undefined. */
  id(token: string): number | undefined {
    return this.#ids.get(token);
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
    if (vocab.length >= o.vocabSize) return new WordPieceTokenizer(vocab.slice(0, o.vocabSize), true, maxLen, 'trained vocabulary');

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
    return new WordPieceTokenizer(vocab, true, maxLen, 'trained vocabulary');
  }

  /** Piece ids of a text, without special tokens. */
  tokenize(text: string): number[] {
    return this.#hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** [CLS] pieces… [SEP], truncated to maxLen and right-padded with [PAD] (id 0). */
  encode(text: string, maxLen: number): Int32Array {
    if (!Number.isInteger(maxLen) || maxLen < 2) throw new RangeError(`encode: maxLen must be an integer ≥ 2, got ${maxLen}`);
    const ids = this.tokenize(text).slice(0, maxLen - 2);
    const out = new Int32Array(maxLen); // zero-filled = [PAD]
    out[0] = this.clsId;
    out.set(ids, 1);
    out[ids.length + 1] = this.sepId;
    return out;
  }

  /** Text of ids: special tokens and padding dropped, '##' pieces joined to the previous one. */
  decode(ids: ArrayLike<number>): string {
    const skip = new Set([this.padId, this.clsId, this.sepId, ...(this.maskId === null ? [] : [this.maskId])]);
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (skip.has(id)) continue;
      const p = this.vocab[id];
      if (p === undefined) throw new RangeError(`decode: id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (p.startsWith('##')) s += p.slice(2);
      else s += (s ? ' ' : '') + p;
    }
    return s;
  }

  /**
   * Hugging Face's tokenizer.json: BertNormalizer, BertPreTokenizer, WordPiece, and the
   * [CLS] … [SEP] template. With maxLen, truncation to maxLen tokens (special tokens included), as
   * kdistill's encode() truncates.
   */
  hfJSON(maxLen?: number): HfTokenizerJSON {
    const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => this.#ids.has(t));
    const tok = (t: string): { id: string; type_id: 0 } => ({ id: t, type_id: 0 });
    return {
      version: '1.0',
      truncation: maxLen ? { direction: 'Right', max_length: maxLen, strategy: 'LongestFirst', stride: 0 } : null,
      padding: null,
      added_tokens: specials.map((t) => ({ id: this.#ids.get(t)!, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: normalizerConfig(this.lowercase),
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: tok('[CLS]') }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: tok('[SEP]') }],
        pair: [{ SpecialToken: tok('[CLS]') }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: tok('[SEP]') }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
        special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [this.#ids.get(t)!], tokens: [t] }])),
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: this.maxWordLength, vocab: Object.fromEntries(this.vocab.map((p, i) => [p, i])) },
    };
  }

  /** What JSON.stringify writes: hfJSON() without truncation. */
  toJSON(): HfTokenizerJSON {
    return this.hfJSON();
  }

  /** Hugging Face's tokenizer.json (a BERT WordPiece one) or kdistill's older format. */
  static fromJSON(j: unknown, source = 'tokenizer JSON'): WordPieceTokenizer {
    const o = j as Partial<LegacyTokenizerJSON> & Partial<Omit<HfTokenizerJSON, 'version'>>;
    if (o?.type === 'wordpiece' && Array.isArray(o.vocab)) return new WordPieceTokenizer(o.vocab, o.lowercase ?? true, o.maxWordLength ?? 100, source);
    const m = o?.model;
    if (!m || m.type !== 'WordPiece' || !m.vocab || typeof m.vocab !== 'object') {
      throw new Error(`${source}: 'model.type' must be 'WordPiece' (a BERT-family tokenizer.json), got ${JSON.stringify(m?.type)}`);
    }
    if (m.continuing_subword_prefix !== undefined && m.continuing_subword_prefix !== '##') throw new Error(`${source}: 'model.continuing_subword_prefix' must be '##', got ${JSON.stringify(m.continuing_subword_prefix)}`);
    if (m.unk_token !== undefined && m.unk_token !== '[UNK]') throw new Error(`${source}: 'model.unk_token' must be '[UNK]', got ${JSON.stringify(m.unk_token)}`);
    const n = o.normalizer, pre = o.pre_tokenizer;
    if (n?.type !== 'BertNormalizer') throw new Error(`${source}: 'normalizer.type' must be 'BertNormalizer', got ${JSON.stringify(n?.type)}`);
    if (pre?.type !== 'BertPreTokenizer') throw new Error(`${source}: 'pre_tokenizer.type' must be 'BertPreTokenizer', got ${JSON.stringify(pre?.type)}`);
    if (n.strip_accents !== null && n.strip_accents !== undefined && n.strip_accents !== n.lowercase) throw new Error(`${source}: 'normalizer.strip_accents' ${n.strip_accents} with lowercase ${n.lowercase} is not supported`);
    const vocab: string[] = [];
    for (const [p, id] of Object.entries(m.vocab)) {
      if (!Number.isInteger(id) || id < 0 || vocab[id] !== undefined) throw new Error(`${source}: 'model.vocab' entry ${JSON.stringify(p)} has id ${id}, not a fresh integer ≥ 0`);
      vocab[id] = p;
    }
    const gap = vocab.findIndex((p) => p === undefined);
    if (gap >= 0 || vocab.length !== Object.keys(m.vocab).length) throw new Error(`${source}: 'model.vocab' ids must run 0..${Object.keys(m.vocab).length - 1} without gaps (id ${gap < 0 ? vocab.length - 1 : gap})`);
    return new WordPieceTokenizer(vocab, n.lowercase ?? true, m.max_input_chars_per_word ?? 100, source);
  }

  save(path: string): void {
    atomicWrite(path, JSON.stringify(this.toJSON()));
  }

  /**
   * tokenizer.json (Hugging Face's or kdistill's older format), or a vocab.txt (one token per
   * line, as bert-base-uncased ships it), lower-casing unless a tokenizer_config.json beside it
   * says do_lower_case: false.
   */
  static load(path: string): WordPieceTokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`${path}: cannot read the tokenizer: ${(e as Error).message}`);
    }
    if (basename(path).endsWith('.txt')) {
      const cfg = join(dirname(path), 'tokenizer_config.json');
      let lowercase = true;
      if (existsSync(cfg)) {
        try {
          lowercase = (JSON.parse(readFileSync(cfg, 'utf8')) as { do_lower_case?: boolean }).do_lower_case ?? true;
        } catch (e) {
          throw new Error(`${cfg}: not valid JSON: ${(e as Error).message}`);
        }
      }
      return new WordPieceTokenizer(text.split(/\r?\n/).filter((l, i, a) => l !== '' || i < a.length - 1), lowercase, 100, path);
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
    }
    return WordPieceTokenizer.fromJSON(j, path);
  }
}
