// A BERT-style text encoder (Devlin et al., NAACL 2019): token + position embeddings, post-LN
// encoder layers (multi-head self-attention with a padding mask, GELU feed-forward), a tanh pooler
// on [CLS] and a classification head (softmax logits, or per-label sigmoid logits for multi-label
// tasks), plus an optional masked-language-model head tied to the token embeddings.
//
// Input: token ids [B, L] (float32 as datasets store them, or int64), padding id 0. The padding
// mask is derived from the ids (id != 0), so a batch needs no second tensor and the trainer calls
// the model like any other: model.call(x).
//
// Feature names for forwardWithFeatures (what DistilBERT/TinyBERT read):
//   embeddings                [B, L, H]  embedding-layer output (after LayerNorm)
//   layer<i>                  [B, L, H]  hidden state after encoder layer i (0-based)
//   layer<i>.attention.scores [B, h, L, L] pre-softmax QKᵀ/√d, masked keys set to 0 (TinyBERT)
//   layer<i>.attention.probs  [B, h, L, L] attention probabilities (0 on padded keys)
//   pooler                    [B, H]     tanh(W·h_[CLS])
//   classifier                [B, C]     logits
import { Module } from '../module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../layers.js';
import { normal_, zeros_ } from '../init.js';
import { arange, tensor, zeros } from '../../tensor/factories.js';
import { gelu, linear } from '../../tensor/functional.js';
import { noGrad } from '../../tensor/autograd.js';
import { tidy } from '../../tensor/scope.js';
// No tidy() inside the forward passes below except in paddingMask: tidy would free the outputs
// that forwardWithFeatures captures (hidden states, attention maps); the caller's scope frees them.
import { Tensor } from '../../tensor/tensor.js';
import { ZooModel } from './common.js';

export type BertSpec = {
  arch: 'bert';
  vocabSize: number;
  maxLen: number;
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  numClasses: number;
  /** Per-label sigmoid logits (multi-label) instead of one softmax over classes. */
  multiLabel: boolean;
  /** Dropout on embeddings, attention probabilities and residual branches (BERT: 0.1). */
  dropout: number;
  /** Build the masked-language-model head (teachers pre-trained with MLM). */
  mlm: boolean;
  /**
   * Token-type (segment) embeddings, as Hugging Face's BERT has (type_vocab_size, 2 there); absent
   * or 0: none. Inputs are single segments, so every token has type 0 and its row is added.
   */
  typeVocabSize?: number;
  /** LayerNorm epsilon (BERT and Hugging Face's default: 1e-12). */
  layerNormEps?: number;
};

export const PAD_ID = 0;
// BERT's LayerNorm epsilon and weight init (truncated-normal 0.02 in the original; normal here).
export const LN_EPS = 1e-12;
const INIT_STD = 0.02;

function bertLinear(inF: number, outF: number): Linear {
  const l = new Linear(inF, outF);
  noGrad(() => {
    normal_(l.weight, 0, INIT_STD);
    zeros_(l.bias!);
  });
  return l;
}

/** Identity whose only job is to be captured by forwardWithFeatures (attention maps). */
export class Tap extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Boolean key mask [B, 1, 1, L]: true where the token is real (attend), false on padding. */
export function paddingMask(ids: Tensor): Tensor {
  return tidy(() => ids.ne(PAD_ID).unsqueeze(1).unsqueeze(1));
}

export class BertEmbeddings extends Module {
  readonly word: Embedding;
  readonly position: Embedding;
  /** Segment embeddings (typeVocabSize > 0), registered after the others so older models keep their parameter order. */
  readonly tokenType: Embedding | null;
  readonly norm: LayerNorm;
  readonly drop: Dropout;
  constructor(vocabSize: number, maxLen: number, hidden: number, dropout: number, o: { typeVocabSize?: number; eps?: number } = {}) {
    super();
    this.word = this.registerModule('word', new Embedding(vocabSize, hidden, { paddingIdx: PAD_ID }));
    this.position = this.registerModule('position', new Embedding(maxLen, hidden));
    noGrad(() => {
      normal_(this.word.weight, 0, INIT_STD);
      const row = this.word.weight.select(0, PAD_ID);
      row.zero_();
      row.dispose();
      normal_(this.position.weight, 0, INIT_STD);
    });
    this.norm = this.registerModule('norm', new LayerNorm(hidden, o.eps ?? LN_EPS));
    this.tokenType = o.typeVocabSize ? this.registerModule('tokenType', new Embedding(o.typeVocabSize, hidden)) : null;
    if (this.tokenType) noGrad(() => normal_(this.tokenType!.weight, 0, INIT_STD));
    this.drop = this.registerModule('drop', new Dropout(dropout));
  }
  forward(ids: Tensor): Tensor {
    return tidy(() => {
      const L = ids.shape[1]!;
      if (L > this.position.numEmbeddings) throw new RangeError(`BertEmbeddings: sequence length ${L} exceeds maxLen ${this.position.numEmbeddings}`);
      const pos = arange(L, undefined, 1, { dtype: 'int64' });
      let e = this.word.call(ids).add(this.position.call(pos));
      // Every token is in segment 0 (single-text inputs): its type embedding is row 0.
      if (this.tokenType) e = e.add(this.tokenType.weight.select(0, 0));
      return this.drop.call(this.norm.call(e));
    });
  }
}

/** Multi-head self-attention; its maps are exposed through the `scores` and `probs` taps. */
export class MultiHeadSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly output: Linear;
  readonly scores = this.registerModule('scores', new Tap());
  readonly probs = this.registerModule('probs', new Tap());
  readonly drop: Dropout;
  readonly headDim: number;
  constructor(readonly hidden: number, readonly heads: number, dropout: number) {
    super();
    if (hidden % heads !== 0) throw new RangeError(`MultiHeadSelfAttention: hidden ${hidden} is not divisible by heads ${heads}`);
    this.headDim = hidden / heads;
    this.query = this.registerModule('query', bertLinear(hidden, hidden));
    this.key = this.registerModule('key', bertLinear(hidden, hidden));
    this.value = this.registerModule('value', bertLinear(hidden, hidden));
    this.output = this.registerModule('output', bertLinear(hidden, hidden));
    this.drop = this.registerModule('drop', new Dropout(dropout));
  }
  /** x [B, L, H], mask bool [B, 1, 1, L] (true = attend) → [B, L, H]. */
  forward(x: Tensor, mask?: unknown): Tensor {
    const [B, L] = x.shape as [number, number, number];
    const split = (t: Tensor): Tensor => t.view([B, L, this.heads, this.headDim]).transpose(1, 2);
    const q = split(this.query.call(x)), k = split(this.key.call(x)), v = split(this.value.call(x));
    const raw = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(this.headDim));
    let probs: Tensor;
    if (mask instanceof Tensor) {
      const blocked = mask.logicalNot();
      // Padded keys: 0 in the exposed scores (what TinyBERT's loss compares), −∞ before softmax.
      this.scores.call(raw.maskedFill(blocked, 0));
      probs = raw.maskedFill(blocked, -Infinity).softmax(-1);
    } else {
      this.scores.call(raw);
      probs = raw.softmax(-1);
    }
    this.probs.call(probs);
    const ctx = this.drop.call(probs).matmul(v).transpose(1, 2).reshape([B, L, this.hidden]);
    return this.output.call(ctx);
  }
}

/** Post-LN encoder layer: h = LN(x + attn(x)), out = LN(h + W₂·gelu(W₁·h)). */
export class EncoderLayer extends Module {
  readonly attention: MultiHeadSelfAttention;
  readonly attnNorm: LayerNorm;
  readonly intermediate: Linear;
  readonly output: Linear;
  readonly outNorm: LayerNorm;
  readonly drop: Dropout;
  constructor(hidden: number, heads: number, ffn: number, dropout: number, eps = LN_EPS) {
    super();
    this.attention = this.registerModule('attention', new MultiHeadSelfAttention(hidden, heads, dropout));
    this.attnNorm = this.registerModule('attnNorm', new LayerNorm(hidden, eps));
    this.intermediate = this.registerModule('intermediate', bertLinear(hidden, ffn));
    this.output = this.registerModule('output', bertLinear(ffn, hidden));
    this.outNorm = this.registerModule('outNorm', new LayerNorm(hidden, eps));
    this.drop = this.registerModule('drop', new Dropout(dropout));
  }
  forward(x: Tensor, mask?: unknown): Tensor {
    const h = this.attnNorm.call(x.add(this.drop.call(this.attention.call(x, mask))));
    const f = this.output.call(gelu(this.intermediate.call(h)));
    return this.outNorm.call(h.add(this.drop.call(f)));
  }
}

/** tanh(W·h_[CLS]): BERT's sentence representation. */
export class Pooler extends Module {
  readonly dense: Linear;
  constructor(hidden: number) {
    super();
    this.dense = this.registerModule('dense', bertLinear(hidden, hidden));
  }
  forward(h: Tensor): Tensor {
    return tidy(() => {
      const cls = h.select(1, 0);
      return this.dense.call(cls).tanh();
    });
  }
}

/** MLM head: dense → GELU → LayerNorm → logits over the vocabulary with the tied token embeddings. */
export class MlmHead extends Module {
  readonly dense: Linear;
  readonly norm: LayerNorm;
  readonly bias: Tensor;
  constructor(hidden: number, vocabSize: number, private readonly tied: Embedding, eps = LN_EPS) {
    super();
    this.dense = this.registerModule('dense', bertLinear(hidden, hidden));
    this.norm = this.registerModule('norm', new LayerNorm(hidden, eps));
    this.bias = this.registerParameter('bias', zeros([vocabSize]));
  }
  forward(h: Tensor): Tensor {
    return tidy(() => linear(this.norm.call(gelu(this.dense.call(h))), this.tied.weight, this.bias));
  }
}

export class BertEncoder extends ZooModel {
  readonly spec: BertSpec;
  readonly featureNames: string[];
  readonly embeddingName = 'pooler';
  readonly headName = 'classifier';
  readonly inputShape: number[];
  readonly embeddings: BertEmbeddings;
  readonly layers: EncoderLayer[];
  readonly pooler: Pooler;
  readonly classifier: Linear;
  readonly mlmHead: MlmHead | null;
  readonly drop: Dropout;

  constructor(spec: BertSpec) {
    super();
    this.spec = { ...spec };
    this.inputShape = [spec.maxLen];
    const eps = spec.layerNormEps ?? LN_EPS;
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(spec.vocabSize, spec.maxLen, spec.hidden, spec.dropout, { ...(spec.typeVocabSize ? { typeVocabSize: spec.typeVocabSize } : {}), eps }));
    this.layers = [];
    for (let i = 0; i < spec.layers; i++) this.layers.push(this.registerModule(`layer${i}`, new EncoderLayer(spec.hidden, spec.heads, spec.ffn, spec.dropout, eps)));
    this.pooler = this.registerModule('pooler', new Pooler(spec.hidden));
    this.drop = this.registerModule('drop', new Dropout(spec.dropout));
    this.classifier = this.registerModule('classifier', bertLinear(spec.hidden, spec.numClasses));
    this.mlmHead = spec.mlm ? this.registerModule('mlm', new MlmHead(spec.hidden, spec.vocabSize, this.embeddings.word, eps)) : null;
    this.featureNames = ['embeddings', ...this.layers.map((_, i) => `layer${i}`)];
  }

  /** int64 ids from float32 dataset rows (exact up to 2²⁴). */
  static ids(x: Tensor): Tensor {
    if (x.ndim !== 2) throw new RangeError(`bert: input must be token ids [batch, length], got shape [${x.shape.join(', ')}]`);
    return x.dtype === 'int64' ? x : x.to('int64');
  }

  /** The last hidden state [B, L, H]. */
  encode(x: Tensor): Tensor {
    const ids = BertEncoder.ids(x);
    const mask = paddingMask(ids);
    let h = this.embeddings.call(ids);
    for (const l of this.layers) h = l.call(h, mask);
    return h;
  }

  forward(x: Tensor): Tensor {
    return this.classifier.call(this.drop.call(this.pooler.call(this.encode(x))));
  }

  /** Vocabulary logits [B, L, V] for masked-language-model pre-training. */
  mlmLogits(x: Tensor): Tensor {
    if (!this.mlmHead) throw new Error("bert: this model has no MLM head (build it with mlm: true)");
    const head = this.mlmHead;
    return tidy(() => head.call(this.encode(x)));
  }

  /** Trainable scalars without the MLM head (what the classifier needs at inference). */
  override numInferenceParameters(): number {
    return this.namedParameters().filter(([n]) => !n.startsWith('mlm.')).reduce((a, [, t]) => a + t.numel(), 0);
  }
}

/**
 * DistilBERT's student initialisation: the student's embeddings, pooler and classifier come from
 * the teacher, and student layer i from teacher layer `layers[i]` (default every other layer:
 * 0, 2, 4, …, "taking one layer out of two", Sanh et al. 2019). When the student is narrower,
 * each tensor takes the teacher's leading slice along every smaller dimension — per head for the
 * query/key/value outputs and the attention-output inputs, so every student head starts from
 * part of one teacher head (weight selection, Xu et al., "Initializing Models with Larger
 * Ones", ICLR 2024). Returns the copied tensor names.
 */
export function initStudentFromTeacher(student: BertEncoder, teacher: BertEncoder, layers?: number[]): string[] {
  const S = student.spec, T = teacher.spec;
  const map = layers ?? Array.from({ length: S.layers }, (_, i) => 2 * i);
  if (map.length !== S.layers || map.some((l) => !Number.isInteger(l) || l < 0 || l >= T.layers)) {
    throw new RangeError(`initStudentFromTeacher: need ${S.layers} teacher layer indices in [0, ${T.layers - 1}], got ${JSON.stringify(map)}`);
  }
  if (S.vocabSize !== T.vocabSize || S.numClasses !== T.numClasses) throw new RangeError('initStudentFromTeacher: student and teacher must share the vocabulary and the classes');
  if (S.hidden > T.hidden || S.ffn > T.ffn || S.maxLen > T.maxLen) throw new RangeError('initStudentFromTeacher: the student cannot be wider or longer than the teacher');
  const perHead = S.heads === T.heads && S.hidden !== T.hidden;
  const headIndex = (): Tensor => {
    const ds = S.hidden / S.heads, dt = T.hidden / T.heads, idx: number[] = [];
    for (let h = 0; h < S.heads; h++) for (let j = 0; j < ds; j++) idx.push(h * dt + j);
    return tensor(BigInt64Array.from(idx.map(BigInt)), { shape: [idx.length] });
  };
  const tState = teacher.stateDict();
  const copied: string[] = [];
  noGrad(() => {
    for (const [name, dst] of student.stateDict()) {
      if (name.startsWith('mlm.') && !T.mlm) continue;
      const m = /^layer(\d+)\.(.*)$/.exec(name);
      const src = tState.get(m ? `layer${map[Number(m[1])]}.${m[2]}` : name);
      if (!src) continue;
      tidy(() => {
        let t = src;
        const qkv = /attention\.(query|key|value)\.(weight|bias)$/.test(name), attnOut = /attention\.output\.weight$/.test(name);
        for (let d = 0; d < dst.ndim; d++) {
          if (t.shape[d] === dst.shape[d]) continue;
          if (perHead && ((qkv && d === 0) || (attnOut && d === 1))) t = t.indexSelect(d, headIndex());
          else t = t.narrow(d, 0, dst.shape[d]!);
        }
        dst.copy_(t);
      });
      copied.push(name);
    }
  });
  return copied;
}
