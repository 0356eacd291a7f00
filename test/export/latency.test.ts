// The batch-1 latency summary both runtimes' columns use (src/export/latency.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { latencyCounts, summarizeLatency } from '../../src/export/latency.js';

test('summarizeLatency: nearest-rank median and 90th percentile, whatever the order of the runs', () => {
  // 1..10 shuffled: rank ceil(0.5·10) = 5 → 5, rank ceil(0.9·10) = 9 → 9.
  assert.deepEqual(summarizeLatency([7, 3, 10, 1, 9, 2, 8, 5, 4, 6]), { median: 5, p90: 9 });
  // One outlier moves neither statistic (what a preempted run does to 500 timed runs).
  assert.deepEqual(summarizeLatency([1, 1, 1, 1, 1, 1, 1, 1, 1, 1000]), { median: 1, p90: 1 });
  assert.deepEqual(summarizeLatency([0.25]), { median: 0.25, p90: 0.25 });
  assert.throws(() => summarizeLatency([]), /no timed runs/);
});

test('latencyCounts: defaults of at least 200 timed runs after a warm-up; bad counts are named', () => {
  const d = latencyCounts();
  assert.ok(d.runs >= 200 && d.warmup > 0, JSON.stringify(d));
  assert.deepEqual(latencyCounts({ warmup: 0, runs: 3 }), { warmup: 0, runs: 3 });
  assert.throws(() => latencyCounts({ runs: 0 }), /runs must be a positive integer, got 0/);
  assert.throws(() => latencyCounts({ warmup: 1.5 }), /warmup must be a non-negative integer, got 1.5/);
});
