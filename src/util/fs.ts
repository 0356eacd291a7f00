// Atomic file writes: a reader (or a resumed run after a crash) sees the old file or the new
// one, never half of one. Write a temp file in the same folder, fsync it, rename over, fsync the
// folder. Every file kdistill writes whole (checkpoints, models, caches, reports) goes through here.
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

const WHY: Record<string, string> = {
  ENOENT: 'the file system does not allow creating it there (ENOENT: a virtual file system such as /proc, or a read-only mount)',
  EACCES: 'permission denied (EACCES)', EPERM: 'not permitted (EPERM)', EROFS: 'read-only file system (EROFS)', ENOSPC: 'no space left on device (ENOSPC)',
};

/**
 * `mkdir -p` that fails at once, naming `what` (e.g. "exp.yaml: 'output'") and the path at fault.
 * Node's recursive mkdirSync spins forever at 100 % CPU when mkdir keeps failing with ENOENT under
 * an existing parent (as under /proc), so the folders are made one at a time from the nearest
 * existing ancestor down. The folder is then checked to be writable.
 */
export function ensureDir(path: string, what?: string): void {
  const abs = resolve(path);
  const fail = (at: string, why: string): never => {
    throw new Error(`${what ? `${what}: ` : ''}cannot create or write the folder ${abs}: ${at === abs ? '' : `${at}: `}${why}`);
  };
  const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? '';
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) fail(p, 'is a file, not a folder');
      break;
    } catch (e) {
      if (code(e) === 'ENOENT' && dirname(p) !== p) { missing.push(p); continue; }
      if (!code(e)) throw e;
      fail(p, code(e) === 'ENOTDIR' ? 'a part of this path is a file, not a folder (ENOTDIR)' : WHY[code(e)] ?? (e as Error).message);
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      // Another process (a second rank) may have made it in between.
      if (code(e) === 'EEXIST' && statSync(d).isDirectory()) continue;
      fail(d, WHY[code(e)] ?? (e as Error).message);
    }
  }
  try {
    accessSync(abs, constants.W_OK);
  } catch (e) {
    fail(abs, WHY[code(e)] ?? (e as Error).message);
  }
}

/** `mkdir: false` makes a missing folder an error instead of creating it (model files). */
export function atomicWrite(path: string, data: Uint8Array | string | (Uint8Array | string)[], o: { mkdir?: boolean } = {}): void {
  const dir = dirname(path);
  if (o.mkdir ?? true) ensureDir(dir);
  // pid + random suffix: concurrent writers (ranks, tests) never share a temp file
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    for (const part of Array.isArray(data) ? data : [data]) {
      const buf = typeof part === 'string' ? Buffer.from(part) : part;
      let off = 0;
      while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    // Nothing was renamed, so whatever was at `path` before is still there, whole.
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new Error(`${path}: cannot write: no space left on device (ENOSPC); the previous file is untouched`, { cause: e });
    throw new Error(`${path}: cannot write: ${(e as Error).message}`, { cause: e });
  }
  // Make the rename itself durable; some filesystems refuse fsync on directories, which is fine.
  try {
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* best effort */ }
}
