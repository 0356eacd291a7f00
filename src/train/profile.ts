// `--profile`: libtorch's operator profile (src/tensor/profiler.ts) of a window of training steps.
// A window, not the whole run: the first steps are unrepresentative (buffers are allocated and
// cached, oneDNN builds its convolution primitives), and the profiler's own cost (~1 µs per op
// event, events kept in memory) should not weigh on a long run.
import { join } from 'node:path';
import { formatProfile, startProfile, stopProfile, type Profile } from '../tensor/profiler.js';
import { atomicWrite } from '../util/fs.js';

export interface ProfileWindow {
  /** The first profiled step, counted from 0 in this process (so a resumed run skips warm-up too). */
  from: number;
  /** How many steps to profile; a run that ends sooner profiles the steps it ran. */
  steps: number;
}

/** A profile of training steps: operators, and which steps (in this process's counting, 0-based). */
export interface StepsProfile extends Profile {
  firstStep: number;
  lastStep: number;
}

/** The default window: steps 10–29, after ten steps of warm-up. */
export const DEFAULT_PROFILE_WINDOW: ProfileWindow = { from: 10, steps: 20 };

/** Profiles the steps of a window: `around(i, step)` runs step i, `finish()` ends a window cut short. */
export class StepProfiler {
  #wallMs = 0;
  #last = -1;
  #running = false;
  constructor(readonly window: ProfileWindow, private readonly done: (p: StepsProfile) => void) {
    if (!(Number.isInteger(window.from) && window.from >= 0 && Number.isInteger(window.steps) && window.steps >= 1)) {
      throw new RangeError(`profile: the window must start at a step ≥ 0 and span ≥ 1 steps, got from ${window.from}, ${window.steps} steps`);
    }
  }
  around<T>(index: number, step: () => T): T {
    const { from, steps } = this.window;
    if (index < from || index >= from + steps) return step();
    if (!this.#running) {
      startProfile();
      this.#running = true;
    }
    const t0 = performance.now();
    try {
      return step();
    } finally {
      this.#wallMs += performance.now() - t0;
      this.#last = index;
      if (index === from + steps - 1) this.finish();
    }
  }
  /** Stops a window the run did not finish (it ended or failed inside it); nothing if none is open. */
  finish(): void {
    if (!this.#running) return;
    this.#running = false;
    this.done({ ...stopProfile(this.#wallMs), firstStep: this.window.from, lastStep: this.#last });
  }
}

/** Writes a run's profile as profile.json (every operator) and profile.txt (the top table) into `dir`. */
export function writeProfile(dir: string, p: StepsProfile): void {
  atomicWrite(join(dir, 'profile.json'), JSON.stringify(p, null, 2) + '\n');
  atomicWrite(join(dir, 'profile.txt'), describeProfile(p, 30) + '\n');
}

/** The top-`n` table with a line saying which steps it covers. */
export function describeProfile(p: StepsProfile, n = 20): string {
  const k = p.lastStep - p.firstStep + 1;
  return `profile of ${k} training step${k === 1 ? '' : 's'} (${p.firstStep}–${p.lastStep} of this run, from 0), operators by self CPU time:\n${formatProfile(p, n)}`;
}
