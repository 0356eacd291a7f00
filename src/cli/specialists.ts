// `kdistill specialists <file.yaml>`: subsets, specialists, evaluation and the teacher bundle
// (config: src/config/specialists.ts; run: src/run/specialists.ts).
import { parseArgs } from 'node:util';
import { loadSpecialistsConfig } from '../config/specialists.js';
import { runSpecialists } from '../run/specialists.js';

export async function specialistsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { output: { type: 'string' } } });
  if (positionals.length !== 1) throw new Error('expects one file, e.g. kdistill specialists experiments/specialists/ensemble.yaml');
  const cfg = loadSpecialistsConfig(positionals[0]!);
  if (values.output) cfg.output = values.output;
  const r = await runSpecialists(cfg);
  process.stdout.write(r.summary + '\n');
  return 0;
}
