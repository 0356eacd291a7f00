// Atomic file writes: a reader (or a resumed run after a crash) sees the old file or the new
// one, never half of one. Write a temp file in the same folder, fsync it, rename over, fsync the
// folder. Every file kdistill writes whole (checkpoints, models, caches, reports) goes through here.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** `mkdir: false` makes a missing folder an error instead of creating it (model files). */
export function atomicWrite(path: string, data: Uint8Array | string | (Uint8Array | string)[], o: { mkdir?: boolean } = {}): void {
  const dir = dirname(path);
  if (o.mkdir ?? true) mkdirSync(dir, { recursive: true });
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
