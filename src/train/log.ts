// The run's JSONL log: one record per step and per epoch, every loss term by name. Records
// are buffered and written atomically with each checkpoint, so after a crash the log and the
// checkpoint always describe the same point and a resumed run's log equals an uninterrupted one.
import { existsSync, readFileSync } from 'node:fs';
import { atomicWrite } from '../util/fs.js';
import type { EpochRecord } from './trainer.js';

export class JsonlLog {
  #lines: string[] = [];

  constructor(readonly path: string) {}

  reset(): void {
    this.#lines = [];
    atomicWrite(this.path, '');
  }

  /** Keeps records before `step` (steps) and before `epoch` (epoch records): the checkpoint's past. */
  truncateAfter(step: number, epoch: number): void {
    const kept: string[] = [];
    if (existsSync(this.path)) {
      for (const l of readFileSync(this.path, 'utf8').split('\n')) {
        if (!l) continue;
        const r = JSON.parse(l) as { type: string; step: number; epoch: number };
        if (r.type === 'epoch' ? r.epoch < epoch : r.step < step) kept.push(l);
      }
    }
    this.#lines = kept;
  }

  epochRecords(): EpochRecord[] {
    return this.#lines.map((l) => JSON.parse(l) as { type: string }).filter((r): r is EpochRecord => r.type === 'epoch');
  }

  write(rec: object): void {
    this.#lines.push(JSON.stringify(rec));
  }

  flush(): void {
    atomicWrite(this.path, this.#lines.length ? this.#lines.join('\n') + '\n' : '');
  }
}
