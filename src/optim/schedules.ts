// Learning-rate schedules as pure functions of the global step, so a resumed run gets exactly
// the learning rate an uninterrupted one would have had. Each returns a multiplier of the base LR.

export type ScheduleSpec =
  | { name: 'constant'; warmupEpochs?: number }
  | { name: 'step'; stepEpochs: number; gamma?: number; warmupEpochs?: number }
  | { name: 'multistep'; milestones: number[]; gamma?: number; warmupEpochs?: number }
  | { name: 'cosine'; minFactor?: number; warmupEpochs?: number }
  | { name: 'onecycle'; pctStart?: number; divFactor?: number; finalDivFactor?: number };

/** LR factor at a (fractional) epoch position: epoch + batchIndex / batchesPerEpoch. */
export type Schedule = (epochPos: number) => number;

export function makeSchedule(spec: ScheduleSpec, totalEpochs: number): Schedule {
  const warm = 'warmupEpochs' in spec ? spec.warmupEpochs ?? 0 : 0;
  const base = ((): Schedule => {
    switch (spec.name) {
      case 'constant':
        return () => 1;
      case 'step': {
        const g = spec.gamma ?? 0.1;
        return (e) => g ** Math.floor(e / spec.stepEpochs);
      }
      case 'multistep': {
        const g = spec.gamma ?? 0.1;
        const ms = [...spec.milestones].sort((a, b) => a - b);
        return (e) => g ** ms.filter((m) => e >= m).length;
      }
      case 'cosine': {
        const min = spec.minFactor ?? 0;
        return (e) => min + (1 - min) * 0.5 * (1 + Math.cos((Math.PI * Math.min(e, totalEpochs)) / totalEpochs));
      }
      case 'onecycle': {
        // As torch.optim.lr_scheduler.OneCycleLR with cosine annealing, in units of the max LR.
        const pct = spec.pctStart ?? 0.3, div = spec.divFactor ?? 25, fdiv = spec.finalDivFactor ?? 1e4;
        const up = pct * totalEpochs;
        const cos = (a: number, b: number, t: number): number => b + ((a - b) / 2) * (1 + Math.cos(Math.PI * t));
        return (e) => (e < up ? cos(1 / div, 1, e / up) : cos(1, 1 / (div * fdiv), Math.min(1, (e - up) / (totalEpochs - up))));
      }
    }
  })();
  if (warm <= 0) return base;
  // Linear warm-up from 0 to the schedule's value, as in Goyal et al. 2017.
  return (e) => (e < warm ? base(e) * (e / warm) : base(e));
}

export function validateSchedule(s: unknown, where: string): ScheduleSpec {
  const fail = (m: string): never => { throw new Error(`${where}: ${m}`); };
  if (typeof s !== 'object' || s === null) fail('must be a mapping with a name (constant, step, multistep, cosine, onecycle)');
  const o = s as Record<string, unknown>;
  const allowed: Record<string, string[]> = {
    constant: ['warmupEpochs'], step: ['stepEpochs', 'gamma', 'warmupEpochs'], multistep: ['milestones', 'gamma', 'warmupEpochs'],
    cosine: ['minFactor', 'warmupEpochs'], onecycle: ['pctStart', 'divFactor', 'finalDivFactor'],
  };
  const keys = allowed[String(o.name)];
  if (!keys) fail(`unknown schedule name '${String(o.name)}' (known: ${Object.keys(allowed).join(', ')})`);
  for (const k of Object.keys(o)) if (k !== 'name' && !keys!.includes(k)) fail(`unknown key '${k}' for schedule '${String(o.name)}' (allowed: ${keys!.join(', ')})`);
  for (const k of ['warmupEpochs', 'gamma', 'stepEpochs', 'minFactor', 'pctStart', 'divFactor', 'finalDivFactor']) {
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || (o[k] as number) < 0)) fail(`'${k}' must be a number >= 0`);
  }
  if (o.name === 'step' && !(typeof o.stepEpochs === 'number' && o.stepEpochs > 0)) fail(`'stepEpochs' must be a number > 0`);
  if (o.name === 'multistep' && !(Array.isArray(o.milestones) && o.milestones.every((m) => typeof m === 'number'))) fail(`'milestones' must be a list of epochs`);
  return o as unknown as ScheduleSpec;
}
