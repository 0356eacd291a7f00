// `kdistill sweep` (docs/sweep.md): hyper-parameter search over an experiment file. Every trial
// trains on the training split less a validation split held out of it (data.heldOut: seeded by
// the experiment's seed, stratified by class) and is scored there; trials run with
// RunOptions.validationOnly, so the test split is not even loaded. The best setting is written as
// a complete experiment file (best.yaml), then trained on the seeds asked for and scored on the
// test set once, through compare. Trials run in parallel processes (sweep-worker.ts), each in a
// folder named by a hash of its full resolved settings, so a finished trial is reused by a rerun
// and never by a sweep of another experiment.
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseDocument, stringify as stringifyYaml } from 'yaml';
import { isChainDocument, isTextDataset, parseExperiment, readExperimentDocument, type Experiment } from '../config/experiment.js';
import { ConfigError, type Obj } from '../config/validate.js';
import { expandTrials, maximised, mergeSweepSpecs, parseSweepBlock, withSettings, type SweepMetric, type SweepParam, type SweepSpec, type TrialSettings } from '../config/sweep.js';
import { getMethod } from '../methods/registry.js';
import { runSettings } from '../train/resume.js';
import { readLogEpochs } from '../train/trainer.js';
import { formatTable } from '../train/table.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import { lockFolder } from '../util/lock.js';
import { compare, type CompareRow } from './compare.js';
import { resolveMethod, type RunOptions } from './experiment.js';
import type { TrialOutcome, TrialRequest } from './sweep-trial.js';

const WORKER = fileURLToPath(new URL('./sweep-worker.js', import.meta.url));

/**
 * Settings that do not define what a trial computes, left out of its key: where it is written, its
 * label, its thread count (a sweep may run with other --jobs) and when it checkpoints.
 */
const NOT_IN_KEY = ['output', 'name', 'threads', 'checkpointEvery'];

/** The median rule waits for this many finished trials at an epoch (fewer make a noisy median). */
export const MEDIAN_MIN_TRIALS = 3;

export interface SweepOptions {
  /** Search parameters and options from the command line, laid over the file's `sweep:` block. */
  cli?: Partial<SweepSpec>;
  /** Seeds the chosen setting is trained on and scored on the test set with; [] stops after choosing. */
  seeds: number[];
  /** Trial processes at once (default: the machine's cores at one thread each). */
  jobs?: number;
  /** libtorch threads of each trial process (default 1). */
  threads?: number;
  /** The sweep folder (default: the experiment's output folder + '-sweep'). */
  out?: string;
  /** Writes each final run's report (see RunOptions). */
  report?: RunOptions['report'];
}

interface Trial {
  index: number;
  key: string;
  dir: string;
  settings: TrialSettings;
  doc: Obj;
  experiment: Experiment;
}

export interface SweepPlan {
  file: string;
  name: string;
  dir: string;
  mode: 'train' | 'distill';
  params: SweepParam[];
  /** Random search: samples drawn, and their seed. */
  random: { trials: number; seed: number } | null;
  metric: SweepMetric;
  earlyStop: 'off' | 'median';
  /** data.heldOut of every trial: a count, or a fraction of the training set. */
  validation: number;
  /** Seed of the validation split (the experiment's seed: every trial has the same split). */
  splitSeed: number;
  trials: Trial[];
  /** The experiment file's text (best.yaml is it with the chosen settings). */
  source: string;
}

export interface TrialRow {
  trial: number;
  key: string;
  dir: string;
  settings: TrialSettings;
  status: 'finished' | 'stopped' | 'failed';
  /** Done by an earlier run of the sweep. */
  reused: boolean;
  /** The validation metric (stopped trials: at the epoch they stopped). */
  value: number | null;
  seconds: number | null;
  stopped?: { epoch: number; value: number; median: number };
  error?: string;
}

export interface SweepRecord {
  experiment: string;
  name: string;
  metric: SweepMetric;
  direction: 'max' | 'min';
  /** The validation split: samples held out of the training set (seeded, stratified by class); never the test set. */
  validation: { heldOut: number; samples: number | null; seed: number; stratified: true; from: 'training split' };
  search: { params: SweepParam[]; random: { trials: number; seed: number } | null };
  earlyStop: { rule: 'off' | 'median'; minTrials: number };
  jobs: number;
  threadsPerJob: number;
  trials: TrialRow[];
  best: { trial: number; key: string; settings: TrialSettings; value: number; file: string } | null;
  /** The chosen setting on the seeds asked for, scored on the test set (compare's table). */
  final: { seeds: number[]; runs: CompareRow['runs']; table: string } | null;
}

export interface SweepResult {
  dir: string;
  record: SweepRecord;
  /** The trial table (markdown), and compare's table of the final runs after it. */
  table: string;
  bestFile: string | null;
}

/** Settings as one line: `optimizer.lr=0.1, method.params.temperature=4`. */
export function describeSettings(s: TrialSettings): string {
  return Object.entries(s).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
}

function trialKey(e: Experiment): string {
  const s = runSettings(e);
  for (const k of NOT_IN_KEY) delete s[k];
  return createHash('sha256').update(JSON.stringify(s)).digest('hex').slice(0, 12);
}

/**
 * Reads and checks everything before any trial trains: the experiment file (its sweep block too),
 * the search (paths in the file, a non-empty grid), and every trial's settings through the full
 * experiment validation and the method's hyper-parameter declarations.
 */
export function planSweep(file: string, o: Pick<SweepOptions, 'cli' | 'out' | 'threads'> = {}): SweepPlan {
  const { raw, source } = readExperimentDocument(file);
  if (isChainDocument(raw)) throw new ConfigError(file, 'stages', "makes this a chain of runs: sweep one stage's experiment file");
  const base = parseExperiment(raw, file, source);
  const mode = base.teachers.length ? 'distill' : 'train';
  resolveMethod(base, { mode, validationOnly: true });
  if (isTextDataset(base.data.dataset)) throw new ConfigError(file, 'data.dataset', `is '${base.data.dataset}': sweeps run on image and csv data (text datasets are not supported yet)`);
  if (base.data.transfer !== 'train') throw new ConfigError(file, 'data.transfer', `is '${base.data.transfer}': a sweep holds its validation split out of the training set, which needs transfer 'train'`);
  const doc = { ...(raw as Obj) };
  delete doc.sweep;
  const spec = mergeSweepSpecs((raw as Obj).sweep !== undefined ? parseSweepBlock((raw as Obj).sweep, file) : null, o.cli ?? {});
  const metric = spec.metric ?? 'accuracy';
  if (metric === 'agreement' && base.teachers.length === 0) throw new ConfigError(file, 'sweep.metric', "is 'agreement' (with the teacher), but the experiment has no teacher");
  // The file's own validation split when it has one, else a tenth of the training set.
  const validation = spec.validation ?? (base.data.heldOut > 0 ? base.data.heldOut : 0.1);
  doc.data = { ...((doc.data as Obj | undefined) ?? {}), heldOut: validation };
  const randomSeed = spec.seed ?? base.seed;
  const settings = expandTrials(spec, doc, file, randomSeed, (m) => Object.keys(getMethod(m).params));
  const dir = resolve(o.out ?? `${base.output}-sweep`);
  const trials = settings.map((s, index): Trial => {
    const tdoc = withSettings(doc, s);
    let e: Experiment;
    try {
      e = parseExperiment(tdoc, file, stringifyYaml(tdoc));
      resolveMethod(e, { mode, validationOnly: true });
    } catch (err) {
      throw new Error(`sweep trial ${index + 1} (${describeSettings(s)}): ${(err as Error).message}`);
    }
    const key = trialKey(e);
    const tdir = join(dir, 'trials', key);
    const full = { ...tdoc, name: `${base.name}-${key}`, output: tdir, threads: o.threads ?? 1 };
    return { index, key, dir: tdir, settings: s, doc: full, experiment: parseExperiment(full, file, stringifyYaml(full)) };
  });
  const random = spec.params.some((p) => p.search === 'random') ? { trials: spec.trials!, seed: randomSeed } : null;
  return { file, name: base.name, dir, mode, params: spec.params, random, metric, earlyStop: spec.earlyStop ?? 'off', validation, splitSeed: base.seed, trials, source };
}

/** Runs the sweep (resuming one that ran before in the same folder): trials, table, best.yaml, the final seeds. */
export async function sweep(file: string, o: SweepOptions): Promise<SweepResult> {
  const plan = planSweep(file, o);
  ensureDir(plan.dir, 'the sweep folder');
  const lock = lockFolder(plan.dir, file);
  try {
    return await runPlan(plan, o);
  } finally {
    lock.release();
  }
}

function readJson<T>(path: string): T | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : null;
}

/** A trial done by an earlier run of the sweep (finished or stopped), or null. */
function doneBefore(t: Trial): TrialOutcome | null {
  const out = readJson<TrialOutcome>(join(t.dir, 'trial.json'));
  if (out?.status === 'stopped') return out;
  return out?.status === 'finished' && existsSync(join(t.dir, 'result.json')) ? out : null;
}

function runTrialProcess(t: Trial, req: TrialRequest): Promise<TrialOutcome> {
  return new Promise((res) => {
    // Quiet: several trials' progress bars would interleave; the sweep reports each trial's end.
    const child = fork(WORKER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, KDISTILL_QUIET: '1' }, execArgv: [] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000); });
    let out: TrialOutcome | null = null;
    child.on('message', (m) => { out = m as TrialOutcome; });
    child.on('exit', (code, signal) => {
      if (stderr) atomicWrite(join(t.dir, 'trial.log'), stderr);
      const last = stderr.trim().split('\n').pop() ?? '';
      res(out ?? { status: 'failed', seconds: 0, error: `the trial process ended (${signal ?? `exit code ${code}`}) without a result${last ? `: ${last}` : ''}` });
    });
    child.send(req);
  });
}

async function runPlan(plan: SweepPlan, o: SweepOptions): Promise<SweepResult> {
  const quiet = process.env.KDISTILL_QUIET === '1' || Boolean(process.env.CI);
  const say = (line: string): void => { if (!quiet) process.stderr.write(`sweep: ${line}\n`); };
  const threads = o.threads ?? 1;
  // Identical settings (a value listed twice, a repeated random draw) train once.
  const unique = [...new Map(plan.trials.map((t) => [t.key, t])).values()];
  const outcomes = new Map<string, { out: TrialOutcome; reused: boolean }>();
  for (const t of unique) {
    const out = doneBefore(t);
    if (out) outcomes.set(t.key, { out, reused: true });
  }
  const pending = unique.filter((t) => !outcomes.has(t.key));
  const jobs = Math.max(1, Math.min(o.jobs ?? Math.max(1, Math.floor(availableParallelism() / threads)), pending.length || 1));
  const maximise = maximised(plan.metric);
  const curvesFile = join(plan.dir, 'curves.json');
  // The median rule's input: every finished trial's validation metric per epoch.
  const writeCurves = (): void => {
    const curves: Record<string, number[]> = {};
    for (const t of unique) {
      if (outcomes.get(t.key)?.out.status !== 'finished') continue;
      curves[t.key] = readLogEpochs(t.dir).map((r) => (r.eval as Record<string, number> | undefined)?.[plan.metric]).filter((v): v is number => typeof v === 'number');
    }
    atomicWrite(curvesFile, JSON.stringify(curves) + '\n');
  };
  if (plan.earlyStop === 'median') writeCurves();
  say(`${plan.trials.length} trial${plan.trials.length === 1 ? '' : 's'} (${unique.length - pending.length} done before), ${jobs} at a time; validation split: data.heldOut ${plan.validation} of the training set (seed ${plan.splitSeed}); folder ${plan.dir}`);
  let next = 0, done = 0;
  const worker = async (): Promise<void> => {
    while (next < pending.length) {
      const t = pending[next++]!;
      const req: TrialRequest = {
        file: plan.file, doc: t.doc, mode: plan.mode,
        earlyStop: plan.earlyStop === 'median' ? { curvesFile, metric: plan.metric, maximise, minTrials: MEDIAN_MIN_TRIALS } : null,
      };
      const out = await runTrialProcess(t, req);
      outcomes.set(t.key, { out, reused: false });
      if (out.status === 'finished' && plan.earlyStop === 'median') writeCurves();
      done++;
      const v = out.status === 'stopped' ? ` at epoch ${out.stopped!.epoch + 1} (${plan.metric} ${fmtValue(plan.metric, out.stopped!.value)} < median ${fmtValue(plan.metric, out.stopped!.median)})` : out.status === 'failed' ? `: ${out.error}` : ` in ${out.seconds.toFixed(1)} s`;
      say(`[${done}/${pending.length}] trial ${t.index + 1} ${out.status}${v}  {${describeSettings(t.settings)}}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, pending.length) }, worker));

  const rows = plan.trials.map((t): TrialRow => {
    const { out, reused } = outcomes.get(t.key)!;
    const res = out.status === 'finished' ? readJson<{ val?: Record<string, number> }>(join(t.dir, 'result.json')) : null;
    const value = out.status === 'finished' ? res?.val?.[plan.metric] ?? null : out.status === 'stopped' ? out.stopped!.value : null;
    return {
      trial: t.index + 1, key: t.key, dir: t.dir, settings: t.settings, status: out.status, reused, value, seconds: out.seconds,
      ...(out.stopped ? { stopped: out.stopped } : {}), ...(out.error ? { error: out.error } : {}),
    };
  });
  // The best finished trial (stopped ones were worse than the median); ties go to the earlier trial.
  let best: TrialRow | null = null;
  for (const r of rows) {
    if (r.status !== 'finished' || r.value === null) continue;
    if (!best || (maximise ? r.value > best.value! : r.value < best.value!)) best = r;
  }
  const samples = best ? readJson<{ data?: { sizes?: { val?: number } } }>(join(best.dir, 'run.json'))?.data?.sizes?.val ?? null : null;
  const bestFile = best ? join(plan.dir, 'best.yaml') : null;
  if (best) writeBest(plan, plan.trials[best.trial - 1]!, best, bestFile!);
  const record: SweepRecord = {
    experiment: resolve(plan.file), name: plan.name, metric: plan.metric, direction: maximise ? 'max' : 'min',
    validation: { heldOut: plan.validation, samples, seed: plan.splitSeed, stratified: true, from: 'training split' },
    search: { params: plan.params, random: plan.random }, earlyStop: { rule: plan.earlyStop, minTrials: MEDIAN_MIN_TRIALS },
    jobs, threadsPerJob: threads, trials: rows,
    best: best ? { trial: best.trial, key: best.key, settings: best.settings, value: best.value!, file: bestFile! } : null,
    final: null,
  };
  const writeRecord = (): string => {
    const table = trialTable(record);
    atomicWrite(join(plan.dir, 'sweep.json'), JSON.stringify(record, null, 2) + '\n');
    atomicWrite(join(plan.dir, 'sweep.md'), table + '\n');
    return table;
  };
  let table = writeRecord();
  if (!best) throw new Error(`sweep: no trial finished (see the table in ${join(plan.dir, 'sweep.md')} and each trial's trial.log)`);
  if (o.seeds.length > 0) {
    say(`best: trial ${best.trial} {${describeSettings(best.settings)}}; training it on seeds ${o.seeds.join(', ')} and scoring it on the test set`);
    const final = await compare([bestFile!], o.seeds, undefined, o.report ? { report: o.report } : {});
    record.final = { seeds: o.seeds, runs: final.rows[final.rows.length - 1]!.runs, table: final.table };
    table = writeRecord();
  }
  return { dir: plan.dir, record, table, bestFile };
}

function fmtValue(metric: SweepMetric, v: number | null): string {
  if (v === null) return '–';
  return metric === 'accuracy' || metric === 'agreement' || metric === 'ece' ? `${(v * 100).toFixed(2)}%` : v.toFixed(4);
}

/** The trial table (markdown): trial, each swept parameter, the validation metric, time, status; the best marked. */
export function trialTable(r: SweepRecord): string {
  const paths = r.search.params.map((p) => p.path);
  const cell = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  const status = (t: TrialRow): string => (t.status === 'stopped' ? `stopped (epoch ${t.stopped!.epoch + 1})` : t.status) + (t.reused ? ', reused' : '');
  const table = formatTable(
    ['trial', ...paths, `val ${r.metric}`, 'time s', 'status'],
    r.trials.map((t) => [`${t.trial}${r.best?.key === t.key ? ' *' : ''}`, ...paths.map((p) => cell(t.settings[p])), fmtValue(r.metric, t.value), t.seconds === null ? '–' : t.seconds.toFixed(1), status(t)]),
  );
  const val = `validation split: data.heldOut ${r.validation.heldOut}${r.validation.samples !== null ? ` (${r.validation.samples} samples)` : ''} of the training split, seed ${r.validation.seed}, stratified; the test set was not read by any trial`;
  const best = r.best ? `* best (${r.direction === 'max' ? 'highest' : 'lowest'} val ${r.metric}): trial ${r.best.trial}, written as ${r.best.file}` : 'no trial finished';
  const fin = r.final ? `\n\nThe chosen setting on seeds ${r.final.seeds.join(', ')}, scored on the test set:\n\n${r.final.table}` : '';
  return `${table}\n\n${val}\n${best}${fin}`;
}

/** Raw-document paths whose values are files or folders, resolved against the experiment file's folder. */
function pathFields(raw: Obj): (string | number)[][] {
  const out: (string | number)[][] = [['data', 'path'], ['data', 'testPath'], ['data', 'text', 'tokenizer'], ['teacherCache', 'dir'], ['output']];
  const sources = ['checkpoint', 'torchscript', 'onnx', 'specialists'];
  for (const k of sources) out.push(['teacher', k]);
  if (Array.isArray(raw.teachers)) raw.teachers.forEach((_, i) => { for (const k of sources) out.push(['teachers', i, k]); });
  out.push(typeof raw.init === 'string' ? ['init'] : ['init', 'from']);
  return out;
}

/** Dotted path → YAML document keys (list indices as numbers). */
function docPath(raw: unknown, path: string): (string | number)[] {
  const out: (string | number)[] = [];
  let cur = raw;
  for (const seg of path.split('.')) {
    const key = Array.isArray(cur) ? Number(seg) : seg;
    out.push(key);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[key] : undefined;
  }
  return out;
}

/**
 * best.yaml: the experiment file (comments kept) with the chosen settings, the validation split,
 * no sweep block, output 'best' beside it, and relative file paths rebased onto its folder, so
 * `kdistill distill best.yaml` repeats the best trial. Checked by parsing it back: it must resolve
 * to the trial's settings.
 */
function writeBest(plan: SweepPlan, t: Trial, row: TrialRow, file: string): void {
  const doc = parseDocument(plan.source);
  doc.delete('sweep');
  for (const [path, v] of Object.entries(t.settings)) doc.setIn(docPath(doc.toJS(), path), v);
  doc.setIn(['data', 'heldOut'], plan.validation);
  const from = dirname(resolve(plan.file)), to = dirname(file);
  for (const p of pathFields(doc.toJS() as Obj)) {
    const v = doc.getIn(p);
    if (typeof v === 'string' && !isAbsolute(v) && !(p[0] === 'init' && v === 'teacher')) doc.setIn(p, relative(to, resolve(from, v)) || '.');
  }
  doc.setIn(['output'], 'best');
  const text = `# Chosen by kdistill sweep (${join(plan.dir, 'sweep.json')}): trial ${row.trial} of ${plan.trials.length}, val ${plan.metric} ${fmtValue(plan.metric, row.value)}\n# on data.heldOut ${plan.validation} of the training split. Run it as is: kdistill ${plan.mode} ${file}\n${doc.toString()}`;
  const chosen = parseExperiment(parseYaml(text), file, text);
  const a = runSettings(chosen), b = runSettings(t.experiment);
  for (const k of NOT_IN_KEY) { delete a[k]; delete b[k]; }
  const differ = Object.keys({ ...a, ...b }).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  if (differ.length) throw new Error(`sweep: best.yaml would not repeat trial ${row.trial}: it differs in ${differ.join(', ')} (a file path kdistill sweep does not rebase?); the trial's settings are in ${t.dir}/run.json`);
  atomicWrite(file, text);
}
