// Whether a run may continue in an output folder that already holds a checkpoint. Resuming after
// the experiment changed would return the old result (or continue with new settings mixed into
// old weights) while the folder's records claim the new settings, so a resume is allowed only
// when everything that defines what is trained matches what the folder's run.json recorded.
//
// Fields that may change on resume, because they do not change what a step computes:
//   epochs          raising it continues training (a cosine or step schedule is stretched to the new length)
//   checkpointEvery when checkpoints are written, not what is in them
//   output          where the folder is (it may be moved, or named relatively from elsewhere)
//   threads         speed only (results agree to rounding)
//   onNonFinite, checkGradients
//                   what happens at a step that would otherwise stop the run (e.g. resume with
//                   `skip` after a NaN stopped it)
//   name            a label
//   teacherCache.dir where the teacher-output cache lives
//   distributed     how data-parallel gradients are exchanged (the same sums, started earlier or later)
// Everything else (data, teacher, student, method, optimizer, schedule, seed, init, ...) must match,
// and so must the data files' and the teacher's checksums.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseExperiment, type Experiment } from '../config/experiment.js';

const MAY_CHANGE = new Set(['epochs', 'checkpointEvery', 'output', 'threads', 'onNonFinite', 'checkGradients', 'name', 'teacherCache.dir', 'distributed']);

/** The experiment's settings that define what is trained, as plain JSON (run.json keeps them). */
export function runSettings(e: Experiment): Record<string, unknown> {
  const { file: _f, source: _s, ...rest } = e;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

/** What run.json records of the inputs: data files with checksums and the teacher's checksum. */
export interface RecordedInputs {
  data: { sizes: Record<string, number>; sources: { path: string; sha256: string }[]; testSources: { path: string; sha256: string }[] };
  teacher: { description: string; checksum: string } | null;
}

/** Leaves of a JSON value by dotted path (arrays are leaves). */
function flatten(v: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out.set(prefix, JSON.stringify(v));
  return out;
}

/** "field: old → new" for every leaf that differs, leaving out the fields that may change on resume. */
function settingsChanges(old: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const a = flatten(old, '', new Map()), b = flatten(now, '', new Map());
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !MAY_CHANGE.has(k) && !MAY_CHANGE.has(k.split('.')[0]!));
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${a.get(k) ?? '(unset)'} → ${b.get(k) ?? '(unset)'}`);
}

function inputChanges(old: Partial<RecordedInputs>, now: RecordedInputs): string[] {
  const out: string[] = [];
  const short = (h: string | undefined): string => (h ? `sha256 ${h.slice(0, 12)}…` : '(none)');
  for (const key of ['sources', 'testSources'] as const) {
    const before = new Map((old.data?.[key] ?? []).map((s) => [s.path, s.sha256]));
    const after = new Map(now.data[key].map((s) => [s.path, s.sha256]));
    for (const p of new Set([...before.keys(), ...after.keys()])) {
      if (before.get(p) !== after.get(p)) out.push(`data file ${p}: ${short(before.get(p))} → ${short(after.get(p))}`);
    }
  }
  for (const [k, n] of Object.entries(now.data.sizes)) {
    const o = old.data?.sizes?.[k];
    if (o !== undefined && o !== n) out.push(`${k} set size: ${o} → ${n}`);
  }
  const ot = old.teacher?.checksum, nt = now.teacher?.checksum;
  if (ot !== nt) out.push(`teacher (${now.teacher?.description ?? old.teacher?.description}): checksum ${ot?.slice(0, 12) ?? '(none)'} → ${nt?.slice(0, 12) ?? '(none)'}`);
  return out;
}

/**
 * Throws, before anything in the folder is rewritten, when `e.output` holds a checkpoint of a
 * different experiment or different data: naming each change (old → new) and the ways out.
 */
export function checkResumable(e: Experiment, now: RecordedInputs): void {
  const dir = e.output;
  if (!existsSync(join(dir, 'checkpoint.safetensors'))) return;
  const ways = `To start over in this folder (its checkpoint, log and results are replaced) run again with --no-resume; to keep it, give the run another output folder (--output DIR or 'output:').`;
  const runFile = join(dir, 'run.json');
  let rec: Partial<RecordedInputs> & { settings?: Record<string, unknown>; config?: string; seed?: number };
  try {
    rec = JSON.parse(readFileSync(runFile, 'utf8')) as typeof rec;
  } catch (err) {
    throw new Error(`${e.file}: ${dir} holds a checkpoint but its run.json cannot be read (${(err as Error).message.split('\n')[0]}), so it cannot be checked that it is this experiment's. ${ways}`);
  }
  let old = rec.settings;
  if (!old) {
    // Folders written before run.json kept the settings: the experiment copy it kept, with its seed.
    try {
      old = runSettings(parseExperiment({ ...(parseYaml(rec.config ?? '') as object), ...(rec.seed !== undefined ? { seed: rec.seed } : {}) }, e.file));
    } catch (err) {
      throw new Error(`${e.file}: ${dir} holds a checkpoint whose recorded experiment cannot be read (${(err as Error).message.split('\n')[0]}). ${ways}`);
    }
  }
  const changes = [...settingsChanges(old, runSettings(e)), ...inputChanges(rec, now)];
  if (changes.length === 0) return;
  throw new Error(`${e.file}: ${dir} holds a run of a different experiment or data; resuming it would mix the two. Changed since that run:\n  ${changes.join('\n  ')}\n(Only ${[...MAY_CHANGE].join(', ')} may change on resume.) ${ways}`);
}
