// The specialists file of `kdistill specialists` (Hinton et al. 2015, section 5): the generalist,
// how confusable subsets are found, how each specialist is fine-tuned, how the ensemble is
// evaluated. Validated whole before anything runs; src/run/specialists.ts carries it out.
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ScheduleSpec } from '../optim/schedules.js';
import type { OptimizerSpec } from '../optim/optimizer.js';
import type { SolverOptions } from '../teachers/specialists/combine.js';
import { readExperimentDocument } from './experiment.js';
import { Checker } from './validate.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_SEED, DEFAULT_THREADS, SPECIALIST_EPOCHS, SPECIALIST_OPTIMIZER } from './defaults.js';
import { parseOptimizer, parseSchedule } from './optimizer.js';

export interface SpecialistsConfig {
  file: string;
  name: string;
  seed: number;
  threads: number;
  generalist: string;
  data: { dataset: 'fashion-mnist' | 'mnist'; path?: string };
  subsets: { method: 'covariance' | 'confusion' | 'manual'; normalize: 'none' | 'correlation'; clusters: number; maxSubsets: number; restarts: number; manual?: number[][] };
  specialist: {
    epochs: number; samplesPerEpoch: number; subsetFraction: number; batchSize: number;
    augment: { crop: number; flip: boolean }; optimizer: OptimizerSpec; schedule: ScheduleSpec;
  };
  inference: SolverOptions & { topN: number };
  evaluation: { solverSteps: number[]; referenceSteps: number; topN: number[] };
  output: string;
}

const TOP = ['name', 'seed', 'threads', 'generalist', 'data', 'subsets', 'specialist', 'inference', 'evaluation', 'output'];

export function loadSpecialistsConfig(file: string): SpecialistsConfig {
  const { raw } = readExperimentDocument(file);
  const c = new Checker(file);
  const o = c.object(raw, '', TOP);
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(dirname(resolve(file)), p));
  const d = c.object(o.data ?? {}, 'data', ['dataset', 'path']);
  const data: SpecialistsConfig['data'] = { dataset: c.string(d, 'dataset', 'data', { choices: ['fashion-mnist', 'mnist'], default: 'fashion-mnist' }) as 'fashion-mnist' };
  const path = c.optString(d, 'path', 'data');
  if (path) data.path = rel(path);
  const s = c.object(o.subsets ?? {}, 'subsets', ['method', 'normalize', 'clusters', 'maxSubsets', 'restarts', 'manual']);
  const method = c.string(s, 'method', 'subsets', { choices: ['covariance', 'confusion', 'manual'], default: 'covariance' }) as SpecialistsConfig['subsets']['method'];
  const subsets: SpecialistsConfig['subsets'] = {
    method, clusters: c.number(s, 'clusters', 'subsets', { int: true, min: 1, default: 5 }),
    // The paper clusters the raw covariance; 'correlation' divides out each class's variance.
    normalize: c.string(s, 'normalize', 'subsets', { choices: ['none', 'correlation'], default: 'none' }) as 'none' | 'correlation',
    maxSubsets: c.number(s, 'maxSubsets', 'subsets', { int: true, min: 1, default: 3 }),
    restarts: c.number(s, 'restarts', 'subsets', { int: true, min: 1, default: 20 }),
  };
  if (method === 'manual') {
    if (!Array.isArray(s.manual) || !s.manual.every((x) => Array.isArray(x) && x.every((v) => typeof v === 'number'))) c.fail('subsets.manual', "is required for method 'manual': a list of class-id lists, e.g. [[0, 2, 4, 6]]");
    subsets.manual = s.manual as number[][];
  } else if (s.manual !== undefined) c.fail('subsets.manual', "applies to method 'manual' only");
  if (subsets.normalize !== 'none' && method !== 'covariance') c.fail('subsets.normalize', "applies to method 'covariance' only");
  const sp = c.object(o.specialist ?? {}, 'specialist', ['epochs', 'samplesPerEpoch', 'subsetFraction', 'batchSize', 'augment', 'optimizer', 'schedule']);
  const aug = c.object(sp.augment ?? {}, 'specialist.augment', ['crop', 'flip']);
  const optimizer = parseOptimizer(c, sp.optimizer, 'specialist.optimizer', SPECIALIST_OPTIMIZER);
  const schedule = parseSchedule(c, sp.schedule, 'specialist.schedule');
  const inf = c.object(o.inference ?? {}, 'inference', ['topN', 'solver', 'steps', 'lr']);
  const ev = c.object(o.evaluation ?? {}, 'evaluation', ['solverSteps', 'referenceSteps', 'topN']);
  const topN = c.number(inf, 'topN', 'inference', { int: true, min: 1, default: 1 });
  const name = c.string(o, 'name', '', { default: (file.split('/').pop() ?? 'specialists').replace(/\.ya?ml$/, '') });
  return {
    file, name, data, subsets,
    seed: c.number(o, 'seed', '', { int: true, min: 0, default: DEFAULT_SEED }),
    threads: c.number(o, 'threads', '', { int: true, min: 1, max: 256, default: DEFAULT_THREADS }),
    generalist: rel(c.string(o, 'generalist', '')),
    specialist: {
      epochs: c.number(sp, 'epochs', 'specialist', { int: true, min: 1, default: SPECIALIST_EPOCHS }),
      samplesPerEpoch: c.number(sp, 'samplesPerEpoch', 'specialist', { int: true, min: 1, default: 12000 }),
      subsetFraction: c.number(sp, 'subsetFraction', 'specialist', { min: 0, max: 0.99, default: 0.5 }),
      batchSize: c.number(sp, 'batchSize', 'specialist', { int: true, min: 1, default: DEFAULT_BATCH_SIZE }),
      augment: { crop: c.number(aug, 'crop', 'specialist.augment', { int: true, min: 0, default: 0 }), flip: c.bool(aug, 'flip', 'specialist.augment', false) },
      optimizer, schedule,
    },
    inference: {
      topN, solver: c.string(inf, 'solver', 'inference', { choices: ['adam', 'em'], default: 'em' }) as 'adam' | 'em',
      steps: c.number(inf, 'steps', 'inference', { int: true, min: 0, default: 10 }),
      lr: c.number(inf, 'lr', 'inference', { min: 1e-9, default: 0.5 }),
    },
    evaluation: {
      solverSteps: c.numberList(ev, 'solverSteps', 'evaluation') ?? [0, 1, 2, 5, 10, 20, 50, 100],
      referenceSteps: c.number(ev, 'referenceSteps', 'evaluation', { int: true, min: 1, default: 3000 }),
      topN: c.numberList(ev, 'topN', 'evaluation') ?? [topN],
    },
    output: o.output !== undefined ? rel(c.string(o, 'output', '')) : resolve('runs', name),
  };
}
