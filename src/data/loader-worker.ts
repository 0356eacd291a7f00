// The DataLoader's helper thread: builds batches (gather + augment) while the main thread trains.
// It reads the dataset from shared memory and transfers each finished batch back without a copy.
import { parentPort } from 'node:worker_threads';
import type { AugmentSpec } from './augment.js';
import { buildBatch, type BatchSource, type ViewReplay } from './batch.js';

interface Init { type: 'init'; src: BatchSource; augs: AugmentSpec[]; seed: number; views?: ViewReplay }
interface Req { type: 'batch'; id: number; epoch: number; batch: number; indices: Int32Array }

let init: Init | null = null;
const port = parentPort!;
port.on('message', (m: Init | Req) => {
  if (m.type === 'init') {
    init = m;
    return;
  }
  try {
    if (!init) throw new Error('loader worker: batch requested before init');
    const r = buildBatch(init.src, m.indices, init.augs, init.seed, m.epoch, m.batch, init.views);
    const transfer: ArrayBuffer[] = [r.x.buffer as ArrayBuffer];
    if (r.y) transfer.push(r.y.buffer as ArrayBuffer);
    port.postMessage({ id: m.id, x: r.x, y: r.y }, transfer);
  } catch (e) {
    port.postMessage({ id: m.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
