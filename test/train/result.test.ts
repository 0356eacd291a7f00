// result.json: what a finished run records for tables (compare): test metrics, parameters and
// batch-1 latency, measured in eval mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';

test('result.json records test metrics, parameters and batch-1 latency; a batch-norm student is timed in eval mode', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-result-'));
  try {
    const e = parseExperiment({
      epochs: 1, seed: 2, data: { subset: 300, batchSize: 50 }, student: { arch: 'mlp', hidden: [16], batchNorm: true },
      optimizer: { name: 'sgd', lr: 0.1 }, output: join(dir, 'run'),
    }, join(dir, 'bn.yaml'));
    const r = await runExperiment(e, { mode: 'train', resume: false });
    const res = JSON.parse(readFileSync(join(dir, 'run', 'result.json'), 'utf8'));
    assert.equal(res.studentParameters, r.student.numParameters());
    assert.equal(res.test.accuracy, r.result.final!.accuracy);
    assert.ok(res.msPerSample > 0 && res.msPerSample < 1000, `latency ${res.msPerSample} ms`);
    assert.deepEqual(res.classNames.length, 10);
    assert.equal(r.student.training, true, 'the mode is restored after timing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
