// Divergence: a training loss that grows by orders of magnitude (a learning rate far too high)
// can stay finite, so the NaN/Inf checks never fire and the run ends "successfully" with a
// useless model. An epoch's mean loss counts as diverged when it is
//   > FACTOR × the lowest loss seen so far (the first step's, or any earlier epoch's mean), and
//   > the first step's loss (worse than the untrained model).
// The minimum catches a run that first learned and then blew up (0.05 → 50), which a comparison
// with the start alone would miss; the second condition keeps a loss that fell to ~1e-4 and
// wobbles back to 0.02 (200× its minimum, but far below where it started) from being flagged.
// The first step's loss, not the first epoch's mean, is the reference because at a huge learning
// rate the first epoch's mean is already astronomical. Losses at or below 0 (some methods' terms
// can be negative) give no scale and are not judged.

export const DIVERGENCE_FACTOR = 100;

export class DivergenceWatch {
  #start: number | null = null;
  #min = Infinity;
  readonly warnings: string[] = [];

  constructor(readonly label: string) {}

  /** Every step's total loss: only the first counts (single batches are too noisy to compare). */
  step(loss: number): void {
    if (this.#start !== null) return;
    this.#start = loss;
    this.#min = Math.min(this.#min, loss);
  }

  /** An epoch's mean loss; returns the warning when this epoch diverged and none was given yet. */
  epoch(epoch: number, mean: number | undefined): string | null {
    if (mean === undefined || !Number.isFinite(mean)) return null;
    // A resumed run has no first step: its first epoch's mean stands in.
    const start = this.#start ?? mean;
    this.#start ??= mean;
    const min = this.#min;
    this.#min = Math.min(this.#min, mean);
    if (this.warnings.length || !(min > 0) || !(mean > DIVERGENCE_FACTOR * min && mean > start)) return null;
    const w = `${this.label}: the training loss diverged: epoch ${epoch + 1}'s mean loss ${mean.toPrecision(3)} is ${(mean / min).toExponential(1)}× ` +
      `the lowest so far (${min.toPrecision(3)}; first step ${start.toPrecision(3)}); the model is likely useless: lower optimizer.lr (or add warm-up)`;
    this.warnings.push(w);
    return w;
  }
}
