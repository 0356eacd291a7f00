// Bad files: every reader is fed thousands of seeded mutations of a valid file (truncations, bit
// flips, overwritten and random bytes, inserted chunks, oversized size claims). Each input must
// either load or throw an Error whose message names the file: no crash, no hang, no huge
// allocation from a lying header (the process RSS is watched throughout).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { encodeIdx, readIdx } from '../../src/data/idx.js';
import { readCsv } from '../../src/data/csv.js';
import { encodeNpy, readNpy } from '../../src/data/npy.js';
import { loadExperiment } from '../../src/config/experiment.js';
import { loadSafetensors, loadModel, saveModel, serializeSafetensors } from '../../src/nn/safetensors.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { tensor } from '../../src/tensor/factories.js';
import { makeOptimizer } from '../../src/optim/optimizer.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { JsonlLog, readLog } from '../../src/train/log.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { TeacherOutputCache } from '../../src/teachers/cache.js';
import type { Dataset } from '../../src/data/dataset.js';
import { prng } from './helpers.js';

setNumThreads(1);
const dir = mkdtempSync(join(tmpdir(), 'kd-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const PER_READER = Number(process.env.KDISTILL_FUZZ_N ?? 400);
const counts: Record<string, number> = {};
const rssStart = process.memoryUsage().rss;
let rssPeak = rssStart;
let slowest = 0;

type Mutator = (b: Uint8Array, r: () => number) => Uint8Array;
const int = (r: () => number, n: number): number => Math.floor(r() * n);
const MUTATORS: Mutator[] = [
  // truncation anywhere, including inside headers
  (b, r) => b.slice(0, int(r, b.length)),
  // 1–8 bit flips, biased to the first 256 bytes where headers live
  (b, r) => {
    const c = b.slice();
    for (let k = 1 + int(r, 8); k > 0; k--) {
      const i = r() < 0.6 ? int(r, Math.min(256, c.length)) : int(r, c.length);
      c[i]! ^= 1 << int(r, 8);
    }
    return c;
  },
  // a run of random bytes overwritten
  (b, r) => {
    const c = b.slice();
    const at = int(r, c.length), n = 1 + int(r, 16);
    for (let i = at; i < Math.min(c.length, at + n); i++) c[i] = int(r, 256);
    return c;
  },
  // random bytes of random length
  (_b, r) => Uint8Array.from({ length: int(r, 2048) }, () => int(r, 256)),
  // a chunk duplicated (or inserted) somewhere
  (b, r) => {
    const at = int(r, b.length), n = 1 + int(r, 64);
    const c = new Uint8Array(b.length + n);
    c.set(b.subarray(0, at));
    c.set(b.subarray(at, at + n).length === n ? b.subarray(at, at + n) : Uint8Array.from({ length: n }, () => int(r, 256)), at);
    c.set(b.subarray(at), at + n);
    return c;
  },
  // bytes appended
  (b, r) => { const c = new Uint8Array(b.length + 1 + int(r, 100)); c.set(b); for (let i = b.length; i < c.length; i++) c[i] = int(r, 256); return c; },
  // an 8/4-byte field set to a huge value (size claims)
  (b, r) => {
    const c = b.slice();
    const at = int(r, Math.min(64, Math.max(1, c.length - 8)));
    for (let i = at; i < Math.min(c.length, at + (r() < 0.5 ? 4 : 8)); i++) c[i] = 0xff;
    return c;
  },
];

/**
 * Feeds `n` mutations of `valid` (plus the `extra` hand-made lying inputs) to `read`, written to
 * `name` in the fuzz folder. `read` may succeed; if it throws, the message must name the file.
 */
function fuzz(reader: string, name: string, valid: Uint8Array, read: (file: string) => unknown, seed: number, extra: Uint8Array[] = [], n = PER_READER): void {
  const r = prng(seed);
  const file = join(dir, name);
  const inputs = extra.length;
  for (let k = 0; k < n + inputs; k++) {
    const input = k < inputs ? extra[k]! : MUTATORS[k % MUTATORS.length]!(valid, r);
    writeFileSync(file, input);
    const t0 = performance.now();
    try {
      read(file);
    } catch (e) {
      assert.ok(e instanceof Error, `${reader} input ${k}: threw a non-Error ${String(e)}`);
      assert.ok(e.message.includes(file), `${reader} input ${k}: the message does not name the file: ${e.message}`);
      assert.doesNotMatch(e.message, /undefined|\[object Object\]/, `${reader} input ${k}: unhelpful message: ${e.message}`);
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < 5000, `${reader} input ${k} took ${ms.toFixed(0)} ms (hang?)`);
    if (k % 25 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  counts[reader] = (counts[reader] ?? 0) + n + inputs;
}

const u32be = (v: number): number[] => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];

test('IDX reader (raw and gzip)', () => {
  const img = encodeIdx({ dtype: 'uint8', shape: [12, 28, 28], data: Uint8Array.from({ length: 12 * 784 }, (_, i) => (i * 7) & 255) });
  const f32 = encodeIdx({ dtype: 'float32', shape: [30, 4], data: Float32Array.from({ length: 120 }, (_, i) => i / 3) });
  const lying = [
    new Uint8Array([0, 0, 8, 3, ...u32be(0xffffffff), ...u32be(0xffffffff), ...u32be(0xffffffff)]),
    new Uint8Array([0, 0, 8, 1, ...u32be(2 ** 31), 1, 2, 3]),
    new Uint8Array([0, 0, 0x0e, 255]),
    gzipSync(new Uint8Array([0, 0, 8, 3, ...u32be(60000), ...u32be(4096), ...u32be(4096), 0])),
  ];
  fuzz('idx', 'images.idx', img, (f) => readIdx(f), 1, lying);
  fuzz('idx', 'floats.idx', f32, (f) => readIdx(f), 2, [], PER_READER / 2);
  fuzz('idx.gz', 'images.idx.gz', gzipSync(img), (f) => readIdx(f), 3, lying.map((b) => gzipSync(b)));
});

test('CSV reader', () => {
  const rows = ['a,b,c,"d, quoted",label'];
  for (let i = 0; i < 40; i++) rows.push(`${i},${i / 7},${-i},"${i}""x",${['cat', 'dog', 'emu'][i % 3]}`);
  const csv = Buffer.from(rows.join('\r\n') + '\r\n');
  const num = Buffer.from(Array.from({ length: 40 }, (_, i) => `${i * 0.5},${i % 3}`).join('\n'));
  const lying = [Buffer.from('x,label\n1,999999999\n2,0\n'), Buffer.from('"unterminated,1\n'), Buffer.from('\ufeff'), Buffer.from('a,b\n' + '1,'.repeat(5000) + '\n')];
  fuzz('csv', 'table.csv', csv, (f) => readCsv(f, { label: 'label' }), 4, lying);
  fuzz('csv', 'numbers.csv', num, (f) => readCsv(f), 5, [], PER_READER / 2);
  fuzz('csv.gz', 'table.csv.gz', gzipSync(csv), (f) => readCsv(f, { label: 'label' }), 6, [gzipSync(Buffer.alloc(1 << 20, 0x31))], PER_READER / 2);
});

test('NPY reader', () => {
  const npy = encodeNpy({ data: Float32Array.from({ length: 60 }, (_, i) => i), shape: [5, 12] });
  const hdr = (h: string): Uint8Array => {
    const pad = 16 - ((10 + h.length + 1) % 16);
    const s = h + ' '.repeat(pad % 16) + '\n';
    return new Uint8Array([0x93, ...Buffer.from('NUMPY'), 1, 0, s.length & 255, s.length >> 8, ...Buffer.from(s), 0, 0, 0, 0]);
  };
  const lying = [
    hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"),
    hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
    hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (" + '2, '.repeat(200) + '), }'),
    new Uint8Array([0x93, ...Buffer.from('NUMPY'), 2, 0, 255, 255, 255, 127]),
  ];
  fuzz('npy', 'array.npy', npy, (f) => readNpy(f), 7, lying);
  fuzz('npy', 'labels.npy', encodeNpy({ data: Int32Array.from({ length: 20 }, (_, i) => i % 4) }), (f) => readNpy(f), 8, [], PER_READER / 2);
});

test('JSONL log reader (and resume truncation)', () => {
  const lines = [];
  for (let s = 0; s < 30; s++) lines.push(JSON.stringify({ type: 'step', epoch: 0, batch: s, step: s, lr: 0.1, loss: 1 / (s + 1), ce: 0.5 }));
  lines.push(JSON.stringify({ type: 'epoch', epoch: 0, step: 30, lr: 0.1, train: { loss: 0.3 }, seconds: 1.5 }));
  const log = Buffer.from(lines.join('\n') + '\n');
  fuzz('jsonl', 'log.jsonl', log, (f) => readLog(f), 9, [Buffer.from('{"type":"step","step":1}\n{"typ'), Buffer.from('[1,2]\n{}\n')]);
  fuzz('jsonl', 'log.jsonl', log, (f) => new JsonlLog(f).truncateAfter(10, 0), 10, [], PER_READER / 2);
});

test('YAML experiment loader', () => {
  const yaml = Buffer.from([
    'name: fuzz', 'seed: 3', 'threads: 1',
    'data: {dataset: fashion-mnist, batchSize: 64, subset: 500, augment: {crop: 2, flip: true}}',
    'teacher: {checkpoint: runs/teacher/model.safetensors}',
    'student: {arch: mlp, hidden: [64, 32]}',
    'method: {name: kd, params: {temperature: 4, alpha: 0.9}}',
    'optimizer: {name: sgd, lr: 0.1, momentum: 0.9}',
    'schedule: {name: cosine}', 'epochs: 5', 'checkpointEvery: 100', 'onNonFinite: skip', '',
  ].join('\n'));
  const lying = [
    Buffer.from('a: &a [*a, *a]\n'),
    Buffer.from('a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n'),
    Buffer.from('epochs: 1e999\nstudent: {arch: mlp}\n'),
    Buffer.from('[' .repeat(5000)),
    Buffer.from('!!binary AAAA\n'),
    Buffer.from('epochs: !!js/function "x"\n'),
  ];
  fuzz('yaml', 'exp.yaml', yaml, (f) => loadExperiment(f), 11, lying);
});

test('safetensors reader and model loader', () => {
  manualSeed(2);
  const model = createModel({ arch: 'mlp', hidden: [8], numClasses: 3, inputShape: [6] });
  const file = join(dir, 'valid-model.safetensors');
  saveModel(file, model);
  const valid = readFileSync(file);
  const header = (h: object, data = 0): Uint8Array => {
    const j = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([len, j, Buffer.alloc(data)]);
  };
  const hugeLen = Buffer.alloc(16);
  hugeLen.writeBigUInt64LE(2n ** 63n);
  const lying = [
    hugeLen,
    header({ w: { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 4] } }, 4),
    header({ w: { dtype: 'F32', shape: [2 ** 40], data_offsets: [0, 2 ** 42] } }, 8),
    header({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, v: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4),
    header({ __metadata__: { model: '{"arch":"mlp","hidden":[100000000],"numClasses":3,"inputShape":[100000000]}' } }),
    header({ __metadata__: { model: '{"arch":"cnn","numClasses":-5}' } }),
  ];
  fuzz('safetensors', 'model.safetensors', valid, (f) => { for (const t of loadSafetensors(f).tensors.values()) t.dispose(); }, 12, lying);
  fuzz('safetensors', 'model.safetensors', valid, (f) => loadModel(f), 13, lying, PER_READER / 2);
  const t = tensor(new Float32Array([1, 2, 3]));
  fuzz('safetensors', 'bf16.safetensors', serializeSafetensors(new Map([['t', t]]), { k: 'v' }), (f) => { for (const x of loadSafetensors(f).tensors.values()) x.dispose(); }, 14, [], PER_READER / 2);
  t.dispose();
});

test('training checkpoint loader', () => {
  manualSeed(3);
  const spec = { arch: 'mlp', hidden: [8], numClasses: 3, inputShape: [6] };
  const model = createModel(spec);
  const opt = makeOptimizer({ name: 'adam', lr: 0.01 }, model.parameters());
  // one real step, so the optimizer state is not empty
  const x = tensor(new Float32Array(12).fill(0.5), { shape: [2, 6] });
  const loss = model.call(x).square().mean();
  loss.backward();
  opt.step();
  const file = join(dir, 'valid-ckpt.safetensors');
  saveCheckpoint(file, [model], opt, { epoch: 1, batch: 2, step: 9, sums: { loss: 1.5 }, count: 2 });
  const valid = readFileSync(file);
  const fresh = createModel(spec);
  const freshOpt = makeOptimizer({ name: 'adam', lr: 0.01 }, fresh.parameters());
  // the valid file loads
  assert.equal(loadCheckpoint(file, [fresh], freshOpt).step, 9);
  fuzz('checkpoint', 'checkpoint.safetensors', valid, (f) => loadCheckpoint(f, [fresh], freshOpt), 15);
  x.dispose(); loss.dispose();
});

test('teacher-output cache', () => {
  manualSeed(4);
  const teacher = new ModuleTeacher(createModel({ arch: 'mlp', hidden: [8], numClasses: 4, inputShape: [5] }), 4, 'fuzz teacher', 'fuzz-teacher-sha');
  const ds: Dataset = { name: 'fuzzset', sampleShape: [5], x: Float32Array.from({ length: 40 * 5 }, (_, i) => Math.sin(i)), y: null, size: 40, numClasses: 4 };
  const cacheDir = join(dir, 'cache');
  const notices: string[] = [];
  const built = TeacherOutputCache.open(teacher, ds, { dir: cacheDir, notice: (l) => notices.push(l) });
  const truth = built.gather(Int32Array.from({ length: 40 }, (_, i) => i));
  const path = built.path;
  const valid = readFileSync(path);
  const r = prng(16);
  let rebuilt = 0;
  for (let k = 0; k < PER_READER; k++) {
    writeFileSync(path, MUTATORS[k % MUTATORS.length]!(valid, r));
    notices.length = 0;
    const c = TeacherOutputCache.open(teacher, ds, { dir: cacheDir, notice: (l) => notices.push(l) });
    // a damaged file is either still exact (a harmless byte changed) or rebuilt with a notice naming it
    if (c.status !== 'loaded') {
      rebuilt++;
      assert.ok(notices.some((l) => l.includes(path)), `cache input ${k}: no notice naming ${path}: ${notices.join(' | ')}`);
    }
    assert.deepEqual(c.gather(Int32Array.from({ length: 40 }, (_, i) => i)), truth, `cache input ${k}: served wrong logits`);
    if (k % 25 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  counts.cache = PER_READER;
  assert.ok(rebuilt > PER_READER / 2, `only ${rebuilt} of ${PER_READER} damaged caches were noticed`);
});

test('no reader allocated hugely; totals', () => {
  const growth = (rssPeak - rssStart) / 2 ** 20;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`# fuzz: ${total} inputs (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}); peak RSS growth ${growth.toFixed(0)} MiB; slowest input ${slowest.toFixed(0)} ms`);
  assert.ok(total >= 10 * PER_READER, `only ${total} inputs`);
  assert.ok(growth < 300, `RSS grew by ${growth.toFixed(0)} MiB while fuzzing`);
});
