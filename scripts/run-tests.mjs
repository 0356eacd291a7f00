// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// KDISTILL_TEST_FILTER=engine runs only paths containing that string.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filter = process.env.KDISTILL_TEST_FILTER ?? '';
const files = find('dist/test').filter((f) => f.includes(filter)).sort();
if (files.length === 0) {
  console.error('no test files found under dist/test (did tsc run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, KDISTILL_QUIET: '1' },
});
process.exit(r.status ?? 1);
