// Why `teacherCache: off` does not train bit-identically to the view cache in this experiment:
// the teacher's logits on one and the same input depend, in their last bits, on the batch the
// input is computed in. The view cache computes its views in batches of 256 in source order; a
// shuffled training loader hands the live teacher batches of 128 in another composition. This
// runs kdistill's teacher (the experiment's checkpoint, 1 thread) on the first 1,024 training
// images batched several ways and compares each way's logits with those of the build's batching
// (256, in order): how many rows are bit-identical, and the largest difference.
// Run after `npx tsc -p .`: node experiments/view-cache/batch_bits.mjs
import { checkpointTeacher } from '../../dist/src/teachers/sources.js';
import { loadFashionMnist } from '../../dist/src/data/fashion-mnist.js';
import { gatherRows } from '../../dist/src/data/batch.js';
import { tensor } from '../../dist/src/tensor/factories.js';
import { noGrad } from '../../dist/src/tensor/autograd.js';
import { tidy } from '../../dist/src/tensor/scope.js';
import { setNumThreads } from '../../dist/src/tensor/torch.js';

setNumThreads(1);
const N = 1024;
const teacher = checkpointTeacher(new URL('../../assets/fashion-mnist-teacher.safetensors', import.meta.url).pathname);
const data = loadFashionMnist({ split: 'train' });
const C = teacher.numClasses;

/** Logits [N, C] of rows 0..N−1, computed in batches of `bs` taken from `order`, scattered back to row order. */
function logits(order, bs) {
  const out = new Float32Array(N * C);
  for (let s = 0; s < N; s += bs) {
    const rows = order.subarray(s, Math.min(s + bs, N));
    const x = gatherRows(data, rows);
    const z = noGrad(() => tidy(() => teacher.logits(tensor(x, { shape: [rows.length, ...data.sampleShape] })).contiguous().data()));
    rows.forEach((r, k) => out.set(z.subarray(k * C, k * C + C), r * C));
  }
  return out;
}

const inOrder = Int32Array.from({ length: N }, (_, i) => i);
// A fixed permutation (a small LCG), standing in for a shuffled loader's order.
const shuffled = inOrder.slice();
let state = 12345;
for (let i = N - 1; i > 0; i--) {
  state = (state * 1103515245 + 12345) % 2 ** 31;
  const j = state % (i + 1);
  [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
}

const ref = logits(inOrder, 256);
console.log(`teacher logits on ${N} training images, each batching against the view cache's build (batches of 256, in order), 1 thread:`);
for (const [name, order, bs] of [['256, in order (again)', inOrder, 256], ['256, shuffled', shuffled, 256], ['128, in order', inOrder, 128], ['128, shuffled', shuffled, 128], ['1 (one image at a time)', inOrder, 1]]) {
  const z = logits(order, bs);
  let same = 0, max = 0;
  for (let r = 0; r < N; r++) {
    let rowSame = true;
    for (let c = 0; c < C; c++) {
      const d = Math.abs(z[r * C + c] - ref[r * C + c]);
      if (d !== 0) rowSame = false;
      max = Math.max(max, d);
    }
    if (rowSame) same++;
  }
  console.log(`  batches of ${name.padEnd(24)} rows bit-identical ${String(same).padStart(4)} of ${N}, largest |Δ logit| ${max.toExponential(2)}`);
}
