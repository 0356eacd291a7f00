// Multi-step distillation (teacher → assistant(s) → student; Mirzadeh et al., "Improved Knowledge
// Distillation via Teacher Assistant", AAAI 2020) as a composition of ordinary runs. A chain file
// is an experiment file with a top-level `stages:` list:
//
//   name: ta-chain                    # shared defaults: any experiment key
//   teacher: { checkpoint: big.safetensors }
//   method: { name: kd }
//   output: runs/ta-chain
//   stages:
//     - { name: assistant, student: { arch: mlp, hidden: [256] } }
//     - { name: student,   student: { arch: mlp, hidden: [32] } }
//
// Stage i is the shared keys with the stage's keys on top (`data` is merged key by key, every
// other key is replaced whole); stage 0 uses the file's teacher (or none: then it trains from
// scratch), stage i > 0 distills from stage i−1's model.safetensors. A stage i > 0 with
// `init: previous` instead STARTS from stage i−1's weights and keeps its own teacher (the file's,
// or one the stage names): FitNets' stage 2, KD of the whole student from the hint stage's
// initialisation, distilling from the original teacher (experiments/features/cnn-fitnet-2stage.yaml). Each stage writes an
// ordinary run folder <output>/stage<i>-<name>/ plus stage.json (its config hash). A stage whose
// model.safetensors and result.json exist and whose hash matches is skipped on a rerun; the hash
// covers the merged config and the teacher's weights, so redoing a stage redoes those after it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isChainDocument, parseExperiment, readExperimentDocument, type Experiment } from '../config/experiment.js';
import { ConfigError, type Obj } from '../config/validate.js';
import { fileSha256 } from '../data/errors.js';
import { loadModel } from '../nn/safetensors.js';
import type { ZooModel } from '../nn/zoo/index.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import { formatTable } from '../train/table.js';
import { readLogEpochs, type TrainResult } from '../train/trainer.js';
import { loadTeachers, num, pct, runExperiment, type ExperimentResult, type RunOptions } from './experiment.js';

export interface PlannedStage {
  index: number;
  name: string;
  dir: string;
  /** The merged, validated experiment of this stage. */
  experiment: Experiment;
}

export interface StageOutcome {
  index: number;
  name: string;
  dir: string;
  skipped: boolean;
  hash: string;
  test: Record<string, number> | null;
}

export interface ChainResult extends ExperimentResult {
  stages: StageOutcome[];
}

const STAGE_NAME = /^[A-Za-z0-9._-]+$/;

/** Shared keys, then the stage's: `data` merged key by key (and its `augment`), others replaced. */
function mergeStage(base: Obj, stage: Obj): Obj {
  const out: Obj = { ...base, ...stage };
  const bd = base.data as Obj | undefined, sd = stage.data as Obj | undefined;
  if (isObj(bd) && isObj(sd)) {
    out.data = { ...bd, ...sd };
    if (isObj(bd.augment) && isObj(sd.augment)) (out.data as Obj).augment = { ...bd.augment, ...sd.augment };
  }
  return out;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates every stage before anything runs; later stages' teachers are the earlier outputs. */
export function planChain(raw: unknown, file: string, source = '', overrides: Record<string, unknown> = {}): { name: string; output: string; stages: PlannedStage[] } {
  if (!isObj(raw)) throw new ConfigError(file, '', 'must be a mapping');
  const { stages, ...shared } = raw;
  if (!Array.isArray(stages) || stages.length === 0) throw new ConfigError(file, 'stages', 'must be a non-empty list of stages (each a partial experiment)');
  const base = dirname(resolve(file));
  const name = typeof shared.name === 'string' ? shared.name : (file.split('/').pop() ?? 'chain').replace(/\.ya?ml$/, '');
  const outRaw = (overrides.output ?? shared.output) as unknown;
  if (outRaw !== undefined && typeof outRaw !== 'string') throw new ConfigError(file, 'output', 'must be a folder path');
  const output = outRaw === undefined ? resolve('runs', name) : isAbsolute(outRaw) ? outRaw : resolve(base, outRaw);
  const { output: _o, ...rest } = overrides;
  const seen = new Set<string>();
  const planned = stages.map((s, i): PlannedStage => {
    if (!isObj(s)) throw new ConfigError(file, `stages.${i}`, 'must be a mapping of experiment keys');
    if ('stages' in s) throw new ConfigError(file, `stages.${i}.stages`, 'stages cannot nest');
    if ('output' in s) throw new ConfigError(file, `stages.${i}.output`, 'is set by the chain: <output>/stage<i>-<name>');
    const stageName = s.name === undefined ? `stage${i}` : s.name;
    if (typeof stageName !== 'string' || !STAGE_NAME.test(stageName)) throw new ConfigError(file, `stages.${i}.name`, 'must be letters, digits, ., _ or - (it names the stage folder)');
    if (seen.has(stageName)) throw new ConfigError(file, `stages.${i}.name`, `repeats '${stageName}'`);
    seen.add(stageName);
    const dir = join(output, `stage${i}-${stageName}`);
    const merged = mergeStage(shared, s);
    Object.assign(merged, rest); // command-line overrides (--epochs, --seed, ...) win over both
    const initPrevious = s.init === 'previous';
    if (initPrevious) {
      if (i === 0) throw new ConfigError(file, 'stages.0.init', "is 'previous', but stage 0 has no previous stage");
      // The previous stage's student is the starting point; the teacher stays the merged one.
      merged.init = { from: join(stageDir(output, stages, i - 1), 'model.safetensors') };
    } else if (shared.init === 'previous') {
      throw new ConfigError(file, 'init', "'previous' is a stage key (stages.<i>.init), not a shared one");
    }
    if (i > 0 && !initPrevious) {
      if ('teacher' in s || 'teachers' in s) {
        throw new ConfigError(file, `stages.${i}.teacher`, `is stage ${i - 1}'s model; only stage 0 names a teacher (or give the stage init: previous to start from stage ${i - 1}'s weights and keep a teacher of its own)`);
      }
      delete merged.teachers;
      delete merged.teacherWeights;
      merged.teacher = { checkpoint: join(stageDir(output, stages, i - 1), 'model.safetensors') };
    }
    merged.name = `${name}-${stageName}`;
    merged.output = dir;
    return { index: i, name: stageName, dir, experiment: parseExperiment(merged, file, source) };
  });
  return { name, output, stages: planned };
}

function stageDir(output: string, stages: unknown[], i: number): string {
  const s = stages[i] as Obj;
  return join(output, `stage${i}-${typeof s.name === 'string' ? s.name : `stage${i}`}`);
}

/**
 * sha256 over the stage's validated config (not its folder or file name), its teachers' weights
 * and the weights it starts from (`init` from a file: after `init: previous`, the previous stage's).
 */
export function stageHash(e: Experiment): string {
  const { file: _f, source: _s, output: _o, ...config } = e;
  const bytes = (p: string): string => (existsSync(p) ? fileSha256(p) : `missing:${p}`);
  // Whatever kind of teacher file it is (checkpoint, TorchScript, ONNX, ...), its bytes count.
  const teachers = e.teachers.map((t) => bytes(Object.values(t).find((v): v is string => typeof v === 'string') ?? ''));
  const init = e.init?.from === 'file' ? bytes(e.init.path) : null;
  return createHash('sha256').update(stableJson({ config, teachers, ...(init ? { init } : {}) })).digest('hex');
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

interface StageRecord { index: number; name: string; hash: string; complete: boolean }

function readStageRecord(dir: string): StageRecord | null {
  const p = join(dir, 'stage.json');
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as StageRecord;
  } catch {
    return null;
  }
}

export function isStageDone(dir: string, hash: string): boolean {
  const r = readStageRecord(dir);
  return r !== null && r.complete && r.hash === hash && existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'result.json'));
}

export async function runChainFile(file: string, o: RunOptions): Promise<ChainResult> {
  const { raw, source } = readExperimentDocument(file);
  if (!isChainDocument(raw)) throw new ConfigError(file, '', "has no 'stages' list; run it as a single experiment");
  return runChain(planChain(raw, file, source, o.overrides), o);
}

/** Runs the stages in order, skipping those already finished with the same config and teacher. */
export async function runChain(plan: { name: string; output: string; stages: PlannedStage[] }, o: RunOptions): Promise<ChainResult> {
  ensureDir(plan.output, `${plan.name}: 'output'`);
  const outcomes: StageOutcome[] = [];
  let last: ExperimentResult | null = null;
  for (const st of plan.stages) {
    const e = st.experiment;
    const hash = stageHash(e); // after the previous stage ran, so it covers that stage's weights
    const rec = readStageRecord(st.dir);
    if (o.resume !== false && isStageDone(st.dir, hash)) {
      if (process.env.KDISTILL_QUIET !== '1') process.stderr.write(`${plan.name}: stage ${st.index} (${st.name}) is complete in ${st.dir}; skipped\n`);
      const result = JSON.parse(readFileSync(join(st.dir, 'result.json'), 'utf8')) as { test: Record<string, number> | null };
      outcomes.push({ index: st.index, name: st.name, dir: st.dir, skipped: true, hash, test: result.test });
      last = null;
      continue;
    }
    // A checkpoint left by an interrupted run of this same stage is resumed; one from another
    // config would not fit (or would silently continue the wrong run), so it is started over.
    const resume = o.resume !== false && rec !== null && rec.hash === hash;
    ensureDir(st.dir, `${plan.name}: 'output'`);
    atomicWrite(join(st.dir, 'stage.json'), JSON.stringify({ index: st.index, name: st.name, hash, complete: false }, null, 2) + '\n');
    last = await runExperiment(e, { ...o, mode: e.teachers.length ? 'distill' : 'train', resume });
    atomicWrite(join(st.dir, 'stage.json'), JSON.stringify({ index: st.index, name: st.name, hash, complete: true }, null, 2) + '\n');
    const test = last.result.final ? { ...last.result.final } as unknown as Record<string, number> : null;
    outcomes.push({ index: st.index, name: st.name, dir: st.dir, skipped: false, hash, test });
  }
  atomicWrite(join(plan.output, 'chain.json'), JSON.stringify({ name: plan.name, stages: outcomes }, null, 2) + '\n');
  const final = last ?? loadFinishedStage(plan.stages[plan.stages.length - 1]!);
  const summary = formatTable(
    ['stage', 'run', 'method', 'params', 'test acc', 'NLL', 'ECE', 'agreement', ''],
    outcomes.map((s, i) => {
      const e = plan.stages[i]!.experiment;
      const t = s.test ?? {};
      const params = JSON.parse(readFileSync(join(s.dir, 'result.json'), 'utf8')) as { studentParameters?: number };
      return [String(s.index), s.name, e.method.name, String(params.studentParameters ?? ''), pct(t.accuracy), num(t.nll), num(t.ece), pct(t.agreement), s.skipped ? 'skipped (done)' : ''];
    }),
  ) + `\noutputs: ${plan.output}`;
  return { ...final, summary, stages: outcomes };
}

/** The ExperimentResult of a stage that a previous invocation finished. */
function loadFinishedStage(st: PlannedStage): ExperimentResult {
  const e = st.experiment;
  const { model } = loadModel<ZooModel>(join(st.dir, 'model.safetensors'));
  const rec = JSON.parse(readFileSync(join(st.dir, 'result.json'), 'utf8')) as { steps: number; test: TrainResult['final'] | null };
  const result: TrainResult = { epochs: readLogEpochs(st.dir), steps: rec.steps, interrupted: false, ...(rec.test ? { final: rec.test } : {}) };
  const numClasses = Number(model.spec.numClasses);
  return { experiment: e, result, student: model, teacher: loadTeachers(e, numClasses), summary: '' };
}
