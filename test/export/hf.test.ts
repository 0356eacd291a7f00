// `kdistill export --format hf` read back by transformers.js itself, offline: AutoTokenizer gives
// kdistill's token ids, and pipeline('text-classification') the same top label and score (within
// 1e-4) as kdistill's model on kdistill's padded ids, for a single-label student with token-type
// embeddings and a multi-label one without. The pipeline feeds unpadded ids of each text's own
// length through attention_mask/token_type_ids, so this also checks the dynamic-length graph
// against kdistill's fixed-length, id-0-masked forward. 1e-4: float32 softmax/sigmoid scores of
// a 2-layer model differ by ~1e-7 between libtorch and onnxruntime; 1e-4 still catches a wrong
// mask or position (~1e-2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import { torch } from '../../src/index.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { createModel } from '../../src/nn/zoo/index.js';
import type { BertEncoder } from '../../src/nn/zoo/transformer.js';
import { saveModel } from '../../src/nn/safetensors.js';
import { WordPieceTokenizer } from '../../src/text/tokenizer.js';
import { exportHf } from '../../src/export/hf.js';

const TEXTS = [
  'Free money now, click here!', 'Can you review my patch before Friday?', 'Meeting moved to 3pm — café on the corner.',
  'Unbelievable offer: win a prize today', 'the build failed again on the arm64 runner, see the log',
  // Longer than maxLen: truncated (differently by transformers.js, see below).
  'a long message that goes on and on about the tokenizer and the model and the export until it is cut off somewhere, much later than the others; it repeats: the tokenizer, the model, the export, the pipeline, the scores, the labels and the ids',
];
const MAX_LEN = 32;

/** A run-like folder: model.safetensors, tokenizer.json and result.json with the class names. */
function fakeRun(root: string, name: string, spec: Record<string, unknown>, classNames: string[]): { dir: string; model: BertEncoder; tok: WordPieceTokenizer } {
  const dir = join(root, name);
  const tok = WordPieceTokenizer.train(TEXTS.concat(TEXTS.map((t) => t.toUpperCase())), { vocabSize: 300, minFrequency: 1, alphabetMinFrequency: 1 });
  const model = createModel({ arch: 'bert', vocabSize: tok.vocabSize, maxLen: MAX_LEN, layers: 2, hidden: 16, heads: 2, ffn: 32, numClasses: classNames.length, dropout: 0, ...spec }) as BertEncoder;
  // Larger weights than BERT's 0.02 init so that scores spread and a wrong mask shows.
  noGrad(() => { for (const p of model.parameters()) if (p.ndim === 2) p.mul_(20); });
  model.eval();
  mkdirSync(dir, { recursive: true });
  saveModel(join(dir, 'model.safetensors'), model);
  tok.save(join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'result.json'), JSON.stringify({ classNames }));
  return { dir, model, tok };
}
/** kdistill's scores: softmax (or sigmoid per label) of the logits on kdistill's padded ids. */
function kdistillTop(model: BertEncoder, tok: WordPieceTokenizer, text: string): { label: number; score: number } {
  const ids = tok.encode(text, MAX_LEN);
  const logits = noGrad(() => torch.tidy(() => model.call(torch.tensor(BigInt64Array.from([...ids].map(BigInt)), { shape: [1, MAX_LEN] })).data<Float32Array>()));
  const scores = model.spec.multiLabel ? [...logits].map((z) => 1 / (1 + Math.exp(-z))) : ((): number[] => {
    const m = Math.max(...logits), e = [...logits].map((z) => Math.exp(z - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  })();
  const label = scores.indexOf(Math.max(...scores));
  return { label, score: scores[label]! };
}

test('transformers.js loads the exported folder offline: same token ids, same top labels and scores as kdistill', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kd-hfexp-'));
  env.allowRemoteModels = false;
  env.localModelPath = root + '/';
  const runs = [
    { name: 'single', spec: { typeVocabSize: 2 }, classes: ['ham', 'spam', 'other'] },
    { name: 'multi', spec: { multiLabel: true }, classes: ['devel', 'net', 'games', 'x11'] },
  ];
  try {
    for (const r of runs) {
      const { dir, model, tok } = fakeRun(root, `${r.name}-run`, r.spec, r.classes);
      try {
        const out = join(root, r.name);
        const res = await exportHf(dir, { out });
        assert.deepEqual(res.labels, r.classes);
        const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model_type: string; id2label: Record<string, string>; label2id: Record<string, number>; problem_type: string };
        assert.equal(cfg.model_type, 'bert');
        assert.equal(cfg.id2label['1'], r.classes[1]);
        assert.equal(cfg.label2id[r.classes[2]!], 2);
        assert.equal(cfg.problem_type, r.spec.multiLabel ? 'multi_label_classification' : 'single_label_classification');

        const hfTok = await AutoTokenizer.from_pretrained(r.name);
        const classify = await pipeline('text-classification', r.name, { dtype: 'fp32' });
        let compared = 0, truncated = 0;
        try {
          for (const text of TEXTS) {
            const ours = [...tok.encode(text, MAX_LEN)].filter((id, i, a) => id !== 0 || a.slice(i).some((v) => v !== 0));
            const theirs = [...(hfTok(text, { truncation: true }) as unknown as { input_ids: { data: BigInt64Array } }).input_ids.data].map(Number);
            if (ours.length === MAX_LEN) {
              // transformers.js truncates after adding [CLS]/[SEP], so its last id is a piece where
              // kdistill (and Hugging Face's Python tokenizers) keep [SEP]: the same ids before it.
              assert.deepEqual(theirs.slice(0, -1), ours.slice(0, -1), `truncated token ids of ${JSON.stringify(text)}`);
              assert.notEqual(theirs.at(-1), tok.sepId);
              truncated++;
              continue;
            }
            assert.deepEqual(theirs, ours, `token ids of ${JSON.stringify(text)}`);
            const want = kdistillTop(model, tok, text);
            const got = (await classify(text)) as { label: string; score: number }[];
            assert.equal(got[0]!.label, r.classes[want.label], `${r.name}: top label of ${JSON.stringify(text)}`);
            assert.ok(Math.abs(got[0]!.score - want.score) < 1e-4, `${r.name}: score ${got[0]!.score} vs kdistill ${want.score} for ${JSON.stringify(text)}`);
            compared++;
          }
          assert.equal(truncated, 1, 'the long text is truncated');
          assert.ok(compared >= 3, `${r.name}: only ${compared} texts fit in ${MAX_LEN} tokens`);
        } finally {
          await classify.dispose();
        }
      } finally {
        model.dispose();
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('export --format hf refuses image students and runs without a tokenizer, naming the fix', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kd-hfexp-'));
  try {
    const cnn = createModel({ arch: 'mlp', inputShape: [4], hidden: [3], numClasses: 2 });
    saveModel(join(root, 'model.safetensors'), cnn);
    cnn.dispose();
    await assert.rejects(exportHf(root), /is a mlp model; the Hugging Face layout is written for text classifiers.*--format onnx/);
    const bert = createModel({ arch: 'bert', vocabSize: 10, maxLen: 8, layers: 1, hidden: 8, heads: 2, ffn: 8, numClasses: 2 });
    saveModel(join(root, 'model.safetensors'), bert);
    bert.dispose();
    await assert.rejects(exportHf(root), /has no tokenizer\.json: the token ids mean nothing without it/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
