// A worker for pin.test.ts, started by the launcher: writes the CPU list of each of its threads
// (Node's helpers included) to <dir>/<RANK>.json.
//
//   node pin-worker.js <dir>     with RANK from the launcher
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const cpusOf = (status: string): string => readFileSync(status, 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'))!.split(':')[1]!.trim();
const threads = readdirSync('/proc/self/task').map((tid) => cpusOf(`/proc/self/task/${tid}/status`));
writeFileSync(join(process.argv[2]!, `${process.env.RANK}.json`), JSON.stringify(threads));
