// Copies the record of finished runs (log, result, run record, experiment file, results table)
// from a runs folder into the repository, next to the experiment files that produced them.
//   node scripts/collect-runs.mjs runs/fmnist-lowdata experiments/fashion-mnist/results/lowdata
import { cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const [src, dest] = process.argv.slice(2);
if (!src || !dest) {
  console.error('usage: node scripts/collect-runs.mjs <runs-folder> <destination>');
  process.exit(2);
}
const KEEP = ['log.jsonl', 'result.json', 'run.json', 'experiment.yaml', 'results.md'];
let n = 0;
(function walk(dir) {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (KEEP.includes(e)) {
      const out = join(dest, relative(src, p));
      mkdirSync(join(out, '..'), { recursive: true });
      cpSync(p, out);
      n++;
    }
  }
})(src);
if (!existsSync(dest)) mkdirSync(dest, { recursive: true });
console.log(`copied ${n} files from ${src} to ${dest}`);
