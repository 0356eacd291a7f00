// Runs a text distillation experiment (experiments/text/<name>.yaml) and writes its log, results
// and per-run training logs under experiments/text/results/<name>/. Build first (`npx tsc -p .`).
//   OPENBLAS_NUM_THREADS=1 node experiments/text/run.mjs experiments/text/spam.yaml
import { readFileSync, createWriteStream, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { torch } from '../../dist/src/index.js';
import { runTextExperiment } from '../../dist/src/text/experiment.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: node experiments/text/run.mjs experiments/text/<name>.yaml');
  process.exit(2);
}
const cfg = parse(readFileSync(file, 'utf8'));
torch.setNumThreads(Number(process.env.KDISTILL_THREADS ?? 1));
const out = join('experiments', 'text', 'results', cfg.name ?? basename(file, '.yaml'));
mkdirSync(out, { recursive: true });
const logFile = createWriteStream(join(out, 'experiment.log'));
const log = (s) => { console.log(s); logFile.write(`${s}\n`); };
log(`# ${file} — ${new Date().toISOString()}, torch threads ${torch.getNumThreads()}`);
await runTextExperiment(cfg, out, log);
logFile.end();
