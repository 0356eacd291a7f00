// One sweep trial in its own process (forked by src/run/sweep.ts), so trials run in parallel, each
// with its own libtorch threads. It receives the trial's experiment document, trains it without
// the test split (RunOptions.validationOnly), applies the median stopping rule after each epoch,
// writes trial.json into the trial's folder and replies with the outcome.
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { parseExperiment } from '../config/experiment.js';
import { atomicWrite } from '../util/fs.js';
import { runExperiment } from './experiment.js';
import { medianRule, TrialStopped, type TrialOutcome, type TrialRequest } from './sweep-trial.js';

async function runTrial(req: TrialRequest): Promise<TrialOutcome> {
  const t0 = Date.now();
  const e = parseExperiment(req.doc, req.file, stringifyYaml(req.doc));
  let outcome: TrialOutcome;
  try {
    await runExperiment(e, { mode: req.mode, resume: true, validationOnly: true, ...(req.earlyStop ? { onEpoch: medianRule(req.earlyStop, e.epochs) } : {}) });
    outcome = { status: 'finished', seconds: (Date.now() - t0) / 1000 };
  } catch (err) {
    if (!(err instanceof TrialStopped)) return { status: 'failed', seconds: (Date.now() - t0) / 1000, error: (err as Error).message };
    outcome = { status: 'stopped', seconds: (Date.now() - t0) / 1000, stopped: err.at };
  }
  // Written last: its presence marks the trial done, so a resumed sweep skips it.
  atomicWrite(join(e.output, 'trial.json'), JSON.stringify(outcome, null, 2) + '\n');
  return outcome;
}

if (process.send) {
  process.once('message', (req: TrialRequest) => {
    void runTrial(req)
      .catch((err: unknown): TrialOutcome => ({ status: 'failed', seconds: 0, error: (err as Error).message }))
      .then((out) => process.send!(out, () => process.exit(0)));
  });
}
