// Text as datasets: token ids padded to a fixed length, stored as float32 rows (exact for ids
// below 2^24) so the ordinary Dataset/DataLoader/trainer path carries them; the encoder derives
// the attention mask from id != [PAD]. Multi-label data carries multi-hot label rows and is
// batched by MultiLabelBatches (y = float [B, C]), a trainer BatchSource.
import { tensor } from '../tensor/factories.js';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/dataset.js';
import type { BatchSource, TrainBatch } from '../data/source.js';
import { CLS, MASK, PAD, SEP, SPECIAL_TOKENS, type WordPieceTokenizer } from './tokenizer.js';

/** Encodes texts to a Dataset of [maxLen] id rows with single-label classes (or null labels). */
export function textDataset(tok: WordPieceTokenizer, texts: string[], labels: ArrayLike<number> | null, o: {
  maxLen: number; numClasses: number; name: string; classNames?: string[];
}): Dataset {
  if (tok.vocabSize > 1 << 24) throw new RangeError('textDataset: vocabularies above 2^24 ids do not fit float32 exactly');
  const x = new Float32Array(texts.length * o.maxLen);
  texts.forEach((t, i) => x.set(tok.encode(t, o.maxLen), i * o.maxLen));
  return {
    name: o.name, sampleShape: [o.maxLen], x, size: texts.length, numClasses: o.numClasses,
    y: labels ? Int32Array.from(labels as ArrayLike<number>) : null,
    ...(o.classNames ? { classNames: o.classNames } : {}),
  };
}

/** A dataset whose targets are multi-hot rows: `targets` [size, numClasses], 0/1. */
export interface MultiLabelDataset extends Dataset {
  readonly targets: Float32Array;
  readonly labelNames: string[];
}

export function multiLabelDataset(tok: WordPieceTokenizer, texts: string[], labels: number[][], o: {
  maxLen: number; labelNames: string[]; name: string;
}): MultiLabelDataset {
  const C = o.labelNames.length;
  const base = textDataset(tok, texts, null, { maxLen: o.maxLen, numClasses: C, name: o.name });
  const targets = new Float32Array(texts.length * C);
  labels.forEach((ls, i) => { for (const l of ls) targets[i * C + l] = 1; });
  return { ...base, targets, labelNames: o.labelNames };
}

/** Rows of a multi-label dataset (a split or subsample). */
export function multiLabelSubset(ds: MultiLabelDataset, idx: ArrayLike<number>, name: string): MultiLabelDataset {
  const L = ds.sampleShape[0]!, C = ds.numClasses, n = idx.length;
  const x = new Float32Array(n * L), targets = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    const j = idx[i]!;
    x.set(ds.x.subarray(j * L, (j + 1) * L), i * L);
    targets.set(ds.targets.subarray(j * C, (j + 1) * C), i * C);
  }
  return { name, sampleShape: [L], x, y: null, size: n, numClasses: C, targets, labelNames: ds.labelNames };
}

/** Seeded, reshuffled-per-epoch batches of a multi-label dataset: x [B, L] ids, y float [B, C]. */
export class MultiLabelBatches implements BatchSource {
  constructor(readonly data: MultiLabelDataset, readonly batchSize: number, readonly seed = 0) {}
  get batchesPerEpoch(): number {
    return Math.ceil(this.data.size / this.batchSize);
  }
  get datasetSize(): number {
    return this.data.size;
  }
  *batches(epoch: number, fromBatch: number): Iterable<TrainBatch> {
    const perm = new Rng(this.seed, 0x7e47, epoch).permutation(this.data.size);
    const L = this.data.sampleShape[0]!, C = this.data.numClasses;
    for (let b = fromBatch; b < this.batchesPerEpoch; b++) {
      const idx = perm.subarray(b * this.batchSize, Math.min(this.data.size, (b + 1) * this.batchSize));
      const x = new Float32Array(idx.length * L), y = new Float32Array(idx.length * C);
      idx.forEach((j, i) => {
        x.set(this.data.x.subarray(j * L, (j + 1) * L), i * L);
        y.set(this.data.targets.subarray(j * C, (j + 1) * C), i * C);
      });
      yield { x: tensor(x, { shape: [idx.length, L] }), y: tensor(y, { shape: [idx.length, C] }), indices: Int32Array.from(idx) };
    }
  }
}

/**
 * BERT's masked-language-model corruption of a batch of ids (Devlin et al. 2019): each real,
 * non-special token is chosen with probability `prob`; chosen tokens become [MASK] 80% of the
 * time, a random token 10%, unchanged 10%. Returns the corrupted ids and the targets (the
 * original id where chosen, −100 = ignored elsewhere).
 */
export function mlmMask(ids: ArrayLike<number>, vocabSize: number, rng: Rng, prob = 0.15): { input: BigInt64Array; target: BigInt64Array } {
  const input = new BigInt64Array(ids.length), target = new BigInt64Array(ids.length).fill(-100n);
  const special = SPECIAL_TOKENS.length;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    input[i] = BigInt(id);
    if (id === PAD || id === CLS || id === SEP || rng.nextDouble() >= prob) continue;
    target[i] = BigInt(id);
    const r = rng.nextDouble();
    if (r < 0.8) input[i] = BigInt(MASK);
    else if (r < 0.9) input[i] = BigInt(special + rng.nextInt(vocabSize - special));
  }
  return { input, target };
}
