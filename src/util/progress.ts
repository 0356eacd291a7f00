// A progress bar for long work: redrawn in place on a terminal, silent when output is not a
// TTY, under CI, or with KDISTILL_QUIET=1 (logs and reports carry the numbers there).

export function progressEnabled(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !process.env.CI && process.env.KDISTILL_QUIET !== '1';
}

export class ProgressBar {
  #start = Date.now();
  #last = 0;
  readonly #on: boolean;

  constructor(readonly label: string, readonly total: number, readonly stream: NodeJS.WriteStream = process.stderr) {
    this.#on = progressEnabled(stream);
  }

  /** Redraws at most ~10 times a second. `info` is a short status such as the current loss. */
  update(done: number, info = ''): void {
    if (!this.#on) return;
    const now = Date.now();
    if (now - this.#last < 100 && done < this.total) return;
    this.#last = now;
    const width = 24;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.#start) / 1000;
    const eta = frac > 0 ? elapsed / frac - elapsed : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const line = `${this.label} ${bar} ${done}/${this.total} ${fmt(elapsed)}<${fmt(eta)} ${info}`;
    const cols = this.stream.columns ?? 100;
    this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
  }

  done(): void {
    if (this.#on) this.stream.write('\r\x1b[K');
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, '0')}`;
}
