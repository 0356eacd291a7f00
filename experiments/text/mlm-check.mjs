// Is a text teacher's masked-LM head usable for TinyBERT's augmentation after the teacher was
// fine-tuned on labels, or a separate MLM model (data.text.augment.model)? On the validation split
// it masks 15 % of the word pieces (always [MASK], fixed seed) and scores the model's MLM head
// against the unigram frequencies of the training split: cross-entropy, top-1 accuracy, and how
// often the masked piece is among the top 15 (the paper's K). Then shows the candidates of one example, as data.text.augment would draw them.
//   node experiments/text/mlm-check.mjs runs/text/spam-teacher/model.safetensors experiments/text/spam-teacher.yaml
//   node experiments/text/mlm-check.mjs runs/text/spam-mlm/model.safetensors experiments/text/spam-mlm.yaml
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadModel, loadExperiment, torch } from '../../dist/src/index.js';
import { prepareTextData } from '../../dist/src/text/prepare.js';
import { mlmCandidates, wordSpans, isReplaceable } from '../../dist/src/text/augment.js';
import { Rng } from '../../dist/src/data/rng.js';

const [modelFile, teacherYaml] = process.argv.slice(2);
if (!modelFile || !teacherYaml) throw new Error('usage: mlm-check.mjs <teacher model.safetensors> <teacher experiment.yaml>');
const e = loadExperiment(teacherYaml);
const { model } = loadModel(modelFile);
if (!model.mlmHead) throw new Error(`${modelFile}: no MLM head`);
const data = prepareTextData(e.data.dataset, e.data.text, { runDir: dirname(modelFile) });
const vocab = data.tokenizer.vocab, V = vocab.length, L = data.val.sampleShape[0];
const SPECIAL = 5, MASK = 4;

// Unigram frequencies of the training split's pieces (add-one smoothed).
const counts = new Float64Array(V).fill(1);
for (const id of data.train.x) if (id >= SPECIAL) counts[id]++;
const total = counts.reduce((a, b) => a + b, 0);
const byFreq = Array.from(counts.keys()).sort((a, b) => counts[b] - counts[a]);
const top15Unigram = new Set(byFreq.slice(0, 15));

const rng = new Rng(1, 0x3c4);
let n = 0, ceModel = 0, ceUni = 0, top1Model = 0, top1Uni = 0, top15Model = 0, top15Uni = 0;
model.eval();
for (let s = 0; s < data.val.size; s += 64) {
  const B = Math.min(64, data.val.size - s);
  const ids = Float32Array.from(data.val.x.subarray(s * L, (s + B) * L));
  const targets = [];
  for (let j = 0; j < ids.length; j++) if (ids[j] >= SPECIAL && rng.nextDouble() < 0.15) { targets.push([j, ids[j]]); ids[j] = MASK; }
  if (!targets.length) continue;
  const logits = torch.tidy(() => torch.noGrad(() => model.mlmLogits(torch.tensor(ids, { shape: [B, L] })).logSoftmax(-1).data()));
  for (const [j, t] of targets) {
    const row = logits.subarray(j * V, (j + 1) * V);
    ceModel -= row[t];
    ceUni -= Math.log(counts[t] / total);
    let rank = 0;
    for (let v = 0; v < V; v++) if (row[v] > row[t]) rank++;
    if (rank === 0) top1Model++;
    if (rank < 15) top15Model++;
    if (byFreq[0] === t) top1Uni++;
    if (top15Unigram.has(t)) top15Uni++;
    n++;
  }
}
const pct = (x) => `${(100 * x / n).toFixed(1)} %`;
console.log(`${modelFile}: ${n} masked pieces of the validation split (${data.val.size} texts)`);
console.log(`  MLM head of the model: cross-entropy ${(ceModel / n).toFixed(3)} nats, top-1 ${pct(top1Model)}, masked piece in the top 15 ${pct(top15Model)}`);
console.log(`  unigram frequency: cross-entropy ${(ceUni / n).toFixed(3)} nats, top-1 ${pct(top1Uni)}, masked piece in the top 15 ${pct(top15Uni)}`);

// One training example's candidates, as data.text.augment computes them.
const row = data.train.x.subarray(0, L);
const isWord = (id) => id >= SPECIAL && !vocab[id].startsWith('##');
const show = [];
for (const w of wordSpans(row, vocab)) {
  const word = vocab[row[w.start]];
  if (w.pieces !== 1 || !isReplaceable(word) || show.length >= 6) continue;
  const masked = Float32Array.from(row);
  masked[w.start] = MASK;
  const lg = torch.tidy(() => torch.noGrad(() => model.mlmLogits(torch.tensor(masked, { shape: [1, L] })).data())).subarray(w.start * V, (w.start + 1) * V);
  show.push(`  ${word} -> ${mlmCandidates(lg, 15, isWord, row[w.start]).map((id) => vocab[id]).join(' ')}`);
}
console.log(`example: ${data.tokenizer.decode(row)}`);
console.log(show.join('\n'));
