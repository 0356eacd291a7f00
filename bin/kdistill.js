#!/usr/bin/env node
// The kdistill command. The compiled CLI lives in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'cli', 'main.js');
if (!existsSync(main)) {
  console.error(`kdistill: ${main} is missing; run \`npm install\` (or \`npm run build\`) in the kdistill folder first.`);
  process.exit(1);
}
let run;
try {
  ({ run } = await import(main));
} catch (e) {
  // Loading the CLI loads the native addon: a missing or unloadable one is its one-line message, not a stack.
  console.error(e instanceof Error && e.message.startsWith('kdistill:') ? e.message : `kdistill: cannot start: ${e}`);
  if (process.env.KDISTILL_DEBUG) console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
}
process.exitCode = await run(process.argv.slice(2));
