// One run per output folder. Two runs writing one folder interleave log.jsonl and overwrite each
// other's checkpoints, so a run holds `.kdistill.lock` (its pid and host, created with O_EXCL, so
// exactly one of two racing runs gets it) for as long as it writes there. The lock is released
// when the run ends, fails or is interrupted (the trainer turns SIGINT into an error), and on
// process.exit. No SIGINT listener is installed for it: one would defer Ctrl-C until a synchronous
// phase (data loading, the teacher-cache build) ends. A process killed outright leaves its lock
// behind; the next run sees that the pid is gone and takes the lock over with a notice.
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = '.kdistill.lock';

interface Holder { pid: number; host: string; started: string; command?: string }

export interface FolderLock {
  readonly path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? { started: '?', ...h } as Holder : null;
  } catch {
    return null;
  }
}

/**
 * Takes `dir`'s lock or throws naming the folder and the holder. `what` prefixes messages (the
 * experiment file); `notice` gets the one-line stale-lock notice (default stderr).
 */
export function lockFolder(dir: string, what: string, notice: (line: string) => void = (l) => process.stderr.write(l + '\n')): FolderLock {
  const path = join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  const text = JSON.stringify(me) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${what}: cannot create the lock file ${path}: ${(e as Error).message}`);
      const h = readHolder(path);
      // An unreadable lock is one being written right now (or torn by a crash): treated as held,
      // since taking it over could let two runs in.
      if (!h) throw new Error(`${what}: the output folder ${dir} is locked by another run (${path} is unreadable); if no kdistill run uses this folder, delete ${path}`);
      const busy = `${what}: the output folder ${dir} is in use by another kdistill run (pid ${h.pid} on ${h.host}, since ${h.started})`;
      if (h.host !== me.host) throw new Error(`${busy}; wait for it to end or use another output folder (--output DIR). If that run is gone, delete ${path}`);
      if (h.pid === process.pid || alive(h.pid)) throw new Error(`${busy}; wait for it to end or use another output folder (--output DIR)`);
      // Stale: move it aside under a unique name and check that it is still the dead holder's
      // (another run may have taken it over in between; then it goes back and that run keeps it).
      const aside = `${path}.${process.pid}.stale`;
      try {
        renameSync(path, aside);
      } catch {
        continue;
      }
      const moved = readHolder(aside);
      if (moved?.pid !== h.pid || moved.host !== h.host || moved.started !== h.started) {
        try { linkSync(aside, path); } catch { /* a third run holds it now */ }
        rmSync(aside, { force: true });
        continue;
      }
      rmSync(aside, { force: true });
      notice(`${what}: taking over the lock of ${dir} from pid ${h.pid}, which is no longer running (it was interrupted or killed)`);
      continue;
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      process.off('exit', release);
      // Only our own lock: never one another run took over.
      const h = readHolder(path);
      if (h && h.pid === me.pid && h.host === me.host && h.started === me.started) rmSync(path, { force: true });
    };
    process.on('exit', release);
    return { path, release };
  }
  throw new Error(`${what}: cannot take the lock ${path}: other runs keep taking it`);
}
