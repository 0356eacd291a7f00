// What a sweep trial process is asked (TrialRequest) and answers (TrialOutcome), and the median
// stopping rule it applies after each epoch; shared by src/run/sweep.ts and the trial process
// (sweep-worker.ts).
import { readFileSync } from 'node:fs';
import type { EpochRecord } from '../train/trainer.js';

export interface TrialRequest {
  file: string;
  doc: Record<string, unknown>;
  mode: 'train' | 'distill';
  earlyStop: { curvesFile: string; metric: string; maximise: boolean; minTrials: number } | null;
}

/** What trial.json holds (and the worker replies). */
export interface TrialOutcome {
  status: 'finished' | 'stopped' | 'failed';
  seconds: number;
  /** The median stopping rule's decision: the trial's value and the finished trials' median at that epoch (0-based). */
  stopped?: { epoch: number; value: number; median: number };
  error?: string;
}

export class TrialStopped extends Error {
  constructor(readonly at: { epoch: number; value: number; median: number }) {
    super(`stopped by the median rule at epoch ${at.epoch + 1}`);
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The median stopping rule (Golovin et al. 2017, Google Vizier): after epoch e, stop a trial whose
 * validation metric is worse than the median of the finished trials' metric at epoch e, once at
 * least `minTrials` finished trials reached e. Never after the last epoch (nothing left to save).
 * The finished trials' curves are read from the sweep's curves.json, rewritten as trials finish.
 */
export function medianRule(es: NonNullable<TrialRequest['earlyStop']>, epochs: number): (r: EpochRecord) => void {
  return (r) => {
    const value = (r.eval as Record<string, number> | undefined)?.[es.metric];
    if (value === undefined || r.epoch >= epochs - 1) return;
    let curves: Record<string, number[]> = {};
    try {
      curves = JSON.parse(readFileSync(es.curvesFile, 'utf8')) as Record<string, number[]>;
    } catch {
      return; // no trial has finished yet
    }
    const at = Object.values(curves).map((c) => c[r.epoch]).filter((v): v is number => typeof v === 'number');
    if (at.length < es.minTrials) return;
    const m = median(at);
    if (es.maximise ? value < m : value > m) throw new TrialStopped({ epoch: r.epoch, value, median: m });
  };
}
