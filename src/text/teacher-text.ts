// An ONNX text teacher (src/teachers/onnx.ts, inputs input_ids/attention_mask/token_type_ids as
// Optimum exports them) reads the raw text through its own tokenizer, whatever the student's
// tokenizer is: the student's batches hold the student's ids, so each row is mapped back to its
// text (RowTexts, recorded when the corpus was encoded; a row not recorded, e.g. an augmented one,
// is the student's ids decoded, which loses what the student's vocabulary cannot spell) and the
// text is encoded with the teacher's tokenizer up to the teacher's own length.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Tensor } from '../tensor/tensor.js';
import type { Dataset } from '../data/dataset.js';
import type { TokenFeed } from '../teachers/onnx.js';
import { WordPieceTokenizer } from './tokenizer.js';

/** Sequence length when neither the tokenizer nor config.json gives one (BERT's position table). */
const DEFAULT_TEACHER_LEN = 512;

/** The folder holding an ONNX model's config.json and tokenizer: its own, or the model folder above onnx/ (transformers.js's layout). */
export function onnxModelFolder(onnxFile: string): string {
  const dir = dirname(onnxFile);
  const up = dirname(dir);
  const has = (d: string): boolean => ['tokenizer.json', 'vocab.txt', 'config.json'].some((f) => existsSync(join(d, f)));
  return basename(dir) === 'onnx' && !has(dir) && has(up) ? up : dir;
}

/** The teacher's tokenizer file: tokenizer.json, else vocab.txt, in its model folder; null if neither. */
export function findTeacherTokenizer(onnxFile: string): string | null {
  const dir = onnxModelFolder(onnxFile);
  for (const f of ['tokenizer.json', 'vocab.txt']) if (existsSync(join(dir, f))) return join(dir, f);
  return null;
}

function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The longest input the teacher takes, in tokens with [CLS] and [SEP]: the smallest of the
 * tokenizer's truncation, tokenizer_config.json's model_max_length and config.json's
 * max_position_embeddings that its folder gives (512 when none).
 */
export function teacherMaxLength(tokenizerFile: string): number {
  const dir = dirname(tokenizerFile);
  const pos = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v >= 2 && v < 1e6 ? v : null);
  const tj = tokenizerFile.endsWith('.json') ? readJson(tokenizerFile) : null;
  const found = [
    pos((tj?.truncation as { max_length?: unknown } | null | undefined)?.max_length),
    pos(readJson(join(dir, 'tokenizer_config.json'))?.model_max_length),
    pos(readJson(join(dir, 'config.json'))?.max_position_embeddings),
  ].filter((v): v is number => v !== null);
  return found.length ? Math.min(...found) : DEFAULT_TEACHER_LEN;
}

/** config.json's id2label in id order beside an ONNX model, when it names every class. */
export function onnxClassNames(onnxFile: string): string[] | undefined {
  const id2label = readJson(join(onnxModelFolder(onnxFile), 'config.json'))?.id2label as Record<string, unknown> | undefined;
  if (!id2label || typeof id2label !== 'object') return undefined;
  const names = Array.from({ length: Object.keys(id2label).length }, (_, i) => id2label[String(i)]);
  return names.every((x): x is string => typeof x === 'string') ? names : undefined;
}

function rowKey(ids: ArrayLike<number>, start: number, len: number): string {
  let k = '';
  for (let i = start; i < start + len; i++) k += `${ids[i]},`;
  return k;
}

/** The raw texts of encoded rows, by the row's token ids (rows that encode alike keep the first text). */
export class RowTexts {
  readonly #texts = new Map<string, string>();
  /** Records `texts[i]` as the text of row i of `ds` (rows encoded from those texts, in order). */
  add(ds: Dataset, texts: readonly string[]): this {
    const L = ds.sampleShape[0]!;
    if (texts.length !== ds.size) throw new Error(`RowTexts: ${texts.length} texts for ${ds.size} rows of ${ds.name}`);
    texts.forEach((t, i) => {
      const k = rowKey(ds.x, i * L, L);
      if (!this.#texts.has(k)) this.#texts.set(k, t);
    });
    return this;
  }
  get size(): number {
    return this.#texts.size;
  }
  textOf(ids: ArrayLike<number>, start = 0, len = ids.length): string | undefined {
    return this.#texts.get(rowKey(ids, start, len));
  }
}

/** What the student's rows are: its tokenizer, and the texts of the corpus's rows when recorded. */
export interface StudentText {
  tokenizer: WordPieceTokenizer;
  texts?: RowTexts;
}

export interface TeacherTokens {
  /** The teacher's token rows for a batch of the student's rows ([batch, length] ids). */
  feed: (x: Tensor) => TokenFeed;
  tokenizer: WordPieceTokenizer;
  tokenizerFile: string;
  maxLen: number;
  /** sha256 of the tokenizer file and the length: the soft targets depend on both (cache key). */
  checksum: string;
  /** Rows fed so far whose text was not recorded (decoded from the student's ids). */
  decoded(): number;
}

/**
 * The feed of an ONNX text teacher with the tokenizer `tokenizerFile`: each student row's text,
 * encoded by the teacher's tokenizer ([CLS] … [SEP], truncated to `maxLen`), padded with 0 to the
 * batch's longest row; attention_mask 1 on real tokens, token_type_ids 0 (one segment). Encoded
 * rows are kept, so each text is tokenized once per run.
 */
export function teacherTokens(tokenizerFile: string, student: StudentText, maxLen = teacherMaxLength(tokenizerFile)): TeacherTokens {
  const tok = WordPieceTokenizer.load(tokenizerFile);
  const memo = new Map<string, Int32Array>();
  let decoded = 0;
  const feed = (x: Tensor): TokenFeed => {
    if (x.shape.length !== 2) throw new Error(`the ONNX text teacher takes the student's token ids [batch, length], got shape [${x.shape.join(', ')}]`);
    const [B, L] = x.shape as [number, number];
    const f = x.to('float32').contiguous();
    const ids = f.data<Float32Array>();
    f.dispose();
    const rows: Int32Array[] = [];
    for (let b = 0; b < B; b++) {
      const k = rowKey(ids, b * L, L);
      let row = memo.get(k);
      if (!row) {
        let text = student.texts?.textOf(ids, b * L, L);
        if (text === undefined) {
          text = student.tokenizer.decode(ids.subarray(b * L, (b + 1) * L));
          decoded++;
        }
        const enc = tok.encode(text, maxLen);
        let n = enc.length;
        while (n > 0 && enc[n - 1] === 0) n--;
        row = enc.slice(0, n);
        memo.set(k, row);
      }
      rows.push(row);
    }
    const length = Math.max(...rows.map((r) => r.length));
    const inputIds = new BigInt64Array(B * length), attentionMask = new BigInt64Array(B * length);
    rows.forEach((r, b) => r.forEach((id, j) => {
      inputIds[b * length + j] = BigInt(id);
      attentionMask[b * length + j] = 1n;
    }));
    return { batch: B, length, inputIds, attentionMask, tokenTypeIds: new BigInt64Array(B * length) };
  };
  const checksum = createHash('sha256').update(readFileSync(tokenizerFile)).update(`:${maxLen}`).digest('hex');
  return { feed, tokenizer: tok, tokenizerFile, maxLen, checksum, decoded: () => decoded };
}
