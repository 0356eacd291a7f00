// The method contract v2: every method's hyper-parameters are declared with a type and a camelCase
// key, method files read them without casts, old snake_case keys and packed strings are still
// accepted with a deprecation notice naming the new form, and the trainer hands a method the
// batch's dataset indices and the transfer set's size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import { DataLoader } from '../../src/data/loader.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { BatchSource } from '../../src/data/source.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import { defineMethod, resolveParams } from '../../src/methods/method.js';
import { num, str, type ParamType } from '../../src/methods/params.js';
import { METHODS, getMethod } from '../../src/methods/registry.js';
import { train } from '../../src/train/trainer.js';
import { shardedSource, splitRange } from '../../src/distributed/shard.js';
import { runExperimentOf } from '../../src/report/data.js';
import { parse as parseYaml } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TYPES: ParamType[] = ['number', 'integer', 'boolean', 'string', 'choice', 'numbers', 'struct'];

test('every method declares each hyper-parameter with a type and a camelCase key; old names are snake_case and map to a key of their own', () => {
  for (const m of METHODS) {
    for (const [k, d] of Object.entries(m.params)) {
      assert.match(k, /^[a-z][a-zA-Z0-9]*$/, `${m.name}.${k}: keys are camelCase`);
      assert.ok(TYPES.includes(d.type), `${m.name}.${k}: declared type '${String(d.type)}' is one of ${TYPES.join(', ')}`);
      assert.ok(d.description.length > 10, `${m.name}.${k}: described`);
      if (d.was !== undefined) {
        assert.match(d.was, /_/, `${m.name}.${k}: 'was' is the old snake_case name`);
        assert.ok(!(d.was in m.params), `${m.name}.${k}: old name ${d.was} is not also a current key`);
        assert.equal(Object.values(m.params).filter((o) => o.was === d.was).length, 1, `${m.name}: one key per old name`);
      }
    }
  }
});

test('no method file casts its hyper-parameters (as number / as string / as boolean)', () => {
  const dir = join(root, 'src', 'methods');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= METHODS.length / 2, 'the method sources are found');
  for (const f of files) {
    readFileSync(join(dir, f), 'utf8').split('\n').forEach((line, i) => {
      assert.doesNotMatch(line, /\bas (number|string|boolean)\b/, `src/methods/${f}:${i + 1} casts: ${line.trim()}`);
    });
  }
});

/** The 'warning' events (deprecation notices) emitted while f runs, after the tick they are delivered on. */
async function warningsOf(f: () => void): Promise<string[]> {
  const seen: string[] = [];
  const on = (w: Error): void => { seen.push(w.message); };
  process.on('warning', on);
  try {
    f();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', on);
  }
  return seen;
}

test('an old snake_case key is accepted with one notice naming the new key; both given is an error', async () => {
  const dkd = getMethod('dkd');
  const where = 'old-names.yaml: \'method.params\'';
  let p: Record<string, unknown> = {};
  const seen = await warningsOf(() => {
    p = resolveParams(dkd, { ce_weight: 0.25 }, where);
    resolveParams(dkd, { ce_weight: 0.5 }, where); // the same notice is printed once
  });
  assert.equal(p.ceWeight, 0.25);
  assert.ok(!('ce_weight' in p), 'the value arrives under the new key only');
  assert.deepEqual(seen, [`${where}: 'ce_weight' is deprecated, use 'ceWeight' (the old name is accepted until the next release)`]);
  assert.throws(() => resolveParams(dkd, { ce_weight: 1, ceWeight: 2 }, where),
    /old-names\.yaml: 'method\.params': both 'ce_weight' \(the deprecated name\) and 'ceWeight' are given; keep only 'ceWeight'/);
  // Every declared old name resolves to its key, with a notice naming it (no rename half-done).
  const renames: string[] = [];
  const notices = await warningsOf(() => {
    for (const m of METHODS) {
      for (const [k, d] of Object.entries(m.params)) {
        if (!d.was) continue;
        renames.push(`${m.name}.${d.was} → ${k}`);
        assert.equal(resolveParams(m, { [d.was]: d.default }, `${m.name} (old names)`)[k], d.default, `${m.name}.${d.was} → ${k}`);
      }
    }
  });
  assert.ok(renames.length >= 6, renames.join(', '));
  assert.equal(notices.length, renames.length);
  renames.forEach((r, i) => assert.ok(notices[i]!.includes(`use '${r.split(' → ')[1]}'`), `${r}: ${notices[i]}`));
});

test('packed strings of the first release are read, with a notice showing the YAML form', async () => {
  const seen = await warningsOf(() => {
    assert.deepEqual(resolveParams(getMethod('attention'), { pairs: 'stage1:stage2,fc1' }, 'packed.yaml').pairs,
      [{ student: 'stage1', teacher: 'stage2' }, { student: 'fc1', teacher: 'fc1' }]);
    assert.deepEqual(resolveParams(getMethod('tinybert'), { mapping: '1,3' }, 'packed.yaml').mapping, [1, 3]);
    assert.deepEqual(resolveParams(getMethod('online-kd-oneway'), { teacher: '{"arch": "mlp", "hidden": [32]}' }, 'packed.yaml').teacher, { arch: 'mlp', hidden: [32] });
    assert.deepEqual(resolveParams(getMethod('codistill'), { peerArch: '["mlp", {"arch": "cnn"}]' }, 'packed.yaml').peerArch, [{ arch: 'mlp' }, { arch: 'cnn' }]);
  });
  assert.deepEqual(seen, [
    "packed.yaml: 'pairs': the packed string 'stage1:stage2,fc1' is deprecated; give a YAML list, e.g. pairs: [{student: stage1, teacher: stage2}, fc1]",
    "packed.yaml: 'mapping': the packed string '1,3' is deprecated; give a YAML list, e.g. mapping: [1, 3]",
    "packed.yaml: 'teacher': a model spec as JSON text is deprecated; write it as YAML, e.g. teacher: {arch: mlp, hidden: [32]}",
    "packed.yaml: 'peerArch': a model spec as JSON text is deprecated; write it as YAML, e.g. peerArch: [mlp, {arch: cnn}]",
  ]);
  // The structured forms give no notice.
  assert.deepEqual(await warningsOf(() => {
    resolveParams(getMethod('tinybert'), { mapping: [1, 3] }, 'new.yaml');
    resolveParams(getMethod('online-kd-oneway'), { teacher: { arch: 'mlp', hidden: [32] } }, 'new.yaml');
  }), []);
});

test('defineMethod types create\'s argument from the declarations (a typo is a compile error, not undefined)', () => {
  const m = defineMethod({
    name: 'typed', summary: 's', paper: 'p', needsTeacher: false,
    params: { weight: num({ default: 2, description: 'a weight for the test' }), label: str({ default: 'x', description: 'a free string for the test' }) },
    create(p) {
      const s: string = p.label;
      void s;
      // @ts-expect-error — 'wieght' is not a declared parameter
      void p.wieght;
      const w: number = p.weight;
      return { losses: (ctx) => ({ ce: crossEntropy(ctx.studentLogits, ctx.batch.y!).mul(w) }) };
    },
  });
  assert.deepEqual(resolveParams(m, {}), { weight: 2, label: 'x' });
  assert.deepEqual(resolveParams(m, { weight: null, label: 'y' }), { weight: 2, label: 'y' }, 'an empty YAML value is the default');
  assert.throws(() => resolveParams(m, { label: 3 }), /method 'typed': 'label' must be a string, got 3/);
});

// A tiny data set whose rows are their own index, so batches are easy to follow.
const N = 22;
const ds: Dataset = {
  name: 'contract-test', sampleShape: [3], size: N, numClasses: 2,
  x: Float32Array.from({ length: N * 3 }, (_, i) => Math.floor(i / 3) / N), y: Int32Array.from({ length: N }, (_, i) => i % 2),
};

/** Trains one epoch with a method that records what the trainer gives it. */
async function recorded(source: BatchSource): Promise<{ indices: (number[] | null)[]; datasetSize: number | null | undefined }> {
  const indices: (number[] | null)[] = [];
  let datasetSize: number | null | undefined;
  const spec = defineMethod({
    name: 'recorder', summary: 's', paper: 'p', needsTeacher: false, params: {},
    create: () => ({
      setup(ctx) { datasetSize = ctx.datasetSize; },
      losses(ctx) {
        indices.push(ctx.indices ? [...ctx.indices] : null);
        return { ce: crossEntropy(ctx.studentLogits, ctx.batch.y!) };
      },
    }),
  });
  const student = createModel({ arch: 'mlp', hidden: [4], numClasses: 2, inputShape: [3] });
  await train({ student, teacher: null, method: spec.create(resolveParams(spec, {})), train: source, numClasses: 2, epochs: 1, optimizer: { name: 'sgd', lr: 0.01 } });
  student.dispose();
  return { indices, datasetSize };
}

const loaderSource = (l: DataLoader): BatchSource => ({ batchesPerEpoch: l.numBatches, datasetSize: l.dataset.size, batches: (e, from) => l.epochSync(e, { startBatch: from }) });

test('the loss context carries the batch\'s dataset indices in the loader\'s order, and setup the transfer set\'s size', async () => {
  const loader = new DataLoader(ds, { batchSize: 8, seed: 5, prefetch: 'sync' });
  const r = await recorded(loaderSource(loader));
  const expected = Array.from({ length: loader.numBatches }, (_, b) => [...loader.batchIndices(0, b)]);
  assert.deepEqual(r.indices, expected);
  assert.notDeepEqual(expected.flat(), [...Array(N).keys()], 'the loader shuffles, so the order is really checked');
  assert.equal(r.datasetSize, N);
  // A source without indices or size says so with null.
  const bare = await recorded({ batchesPerEpoch: 1, batches: () => [{ x: torch.tensor(ds.x.slice(0, 6), { shape: [2, 3] }), y: torch.tensor([0, 1], { dtype: 'int64' }) }] });
  assert.deepEqual(bare, { indices: [null], datasetSize: null });
});

test('in data-parallel training each rank\'s loss context sees the global dataset indices of its shard', async () => {
  const world = 3;
  const loader = new DataLoader(ds, { batchSize: 8, seed: 5, prefetch: 'sync' });
  for (let rank = 0; rank < world; rank++) {
    const r = await recorded(shardedSource(loaderSource(loader), rank, world));
    const expected = Array.from({ length: loader.numBatches }, (_, b) => {
      const all = [...loader.batchIndices(0, b)];
      const { start, count } = all.length < world ? { start: 0, count: all.length } : splitRange(all.length, rank, world);
      return all.slice(start, start + count);
    });
    assert.deepEqual(r.indices, expected, `rank ${rank}`);
    assert.equal(r.datasetSize, N, `rank ${rank}: the global set's size`);
  }
});

/** Every `method:` of an experiment file (a chain's stages have one each). */
function methodsOf(doc: unknown): { name: string; params: Record<string, unknown> }[] {
  const o = (doc ?? {}) as { method?: { name?: string; params?: Record<string, unknown> }; stages?: unknown[] };
  const own = o.method?.name ? [{ name: o.method.name, params: o.method.params ?? {} }] : [];
  return [...own, ...(o.stages ?? []).flatMap(methodsOf)];
}

function yamlFiles(dir: string, keep: (path: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yamlFiles(p, keep, out);
    else if (e.name.endsWith('.yaml') && keep(p)) out.push(p);
  }
  return out;
}

test('committed experiment files use the current names and forms (no notice); run records with the old ones still load', async () => {
  const experiments = join(root, 'experiments');
  const isRecord = (p: string): boolean => /\/(results|logs)\//.test(p);
  const current = yamlFiles(experiments, (p) => !isRecord(p));
  let resolved = 0;
  const notices = await warningsOf(() => {
    for (const f of current) {
      for (const m of methodsOf(parseYaml(readFileSync(f, 'utf8')))) {
        resolveParams(getMethod(m.name), m.params, f);
        resolved++;
      }
    }
  });
  assert.ok(resolved > 20, `${resolved} methods resolved`);
  assert.deepEqual(notices, [], 'experiment files still using old names or packed strings');
  // Records of past runs keep the names they ran with; the report re-reads them.
  const records = yamlFiles(experiments, (p) => isRecord(p) && p.endsWith('experiment.yaml'));
  const old = records.filter((f) => /kd_weight|'stage1:|teacher: '\{/.test(readFileSync(f, 'utf8')));
  assert.ok(old.length >= 3, 'records with old names exist to check');
  const oldNotices = await warningsOf(() => {
    for (const f of old) {
      const e = runExperimentOf(dirname(f));
      assert.ok(e, f);
      resolveParams(getMethod(e.method.name), e.method.params, f);
    }
  });
  assert.ok(oldNotices.length >= old.length && oldNotices.every((n) => /deprecated/.test(n)), oldNotices.join('\n'));
});
