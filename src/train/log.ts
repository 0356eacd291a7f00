// The run's JSONL log: one record per step and per epoch, every loss term by name. Records are
// buffered and appended (then fsynced) just before each checkpoint is written, so the log on disk
// always reaches at least as far as the checkpoint. A resume cuts it back to the checkpoint's
// position (dropping a line torn by a kill), so a resumed run's log equals an uninterrupted one.
// Appending keeps both the I/O per checkpoint and the memory held proportional to the records
// since the last checkpoint, not to the whole run.
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readFileChecked } from '../data/errors.js';
import { atomicWrite } from '../util/fs.js';
import type { ClassificationMetrics } from './metrics.js';

/** A log's epoch line (the trainer writes one after each epoch's evaluation). */
export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  step: number;
  lr: number;
  train: Record<string, number>;
  eval?: ClassificationMetrics;
  seconds: number;
}

/** Parses a log's text; a torn final line (a kill mid-append) is dropped, any other bad line is an error naming the file. */
export function parseLog(text: string, file: string): Record<string, unknown>[] {
  const lines = text.split('\n');
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!l) continue;
    let r: unknown;
    try {
      r = JSON.parse(l);
    } catch {
      // Only the unterminated last line can be a torn append; anything else is corruption.
      if (i === lines.length - 1) break;
      throw new Error(`${file}: line ${i + 1} is not valid JSON (corrupt log; delete it or start over with --no-resume)`);
    }
    if (r === null || typeof r !== 'object' || Array.isArray(r) || typeof (r as { type?: unknown }).type !== 'string') {
      throw new Error(`${file}: line ${i + 1} is not a log record (an object with a 'type')`);
    }
    out.push(r as Record<string, unknown>);
  }
  return out;
}

/** Reads and parses a log file; every error names the file. */
export function readLog(file: string): Record<string, unknown>[] {
  const { bytes } = readFileChecked(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file}: not valid UTF-8 (corrupt log)`);
  }
  return parseLog(text, file);
}

export class JsonlLog {
  #pending: string[] = [];
  #epochs: EpochRecord[] = [];

  constructor(readonly path: string) {}

  reset(): void {
    this.#pending = [];
    this.#epochs = [];
    atomicWrite(this.path, '');
  }

  /** Keeps records before `step` (steps) and before `epoch` (epoch records): the checkpoint's past. */
  truncateAfter(step: number, epoch: number): void {
    const kept: Record<string, unknown>[] = [];
    if (existsSync(this.path)) {
      for (const r of readLog(this.path)) {
        if (r.type === 'epoch' ? (r.epoch as number) < epoch : (r.step as number) < step) kept.push(r);
      }
    }
    atomicWrite(this.path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    this.#pending = [];
    this.#epochs = kept.filter((r): r is EpochRecord & Record<string, unknown> => r.type === 'epoch') as EpochRecord[];
  }

  /** Epoch records kept by truncateAfter (what a resumed run already has). */
  epochRecords(): EpochRecord[] {
    return [...this.#epochs];
  }

  write(rec: object): void {
    this.#pending.push(JSON.stringify(rec) + '\n');
  }

  /** Appends the buffered records and fsyncs, so a checkpoint written next never gets ahead of the log. */
  flush(): void {
    if (this.#pending.length === 0) return;
    const buf = Buffer.from(this.#pending.join(''));
    let fd: number;
    try {
      fd = openSync(this.path, 'a');
    } catch (e) {
      throw new Error(`cannot append to ${this.path}: ${(e as Error).message}`);
    }
    try {
      let off = 0;
      while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
      fsyncSync(fd);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // A partial append is harmless: the checkpoint is not written after it, and a resume cuts the log back.
      if (err.code === 'ENOSPC') throw new Error(`no space left on device while appending to ${this.path}; the previous checkpoint is untouched and the run can be resumed once space is freed`);
      throw new Error(`cannot append to ${this.path}: ${err.message}`);
    } finally {
      closeSync(fd);
    }
    this.#pending = [];
  }
}
