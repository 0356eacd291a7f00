// `kdistill synthesize <file.yaml>`: a DeepInversion transfer set from a teacher alone
// (src/run/synthesize.ts): x.npy, y.npy, samples.png and synthesis.json in the output folder.
import { parseArgs } from 'node:util';
import { loadSynthesisConfig, synthesize } from '../run/synthesize.js';

export function synthesizeCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { output: { type: 'string' } } });
  if (positionals.length !== 1) throw new Error('expects one file, e.g. kdistill synthesize experiments/datafree/deepinversion.yaml');
  const cfg = loadSynthesisConfig(positionals[0]!);
  if (values.output) cfg.output = values.output;
  const r = synthesize(cfg, (l) => { if (!process.env.KDISTILL_QUIET) process.stderr.write(l + '\n'); });
  process.stdout.write(`wrote ${r.x}, ${r.y} and ${r.png} in ${r.seconds.toFixed(0)} s; mean terms at the kept images: ${Object.entries(r.terms).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}\n`);
  return 0;
}
