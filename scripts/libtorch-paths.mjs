// Locates libtorch for the native build: a LIBTORCH directory (the layout of the official
// libtorch zip: include/, include/torch/csrc/api/include/, lib/) or Debian's libtorch-dev.
// `node scripts/libtorch-paths.mjs include|libdir|check` prints what binding.gyp needs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const HELP = `kdistill needs libtorch (PyTorch's C++ library) to build its native addon.
  On Debian/Ubuntu:  sudo apt-get install libtorch-dev libopenblas0-pthread
  Elsewhere:         download libtorch (CPU, cxx11 ABI) and set LIBTORCH=/path/to/libtorch`;

export function findLibtorch(env = process.env) {
  if (env.LIBTORCH) {
    const root = env.LIBTORCH;
    const inc = join(root, 'include');
    const api = join(root, 'include', 'torch', 'csrc', 'api', 'include');
    const lib = join(root, 'lib');
    const missing = [inc, api, lib].filter((p) => !existsSync(p));
    if (missing.length) throw new Error(`LIBTORCH=${root} is not a libtorch directory: missing ${missing.join(', ')}\n${HELP}`);
    return { source: `LIBTORCH=${root}`, includes: [api, inc], libdir: lib };
  }
  const debInc = '/usr/include/torch/csrc/api/include';
  const debLib = '/usr/lib/x86_64-linux-gnu';
  if (existsSync(join(debInc, 'torch', 'torch.h')) && existsSync(join(debLib, 'libtorch_cpu.so'))) {
    return { source: 'Debian libtorch-dev', includes: [debInc, '/usr/include'], libdir: debLib };
  }
  throw new Error(`libtorch was not found (no LIBTORCH directory, no Debian libtorch-dev).\n${HELP}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const lt = findLibtorch();
    const what = process.argv[2] ?? 'check';
    if (what === 'include') console.log(lt.includes.join(' '));
    else if (what === 'libdir') console.log(lt.libdir);
    else console.log(`libtorch: ${lt.source}`);
  } catch (e) {
    console.error(String(e.message));
    process.exit(1);
  }
}
