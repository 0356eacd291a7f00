// The launcher's CPU pinning: with it, each worker and every one of its threads runs on its own
// slice of the launcher's CPUs (local rank i on the i-th slice); with KDISTILL_PIN=0 / pin: false
// they keep the launcher's whole set. What pinning is worth is a measurement (README), not tested.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowedCpus, cpuSlices, launch, parseCpuList } from '../../src/distributed/launch.js';

const WORKER = fileURLToPath(new URL('./pin-worker.js', import.meta.url));

async function threadCpus(o: { pin?: boolean; env?: NodeJS.ProcessEnv }): Promise<number[][][]> {
  const dir = mkdtempSync(join(tmpdir(), 'kd-pin-'));
  const code = await launch({ nproc: 2, args: [dir], script: WORKER, log: () => {}, ...o });
  assert.equal(code, 0);
  return [0, 1].map((r) => (JSON.parse(readFileSync(join(dir, `${r}.json`), 'utf8')) as string[]).map(parseCpuList));
}

test('CPU lists parse as the kernel writes them; slices are contiguous, equal and disjoint', () => {
  assert.deepEqual(parseCpuList('0-2,5\n'), [0, 1, 2, 5]);
  assert.deepEqual(cpuSlices(2, [0, 1, 2, 3, 4]), [[0, 1], [2, 3]]);
  assert.deepEqual(cpuSlices(2, [4, 6]), [[4], [6]]);
  assert.equal(cpuSlices(3, [0, 1]), null);
});

test('the launcher pins each worker (every thread) to its slice by default, and not with pin off', { timeout: 30_000 }, async () => {
  const all = allowedCpus();
  const slices = cpuSlices(2, all);
  const pinned = await threadCpus({ env: { KDISTILL_PIN: '' } });
  for (const r of [0, 1]) {
    assert.ok(pinned[r]!.length > 1, 'Node starts helper threads');
    // On a 1-CPU machine two workers cannot have a CPU each: they keep the whole set.
    for (const cpus of pinned[r]!) assert.deepEqual(cpus, slices ? slices[r] : all, `rank ${r}`);
  }
  for (const o of [{ pin: false }, { env: { KDISTILL_PIN: '0' } }]) {
    const free = await threadCpus(o);
    for (const r of [0, 1]) for (const cpus of free[r]!) assert.deepEqual(cpus, all, `rank ${r} with ${JSON.stringify(o)}`);
  }
});
