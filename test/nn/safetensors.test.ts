// safetensors: round trips, a file written by Python straight from the spec, atomic writes,
// model checkpoints that rebuild themselves, and clear errors for corrupt or truncated files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, tidy, Tensor } from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { assertClose, fixtureDir } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kdistill-st-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['a.weight', torch.randn([3, 4])],
    ['b', torch.tensor([1, 2, 3], { dtype: 'float64' })],
    ['idx', torch.tensor([[-1, 5], [7, 9]], { dtype: 'int64' })],
    ['i32', torch.tensor([4, -4], { dtype: 'int32' })],
    ['u8', torch.tensor([0, 255], { dtype: 'uint8' })],
    ['mask', torch.tensor([true, false])],
    ['half', torch.tensor([0.5, -1.25]).to('float16')],
    ['scalar', torch.tensor(3.5)],
    ['empty', torch.zeros([0, 3])],
  ]);
}

test('round trip keeps names, dtypes, shapes, values and metadata', () => {
  tidy(() => {
    const t = sample();
    const p = join(dir, 'rt.safetensors');
    nn.saveSafetensors(p, t, { hello: 'world', json: '{"a":1}' });
    const back = nn.loadSafetensors(p);
    assert.deepEqual(back.metadata, { hello: 'world', json: '{"a":1}' });
    assert.deepEqual([...back.tensors.keys()].sort(), [...t.keys()].sort());
    for (const [k, v] of t) {
      const w = back.tensors.get(k)!;
      assert.equal(w.dtype, v.dtype, k);
      assert.deepEqual(w.shape, v.shape, k);
      assert.ok(w.equal(v), k);
    }
    // Layout per the spec: u64 LE header length, 8-aligned JSON, offsets from the data start.
    const buf = readFileSync(p);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf-8'));
    assert.deepEqual(header['a.weight'].shape, [3, 4]);
    assert.equal(header['a.weight'].dtype, 'F32');
    assert.equal(header.idx.dtype, 'I64');
    assert.equal(header.mask.dtype, 'BOOL');
    assert.equal(buf.byteLength, 8 + n + Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets[1]!)));
  });
});

test('reads a file written by Python straight from the spec (F32, F16, BF16, I64, BOOL, F64 scalar)', () => {
  tidy(() => {
    const { tensors, metadata } = nn.loadSafetensors(join(fixtureDir, 'reference.safetensors'));
    assert.equal(metadata.format, 'pt');
    assertClose(tensors.get('w')!, torch.tensor([[0, 0.25, 0.5], [0.75, 1, 1.25]]), 'w');
    const half = tensors.get('half')!;
    assert.equal(half.dtype, 'float16');
    assert.deepEqual([...half.toFloat64Array()].length, 3);
    assertClose(half.float(), torch.tensor([1.5, -2.25, 65504]), 'half');
    const bf = tensors.get('bf')!;
    assert.equal(bf.dtype, 'float32'); // widened exactly
    assert.deepEqual([...bf.toFloat64Array()].slice(0, 2), [1, -3.5]);
    assertClose(bf, torch.tensor([1, -3.5, 1e30]), 'bf16', 1e-2);
    assert.deepEqual(tensors.get('idx')!.data(), BigInt64Array.from([1n, -2n, 3n, 2n ** 40n]));
    assert.equal(tensors.get('mask')!.dtype, 'bool');
    assert.deepEqual([...tensors.get('mask')!.toFloat64Array()], [1, 0, 1]);
    assert.deepEqual(tensors.get('scalar')!.shape, []);
    assert.equal(tensors.get('scalar')!.item(), 7.25);
  });
});

function corrupt(name: string, mutate: (header: Record<string, any>, data: Buffer) => { header?: unknown; data?: Buffer; raw?: Buffer }): string {
  const good = nn.serializeSafetensors(new Map([['x', torch.ones([2, 2])], ['y', torch.zeros([3])]]), { k: 'v' });
  const n = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + n).toString('utf-8'));
  const r = mutate(header, Buffer.from(good.subarray(8 + n)));
  let out: Buffer;
  if (r.raw) out = r.raw;
  else {
    const json = Buffer.from(typeof r.header === 'string' ? r.header : JSON.stringify(r.header ?? header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.byteLength));
    out = Buffer.concat([len, json, r.data ?? Buffer.from(good.subarray(8 + n))]);
  }
  const p = join(dir, `${name}.safetensors`);
  writeFileSync(p, out);
  return p;
}

test('corrupt and truncated files give errors that name the file and the problem', () => {
  const cases: [string, (h: Record<string, any>, d: Buffer) => { header?: unknown; data?: Buffer; raw?: Buffer }, RegExp][] = [
    ['tiny', () => ({ raw: Buffer.from([1, 2, 3]) }), /3 bytes is shorter than the 8-byte header length/],
    ['hugeheader', () => { const b = Buffer.alloc(16); b.writeBigUInt64LE(1n << 40n); return { raw: b }; }, /header length 1099511627776 exceeds/],
    ['pastend', () => { const b = Buffer.alloc(16); b.writeBigUInt64LE(100n); return { raw: b }; }, /header length 100 runs past the end of the file \(16 bytes; truncated\?\)/],
    ['badjson', () => ({ header: '{"x": [' }), /header is not valid UTF-8 JSON/],
    ['notobject', () => ({ header: '[1,2]' }), /header is not a JSON object/],
    ['dtype', (h) => { h.x.dtype = 'F8_E4M3'; return {}; }, /tensor 'x' has unknown dtype "F8_E4M3" \(known: BOOL/],
    ['shape', (h) => { h.x.shape = [2, -2]; return {}; }, /tensor 'x' has an invalid shape \[2,-2\]/],
    ['offsets', (h) => { h.x.data_offsets = [0]; return {}; }, /tensor 'x' has invalid data_offsets \[0\]/],
    ['reversed', (h) => { h.x.data_offsets = [16, 0]; return {}; }, /begin after end/],
    ['sizemismatch', (h) => { h.x.shape = [2, 3]; return {}; }, /tensor 'x' of dtype F32 and shape \[2, 3\] needs 24 bytes, data_offsets give 16/],
    ['truncated', (_h, d) => ({ data: d.subarray(0, d.byteLength - 4) }), /run past the 24 data bytes \(truncated\?\)/],
    ['trailing', (_h, d) => ({ data: Buffer.concat([d, Buffer.alloc(4)]) }), /the data section has 32 bytes but the tensors cover 28/],
    ['overlap', (h) => { h.y.data_offsets = [12, 24]; h.x.data_offsets = [0, 16]; return {}; }, /overlap the previous tensor/],
    ['gap', (h) => { h.y.shape = [2]; h.y.data_offsets = [20, 28]; return {}; }, /bytes \[16, 20\) before tensor 'y' belong to no tensor/],
    ['metadata', (h) => { h.__metadata__ = { k: 1 }; return {}; }, /__metadata__\['k'\] is not a string/],
  ];
  for (const [name, mutate, re] of cases) {
    const p = corrupt(name, mutate);
    assert.throws(() => nn.loadSafetensors(p), (e: Error) => {
      assert.ok(e.message.startsWith(`${p}: not a valid safetensors file: `), e.message);
      assert.match(e.message, re);
      return true;
    }, name);
  }
  const missing = join(dir, 'nope.safetensors');
  assert.throws(() => nn.loadSafetensors(missing), new RegExp(`^Error: ${missing.replace(/[.]/g, '\\.')}: cannot read: ENOENT`));
});

test('writes are atomic: no temp files left, failures leave nothing and name the path', () => {
  tidy(() => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const p = join(sub, 'm.safetensors');
    nn.saveSafetensors(p, sample());
    nn.saveSafetensors(p, sample()); // overwrite in place
    assert.deepEqual(readdirSync(sub), ['m.safetensors']);
    const bad = join(sub, 'no-such-dir', 'x.safetensors');
    assert.throws(() => nn.saveSafetensors(bad, sample()), new RegExp(`${bad.replace(/[.]/g, '\\.')}: cannot write`));
    assert.throws(() => nn.saveSafetensors(p, sample(), { n: 1 as unknown as string }), /metadata 'n' must be a string/);
    assert.deepEqual(readdirSync(sub), ['m.safetensors']);
  });
});

test('saveModel/loadModel: the checkpoint re-creates the model from its file alone', () => {
  tidy(() => {
    const spec = { arch: 'resnet8', numClasses: 10, inChannels: 1, inputSize: [28, 28] };
    const m = nn.createModel(spec);
    m.train();
    m.call(torch.randn([4, 1, 28, 28])); // move the running statistics off their defaults
    const p = join(dir, 'resnet8.safetensors');
    nn.saveModel(p, m, { epoch: '3' });
    const { model, metadata } = nn.loadModel(p);
    assert.equal(metadata.epoch, '3');
    assert.equal(metadata.format, 'pt');
    assert.deepEqual(JSON.parse(metadata.model!), spec);
    assert.deepEqual(model.spec, m.spec);
    m.eval(); model.eval();
    const x = torch.randn([2, 1, 28, 28]);
    assert.ok(model.call(x).equal(m.call(x)));
    const nbt = new Map(model.namedBuffers()).get('bn1.num_batches_tracked')!;
    assert.equal(nbt.dtype, 'int64');
    assert.equal(nbt.item(), 1);
    // Into an existing model: names and shapes must match, errors name the file and entries.
    const wrong = nn.createModel({ ...spec, numClasses: 5 });
    assert.throws(() => nn.loadModel(p, { into: wrong }), (e: Error) =>
      e.message.startsWith(`${p}: `) && /'fc.weight' has shape \[10x64\], the model needs \[5x64\]/.test(e.message));
    const mlp = nn.createModel({ arch: 'mlp', inputShape: [4], numClasses: 2 });
    const plain = join(dir, 'plain.safetensors');
    nn.saveSafetensors(plain, mlp.stateDict());
    assert.throws(() => nn.loadModel(plain), new RegExp(`${plain.replace(/[.]/g, '\\.')}: no 'model' entry in the metadata`));
    const loaded = nn.loadModel(plain, { into: nn.createModel({ arch: 'mlp', inputShape: [4], numClasses: 2 }) });
    assert.ok(loaded.model instanceof nn.MLP);
    const badSpec = join(dir, 'badspec.safetensors');
    nn.saveSafetensors(badSpec, mlp.stateDict(), { model: '{"arch":"resnet7"}' });
    assert.throws(() => nn.loadModel(badSpec), /badspec\.safetensors: model spec: unknown 'arch' "resnet7"/);
  });
});
