// The search space of `kdistill sweep`: which settings of an experiment file vary, over what, and
// how a trial is scored. Written as a `sweep:` block in the experiment file, or as --grid/--range
// flags (the flags win per path). A path is a dotted path into the experiment file
// (`method.params.temperature`, `optimizer.lr`, `student.hidden.0`).
//
//   sweep:
//     grid: {method.params.temperature: [1, 2, 4, 8], optimizer.lr: [0.05, 0.1]}   # every combination
//     random: {optimizer.lr: {logRange: [0.01, 0.3]}, method.params.alpha: {range: [0.1, 0.9]},
//              student.hidden.0: {range: [32, 128], int: true}, method.params.beta: [1, 2, 8]}
//     trials: 8          # random search: this many samples of `random` (each combined with every grid point)
//     seed: 0            # of the random samples (default: the experiment's seed)
//     validation: 0.1    # held out of the training set: a fraction, or a count of samples
//     metric: accuracy   # on the validation split: accuracy, agreement (maximised), nll, ece (minimised)
//     earlyStop: median  # or off (default)
import { parse as parseYaml } from 'yaml';
import { Checker, ConfigError, type Obj } from './validate.js';
import { suggest } from '../util/suggest.js';
import { Rng } from '../data/rng.js';

export type Domain =
  | { kind: 'list'; values: unknown[] }
  | { kind: 'range'; lo: number; hi: number; log: boolean; int: boolean };

export interface SweepParam {
  path: string;
  domain: Domain;
  /** Grid axis (every value) or random (sampled `trials` times). */
  search: 'grid' | 'random';
}

export const SWEEP_METRICS = ['accuracy', 'agreement', 'nll', 'ece'] as const;
export type SweepMetric = (typeof SWEEP_METRICS)[number];
/** Whether a larger value of the metric is better. */
export const maximised = (m: SweepMetric): boolean => m === 'accuracy' || m === 'agreement';

export interface SweepSpec {
  params: SweepParam[];
  trials?: number;
  seed?: number;
  /** The validation split held out of the training set: a count of samples or a fraction in (0, 1). */
  validation?: number;
  metric?: SweepMetric;
  earlyStop?: 'off' | 'median';
}

/** One trial's settings: dotted path → value, in the order the parameters were declared. */
export type TrialSettings = Record<string, unknown>;

// Settings a trial may not change: where it is written, its label and speed (not in a trial's key),
// the validation split it is scored on, and the search itself.
const FIXED = ['output', 'name', 'threads', 'sweep', 'data.heldOut', 'data.transfer', 'checkpointEvery'];

/** The `sweep:` block of an experiment file. */
export function parseSweepBlock(v: unknown, file: string): SweepSpec {
  const c = new Checker(file);
  const o = c.object(v, 'sweep', ['grid', 'random', 'trials', 'seed', 'validation', 'metric', 'earlyStop']);
  const params: SweepParam[] = [];
  for (const [key, search] of [['grid', 'grid'], ['random', 'random']] as const) {
    if (o[key] === undefined) continue;
    const m = c.object(o[key], `sweep.${key}`, Object.keys(o[key] as Obj));
    for (const [path, dv] of Object.entries(m)) params.push({ path, search, domain: parseDomain(dv, search, (msg) => c.fail(`sweep.${key}.${path}`, msg)) });
  }
  const spec: SweepSpec = { params };
  const trials = c.optNumber(o, 'trials', 'sweep', { int: true, min: 1 });
  if (trials !== undefined) spec.trials = trials;
  const seed = c.optNumber(o, 'seed', 'sweep', { int: true, min: 0 });
  if (seed !== undefined) spec.seed = seed;
  if (o.validation !== undefined) spec.validation = validationSize(o.validation, (msg) => c.fail('sweep.validation', msg));
  const metric = c.optString(o, 'metric', 'sweep', { choices: [...SWEEP_METRICS] });
  if (metric !== undefined) spec.metric = metric as SweepMetric;
  const es = o.earlyStop === false ? 'off' : c.optString(o, 'earlyStop', 'sweep', { choices: ['off', 'median'] });
  if (es !== undefined) spec.earlyStop = es as 'off' | 'median';
  if (spec.params.some((p) => p.search === 'random') && spec.trials === undefined) c.fail('sweep.trials', "is required with 'random': the number of samples to draw");
  return spec;
}

/** A count of samples (integer ≥ 1) or a fraction of the training set in (0, 1). */
export function validationSize(v: unknown, fail: (msg: string) => never): number {
  if (typeof v !== 'number' || !(v > 0) || (v >= 1 && !Number.isInteger(v))) fail(`must be a count of samples (an integer ≥ 1) or a fraction of the training set in (0, 1), got ${JSON.stringify(v)}`);
  return v;
}

function parseDomain(v: unknown, search: 'grid' | 'random', fail: (msg: string) => never): Domain {
  if (Array.isArray(v)) {
    if (v.length === 0) fail('is an empty list: give at least one value');
    return { kind: 'list', values: v };
  }
  if (search === 'grid') fail(`must be a list of values (got ${JSON.stringify(v)})`);
  if (typeof v !== 'object' || v === null) fail(`must be a list of values or {range: [a, b]} / {logRange: [a, b]} (got ${JSON.stringify(v)})`);
  const o = v as Obj;
  const unknown = Object.keys(o).find((k) => !['range', 'logRange', 'int'].includes(k));
  if (unknown) fail(`'${unknown}' is not a known key${suggest(unknown, ['range', 'logRange', 'int'])} (allowed: range, logRange, int)`);
  if ((o.range === undefined) === (o.logRange === undefined)) fail("needs exactly one of 'range: [a, b]' or 'logRange: [a, b]'");
  const log = o.logRange !== undefined;
  const r = log ? o.logRange : o.range;
  if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => typeof x === 'number' && Number.isFinite(x)) || !(r[0] < r[1])) {
    fail(`${log ? 'logRange' : 'range'} must be two numbers [a, b] with a < b (got ${JSON.stringify(r)})`);
  }
  const [lo, hi] = r as [number, number];
  if (log && !(lo > 0)) fail(`logRange needs a > 0 (got ${lo})`);
  if (o.int !== undefined && typeof o.int !== 'boolean') fail(`int must be true or false (got ${JSON.stringify(o.int)})`);
  const int = o.int === true;
  if (int && !(Number.isInteger(lo) && Number.isInteger(hi))) fail(`an integer range needs integer bounds (got [${lo}, ${hi}])`);
  return { kind: 'range', lo, hi, log, int };
}

/**
 * One command-line search flag: `PATH=[v1, v2, ...]` for --grid, `PATH=[a, b]` for --range,
 * --log-range and --int-range. Values are YAML (numbers, strings, lists: `student.hidden=[[32],[64]]`).
 */
export function parseSearchFlag(flag: 'grid' | 'range' | 'log-range' | 'int-range', arg: string): SweepParam {
  const example = flag === 'grid' ? 'optimizer.lr=[0.05,0.1]' : flag === 'log-range' ? 'optimizer.lr=[0.01,0.3]' : 'method.params.alpha=[0.1,0.9]';
  const bad = (msg: string): never => {
    throw new Error(`--${flag} '${arg}': ${msg} (expected PATH=[...], e.g. --${flag} '${example}')`);
  };
  const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.+)$/s.exec(arg);
  if (!m) return bad('no PATH=VALUES');
  const [, path, text] = m as unknown as [string, string, string];
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    return bad(`the values are not a YAML/JSON list: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(v)) return bad(`the values must be a list in brackets, got ${JSON.stringify(v)}`);
  const search = flag === 'grid' ? 'grid' : 'random';
  const dv = flag === 'grid' ? v : { [flag === 'log-range' ? 'logRange' : 'range']: v, ...(flag === 'int-range' ? { int: true } : {}) };
  return { path, search, domain: parseDomain(dv, search, bad) };
}

/** The file's block with the command line's parameters and options laid over it (per path). */
export function mergeSweepSpecs(file: SweepSpec | null, cli: Partial<SweepSpec>): SweepSpec {
  const params = new Map((file?.params ?? []).map((p) => [p.path, p]));
  for (const p of cli.params ?? []) params.set(p.path, p);
  const out: SweepSpec = { ...(file ?? {}), params: [...params.values()] };
  for (const k of ['trials', 'seed', 'validation', 'metric', 'earlyStop'] as const) if (cli[k] !== undefined) (out as unknown as Obj)[k] = cli[k];
  return out;
}

/**
 * Every trial's settings: the cartesian product of the grid (the first parameter varies slowest),
 * times `trials` random samples drawn from Rng(seed) when the spec has random parameters. Refuses
 * an empty search, and a path the experiment document does not have (see checkSweepPath).
 */
export function expandTrials(spec: SweepSpec, doc: Obj, file: string, seed: number, declared: DeclaredParams): TrialSettings[] {
  if (spec.params.length === 0) {
    throw new ConfigError(file, 'sweep', "has nothing to search: give --grid 'PATH=[v1,v2]' (or --range/--log-range with --trials N), or a sweep: block with grid: or random:");
  }
  for (const p of spec.params) checkSweepPath(doc, p.path, file, declared);
  const grid = spec.params.filter((p) => p.search === 'grid');
  const random = spec.params.filter((p) => p.search === 'random');
  if (random.length && spec.trials === undefined) throw new ConfigError(file, 'sweep.trials', `is required for the random parameters (${random.map((p) => p.path).join(', ')}): --trials N`);
  let points: TrialSettings[] = [{}];
  for (const p of grid) {
    const values = (p.domain as Extract<Domain, { kind: 'list' }>).values;
    points = points.flatMap((pt) => values.map((v) => ({ ...pt, [p.path]: v })));
  }
  if (random.length === 0) return points;
  const rng = new Rng(seed, 0x5eed);
  const samples = Array.from({ length: spec.trials! }, () => Object.fromEntries(random.map((p) => [p.path, sample(p.domain, rng)])));
  return points.flatMap((pt) => samples.map((s) => ({ ...pt, ...s })));
}

/** A value of the domain; floats rounded to 4 significant digits (readable tables and YAML), kept in range. */
export function sample(d: Domain, rng: Rng): unknown {
  if (d.kind === 'list') return d.values[rng.nextInt(d.values.length)];
  const u = rng.nextDouble();
  if (d.int && !d.log) return d.lo + Math.min(d.hi - d.lo, Math.floor(u * (d.hi - d.lo + 1)));
  const v = d.log ? Math.exp(Math.log(d.lo) + u * (Math.log(d.hi) - Math.log(d.lo))) : d.lo + u * (d.hi - d.lo);
  const r = d.int ? Math.round(v) : Number(v.toPrecision(4));
  return Math.min(d.hi, Math.max(d.lo, r));
}

/** The hyper-parameters a method declares (the runner passes the method registry's). */
export type DeclaredParams = (method: string) => string[];

/**
 * A sweep path must name a setting the experiment file has (a typo would otherwise create a new
 * key that is ignored or refused mid-sweep), except a hyper-parameter the method declares
 * (`method.params.X` may be left at its default in the file).
 */
export function checkSweepPath(doc: Obj, path: string, file: string, declaredParams: DeclaredParams): void {
  if (FIXED.some((f) => path === f || path.startsWith(`${f}.`))) {
    throw new ConfigError(file, path, `cannot be swept: ${path.startsWith('data.') ? 'it defines the validation split trials are scored on (set its size with sweep.validation / --val)' : "every trial sets it itself"}`);
  }
  const segs = path.split('.');
  if (segs.some((s) => s === '')) throw new ConfigError(file, path, 'is not a dotted path (empty segment)');
  let cur: unknown = doc;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const at = segs.slice(0, i + 1).join('.');
    if (Array.isArray(cur)) {
      const n = Number(seg);
      if (!Number.isInteger(n) || n < 0 || n >= cur.length) throw new ConfigError(file, at, `is not in the file: '${segs.slice(0, i).join('.')}' is a list of ${cur.length} (index 0–${cur.length - 1})`);
      cur = cur[n];
      continue;
    }
    if (typeof cur !== 'object' || cur === null) throw new ConfigError(file, at, `is not in the file: '${segs.slice(0, i).join('.')}' is a value (${JSON.stringify(cur)}), not a mapping`);
    const keys = Object.keys(cur);
    // The method's declared hyper-parameters may be swept without being written in the file.
    if (i === 2 && segs.length === 3 && segs[0] === 'method' && segs[1] === 'params' && !(seg in cur)) {
      const name = (doc.method as Obj | undefined)?.name ?? (doc.teacher !== undefined || doc.teachers !== undefined ? 'kd' : 'scratch');
      const declared = typeof name === 'string' ? declaredParams(name) : [];
      if (declared.includes(seg)) return;
      throw new ConfigError(file, at, `is not a hyper-parameter of method '${String(name)}'${suggest(seg, declared)} (it has: ${declared.join(', ') || 'none'})`);
    }
    if (seg in cur) {
      cur = (cur as Obj)[seg];
      continue;
    }
    // A method whose params the file leaves out entirely.
    if (i === 1 && segs.length === 3 && segs[0] === 'method' && seg === 'params') {
      cur = {};
      continue;
    }
    throw new ConfigError(file, at, `is not in the experiment file${suggest(seg, keys)} (${at.includes('.') ? `'${segs.slice(0, i).join('.')}' has` : 'the file has'}: ${keys.join(', ') || 'nothing'}); to sweep a setting left at its default, write it into the file first`);
  }
}

/** A copy of the document with each dotted path set (paths checked by checkSweepPath; mappings created under method.params). */
export function withSettings(doc: Obj, settings: TrialSettings): Obj {
  const out = structuredClone(doc);
  for (const [path, v] of Object.entries(settings)) {
    const segs = path.split('.');
    let cur: Obj | unknown[] = out;
    for (const seg of segs.slice(0, -1)) {
      const next: unknown = Array.isArray(cur) ? cur[Number(seg)] : cur[seg];
      if (typeof next !== 'object' || next === null) (cur as Obj)[seg] = {};
      cur = (Array.isArray(cur) ? cur[Number(seg)] : cur[seg]) as Obj | unknown[];
    }
    const last = segs[segs.length - 1]!;
    if (Array.isArray(cur)) cur[Number(last)] = structuredClone(v);
    else cur[last] = structuredClone(v);
  }
  return out;
}
