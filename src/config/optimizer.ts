// The `optimizer:` and `schedule:` sections, parsed once for every file format that trains
// (experiment files and the specialists file), with the defaults of src/config/defaults.ts.
import { validateSchedule, type ScheduleSpec } from '../optim/schedules.js';
import type { OptimizerSpec } from '../optim/optimizer.js';
import type { Checker } from './validate.js';
import { DEFAULT_SCHEDULE } from './defaults.js';

const OPTIMIZER_KEYS = ['name', 'lr', 'momentum', 'nesterov', 'weightDecay', 'betas', 'maxNorm'];

/** `raw` (undefined: `fallback`) as an OptimizerSpec; `path` names the section in errors. */
export function parseOptimizer(c: Checker, raw: unknown, path: string, fallback: Readonly<OptimizerSpec>): OptimizerSpec {
  const op = c.object(raw ?? { ...fallback }, path, OPTIMIZER_KEYS);
  const optimizer: OptimizerSpec = {
    name: c.string(op, 'name', path, { choices: ['sgd', 'adam', 'adamw'] }) as OptimizerSpec['name'],
    lr: c.number(op, 'lr', path, { min: 0 }),
  };
  const mom = c.optNumber(op, 'momentum', path, { min: 0, max: 1 });
  if (mom !== undefined) optimizer.momentum = mom;
  optimizer.nesterov = c.bool(op, 'nesterov', path, false);
  if (optimizer.nesterov && !(optimizer.momentum && optimizer.momentum > 0)) c.fail(`${path}.nesterov`, 'needs momentum > 0');
  const wd = c.optNumber(op, 'weightDecay', path, { min: 0 });
  if (wd !== undefined) optimizer.weightDecay = wd;
  const maxNorm = c.optNumber(op, 'maxNorm', path);
  if (maxNorm !== undefined) {
    if (!(maxNorm > 0)) c.fail(`${path}.maxNorm`, `must be > 0: the bound on each unit's incoming weight norm (got ${maxNorm})`);
    optimizer.maxNorm = maxNorm;
  }
  const betas = c.numberList(op, 'betas', path);
  if (betas) {
    if (betas.length !== 2 || betas.some((b) => b < 0 || b >= 1)) c.fail(`${path}.betas`, 'must be two numbers in [0, 1)');
    optimizer.betas = [betas[0]!, betas[1]!];
  }
  if (optimizer.name !== 'sgd' && mom !== undefined) c.fail(`${path}.momentum`, `applies to sgd only (use betas for ${optimizer.name})`);
  return optimizer;
}

/** `raw` (undefined: the default schedule) as a ScheduleSpec. */
export function parseSchedule(c: Checker, raw: unknown, path: string): ScheduleSpec {
  if (raw === undefined) return { ...DEFAULT_SCHEDULE };
  try {
    return validateSchedule(raw, path);
  } catch (e) {
    return c.fail('', (e as Error).message);
  }
}
