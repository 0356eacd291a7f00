// Paths and assertions shared by the data tests.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { DataError } from '../../src/data/errors.js';

// Compiled tests live in dist/test/data; fixtures stay in the source tree.
export const FIX = fileURLToPath(new URL('../../../test/fixtures/data/', import.meta.url));
export const fx = (p: string): string => FIX + p;

/** Asserts fn throws a DataError whose message names `file` and matches `re`. */
export function throwsData(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

/** Runs fn and asserts it allocated less than `mb` MiB of array buffers (checked via a GC-free peak proxy). */
export function arrayBufferGrowth(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  try { fn(); } catch { /* callers assert the error separately */ }
  peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  return (peak - before) / 2 ** 20;
}
