// Interruptions: `kdistill train` SIGKILLed at ≥20 seeded random moments and resumed each time
// ends with the same weights (bit for bit) and the same log as an uninterrupted run; after every
// kill the checkpoint on disk is whole. SIGINT finishes the step, checkpoints and exits 130.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../../src/nn/safetensors.js';
import { readLog } from '../../src/train/log.js';
import { prng, runCli, stripTiming, writeExperiment, writeTinyFashionMnist } from './helpers.js';

const KILLS = 20;

/** Asserts the checkpoint parses and names a loop position; returns its step. */
function checkpointStep(out: string): number {
  const { tensors, metadata } = loadSafetensors(join(out, 'checkpoint.safetensors'));
  for (const t of tensors.values()) t.dispose();
  assert.equal(metadata.kind, 'kdistill-checkpoint');
  const state = JSON.parse(metadata.state!) as { step: number };
  assert.ok(Number.isInteger(state.step));
  return state.step;
}

function modelBytes(out: string): Map<string, Buffer> {
  const { tensors } = loadSafetensors(join(out, 'model.safetensors'));
  const m = new Map<string, Buffer>();
  for (const [k, t] of tensors) {
    const d = t.data();
    m.set(k, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    t.dispose();
  }
  return m;
}

test(`a run SIGKILLed ${KILLS}+ times and resumed equals an uninterrupted run`, { timeout: 180_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'kd-kill-'));
  const data = writeTinyFashionMnist(join(base, 'data'));
  const refDir = join(base, 'ref'), killDir = join(base, 'killed');
  const refExp = writeExperiment(join(refDir), data);
  // Training starts when the trainer (re)writes log.jsonl; kill moments are drawn after that, so
  // they land in training and checkpoint writes rather than in process start-up.
  const onTrainingStart = (c: ChildProcess, out: string, then: (startMs: number) => void): void => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      let m = 0;
      try { m = statSync(join(out, 'log.jsonl')).mtimeMs; } catch { /* not yet */ }
      if (m >= t0) {
        clearInterval(poll);
        then(Date.now() - t0);
      }
    }, 2);
    c.on('exit', () => clearInterval(poll));
  };
  let refStart = 0;
  const ref = await runCli(['train', refExp], (c) => onTrainingStart(c, join(refDir, 'out'), (ms) => { refStart = ms; }));
  assert.equal(ref.code, 0, ref.stderr);
  const trainMs = Math.max(50, ref.ms - refStart);
  const refLog = readFileSync(join(refDir, 'out', 'log.jsonl'), 'utf8');
  const steps = readLog(join(refDir, 'out', 'log.jsonl')).filter((r) => r.type === 'step').length;

  const exp = writeExperiment(killDir, data);
  const out = join(killDir, 'out');
  const rand = prng(20240611);
  let kills = 0, attempts = 0, lastStep = -1, progressed = 0;
  for (;;) {
    attempts++;
    assert.ok(attempts < 200, 'the run makes no progress under kills');
    const wantKill = kills < KILLS;
    // Up to 1.2/KILLS of the training time after training (re)starts: the kills spread over
    // ~60% of the run (steps, checkpoint writes, epoch ends, evaluation) and never let it finish.
    const delay = Math.floor(trainMs * (1.2 / KILLS) * rand());
    let timer: NodeJS.Timeout | undefined;
    const r = await runCli(['train', exp], (c) => {
      if (wantKill) onTrainingStart(c, out, () => { timer = setTimeout(() => c.kill('SIGKILL'), delay); });
    });
    clearTimeout(timer);
    if (r.signal === 'SIGKILL') {
      kills++;
      // never half-written: whatever is on disk parses
      if (existsSync(join(out, 'checkpoint.safetensors'))) {
        const s = checkpointStep(out);
        if (s > lastStep) progressed++;
        lastStep = s;
      }
      if (existsSync(join(out, 'log.jsonl'))) readLog(join(out, 'log.jsonl'));
      continue;
    }
    assert.equal(r.code, 0, `resumed run failed: ${r.stderr}`);
    break;
  }
  assert.ok(kills >= KILLS, `only ${kills} kills`);
  assert.ok(progressed >= 5, `kills landed mid-training only ${progressed} times`);
  const a = modelBytes(join(refDir, 'out')), b = modelBytes(out);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `weights ${k} differ after ${kills} kills`);
  assert.equal(stripTiming(readFileSync(join(out, 'log.jsonl'), 'utf8')), stripTiming(refLog));
  assert.ok(!readdirSync(out).some((f) => f.endsWith('.tmp')), 'temp files of cut-short writes are cleaned up');
  console.log(`# kill test: ${kills} SIGKILLs survived (${progressed} with training progress), ${steps} steps, ${attempts} launches; reference run ${ref.ms} ms (training ${trainMs} ms)`);
});

test('SIGINT finishes the step, saves a checkpoint and exits 130, leaving a resumable run', { timeout: 60_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'kd-int-'));
  const data = writeTinyFashionMnist(join(base, 'data'));
  // checkpointEvery 0: only the SIGINT handler can have written a mid-epoch checkpoint
  const exp = writeExperiment(base, data, { epochs: 40, checkpointEvery: 0 });
  const out = join(base, 'out');
  const r = await runCli(['train', exp], (c) => {
    // send SIGINT once training is under way (the log file exists from the start of training)
    const poll = setInterval(() => {
      if (existsSync(join(out, 'log.jsonl'))) {
        clearInterval(poll);
        setTimeout(() => c.kill('SIGINT'), 300);
      }
    }, 20);
    c.on('exit', () => clearInterval(poll));
  });
  assert.equal(r.code, 130, `exit code ${r.code} signal ${r.signal}: ${r.stderr}`);
  assert.match(r.stderr, /interrupted by SIGINT at epoch \d+, step \d+; checkpoint saved to .*checkpoint\.safetensors\. Run the same command again to resume/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const step = checkpointStep(out);
  assert.ok(step > 0);
  const log = readLog(join(out, 'log.jsonl'));
  assert.equal(log.filter((x) => x.type === 'step').length, step, 'the log reaches exactly the checkpoint');
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'an interrupted run writes no final model');
});
