// The generalist-plus-specialists ensemble as one Teacher (Hinton et al. 2015, section 5). For
// each input:
//   1. the known set K: the generalist's topN most probable classes (the paper used n = 1);
//   2. the active specialists: those whose subset meets K;
//   3. q = argmin KL(p_g ‖ q) + Σ_active KL(p_m ‖ M_m q) (combine.ts), returned as log q.
// Since log q are log-probabilities, softmax(log q / T) at a distillation temperature T is q^(1/T)
// renormalised: every logit-based method and the teacher-output cache use it unchanged.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Tensor } from '../../tensor/tensor.js';
import { call } from '../../tensor/tensor.js';
import { full, tensor } from '../../tensor/factories.js';
import { noGrad } from '../../tensor/autograd.js';
import { tidy } from '../../tensor/scope.js';
import type { Teacher } from '../teacher.js';
import { checkpointTeacher } from '../sources.js';
import { combine, DEFAULT_SOLVER, mapTensor, type SolverOptions, type SpecialistTerm } from './combine.js';
import { dustbinMap } from './specialist.js';
import { validateSubsets } from './subsets.js';

export interface SpecialistMember {
  /** A teacher over |subset| + 1 classes (the last one the dustbin). */
  teacher: Teacher;
  /** Class ids of the generalist's label set, in the order of the specialist's outputs. */
  subset: number[];
  /** Added to the dustbin logit (log of the over-sampling factor, see dustbinCorrection). */
  dustbinCorrection: number;
}

export interface SpecialistEnsembleOptions {
  /** Size of the known set K (default 1, as in the paper). */
  topN?: number;
  solver?: Partial<SolverOptions>;
}

/** What the members said about one batch, before combination. */
export interface MemberOutputs {
  generalist: Tensor;
  terms: SpecialistTerm[];
}

export class SpecialistEnsembleTeacher implements Teacher {
  readonly numClasses: number;
  readonly numParameters: number;
  readonly description: string;
  readonly checksum: string;
  readonly topN: number;
  readonly solver: SolverOptions;
  readonly #maps: { map: Tensor; inSubset: Tensor }[];

  constructor(readonly generalist: Teacher, readonly specialists: readonly SpecialistMember[], o: SpecialistEnsembleOptions = {}) {
    const C = generalist.numClasses;
    this.numClasses = C;
    const subsets = validateSubsets(specialists.map((s) => s.subset), C);
    specialists.forEach((s, i) => {
      if (s.teacher.numClasses !== subsets[i]!.length + 1) {
        throw new Error(`SpecialistEnsembleTeacher: specialist ${i} (${s.teacher.description}) predicts ${s.teacher.numClasses} classes; its subset [${s.subset.join(', ')}] needs ${subsets[i]!.length + 1} (the subset plus the dustbin)`);
      }
      if (!Number.isFinite(s.dustbinCorrection)) throw new Error(`SpecialistEnsembleTeacher: specialist ${i} has a non-finite dustbin correction`);
    });
    this.topN = o.topN ?? 1;
    if (!Number.isInteger(this.topN) || this.topN < 1 || this.topN > C) throw new Error(`SpecialistEnsembleTeacher: topN must be an integer in [1, ${C}], got ${this.topN}`);
    this.solver = { ...DEFAULT_SOLVER, ...o.solver };
    if (!['adam', 'em'].includes(this.solver.solver)) throw new Error(`SpecialistEnsembleTeacher: unknown solver '${this.solver.solver}' (adam or em)`);
    if (!Number.isInteger(this.solver.steps) || this.solver.steps < 0) throw new Error(`SpecialistEnsembleTeacher: solver steps must be an integer >= 0, got ${this.solver.steps}`);
    if (!(this.solver.lr > 0)) throw new Error(`SpecialistEnsembleTeacher: solver lr must be > 0, got ${this.solver.lr}`);
    this.#maps = subsets.map((s) => {
      const m = dustbinMap(s, C);
      return { map: mapTensor(m), inSubset: mapTensor(Int32Array.from(m, (j) => (j < s.length ? 1 : 0))) };
    });
    this.numParameters = generalist.numParameters + specialists.reduce((a, s) => a + s.teacher.numParameters, 0);
    this.description = `generalist ${generalist.description} + ${specialists.length} specialist${specialists.length === 1 ? '' : 's'} (${subsets.map((s) => `{${s.join(',')}}`).join(' ')}; top-${this.topN}, ${this.solver.solver} ×${this.solver.steps})`;
    // Every input to q keys the teacher-output cache: members, subsets, corrections, K and the solver.
    this.checksum = createHash('sha256').update(JSON.stringify({
      kind: 'specialist-ensemble', generalist: generalist.checksum, topN: this.topN, solver: this.solver,
      specialists: specialists.map((s, i) => ({ checksum: s.teacher.checksum, subset: subsets[i], dustbinCorrection: s.dustbinCorrection })),
    })).digest('hex');
  }

  /**
   * The generalist's logits and each specialist's corrected log-probabilities with its active
   * mask. A specialist runs only on its active rows; other rows get a uniform placeholder.
   */
  members(x: Tensor): MemberOutputs {
    return noGrad(() => tidy(() => {
      const zg = this.generalist.logits(x);
      const B = x.shape[0]!;
      const known = zg.topk(this.topN, { dim: 1 }).indices;
      const terms = this.specialists.map((s, i): SpecialistTerm => {
        const { map, inSubset } = this.#maps[i]!;
        const k1 = s.subset.length + 1;
        // Active: some class of K lies in the subset.
        const hit = inSubset.unsqueeze(0).expand(B, this.numClasses).gather(1, known).sum({ dim: 1 }).gt(0);
        const active = hit.to(zg.dtype);
        const rows = call('nonzero', hit).squeeze(1);
        let logProbs: Tensor = full([B, k1], -Math.log(k1), { dtype: zg.dtype });
        if (rows.shape[0]! > 0) {
          const z = s.teacher.logits(x.indexSelect(0, rows)).to(zg.dtype);
          const bias = tensor(Array.from({ length: k1 }, (_, j) => (j === k1 - 1 ? s.dustbinCorrection : 0)), { dtype: zg.dtype });
          logProbs = call('index_copy', logProbs, 0, rows, z.add(bias).logSoftmax(1));
        }
        return { logProbs, map, active };
      });
      return { generalist: zg, terms };
    }));
  }

  /** log q for members' outputs (the solver may be overridden, e.g. to measure the optimality gap). */
  combine(out: MemberOutputs, solver: SolverOptions = this.solver): Tensor {
    return combine(out.generalist, out.terms, solver);
  }

  logits(x: Tensor): Tensor {
    return noGrad(() => tidy(() => this.combine(this.members(x))));
  }
}

// ---- the on-disk bundle ---------------------------------------------------------------------

export const BUNDLE_FILE = 'specialists.json';
export const BUNDLE_FORMAT = 'kdistill-specialists';

export interface BundleSpecialist {
  subset: number[];
  /** Model checkpoint, relative to the bundle folder. */
  checkpoint: string;
  dustbinCorrection: number;
  subsetPrior: number;
  subsetFraction: number;
}

export interface SpecialistBundle {
  format: typeof BUNDLE_FORMAT;
  version: 1;
  /** The generalist's checkpoint: absolute, or relative to the bundle folder. */
  generalist: string;
  numClasses: number;
  topN: number;
  solver: SolverOptions;
  specialists: BundleSpecialist[];
  /** How the subsets were found (subsets.json holds the details). */
  subsets: { method: string; file: string };
}

/** Loads a bundle folder (its specialists.json) as a teacher; options override the bundle's inference settings. */
export function loadSpecialistBundle(dir: string, o: SpecialistEnsembleOptions = {}): SpecialistEnsembleTeacher {
  const file = join(dir, BUNDLE_FILE);
  if (!existsSync(file)) throw new Error(`${dir}: no ${BUNDLE_FILE}; make the bundle with 'kdistill specialists <experiment.yaml>'`);
  let b: SpecialistBundle;
  try {
    b = JSON.parse(readFileSync(file, 'utf8')) as SpecialistBundle;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (b.format !== BUNDLE_FORMAT || b.version !== 1) throw new Error(`${file}: not a ${BUNDLE_FORMAT} v1 bundle`);
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  const generalist = checkpointTeacher(at(b.generalist));
  if (generalist.numClasses !== b.numClasses) throw new Error(`${file}: the generalist predicts ${generalist.numClasses} classes, the bundle says ${b.numClasses}`);
  const members = b.specialists.map((s) => {
    const path = at(s.checkpoint);
    if (!existsSync(path)) throw new Error(`${file}: specialist checkpoint ${path} not found (is the specialists run finished?)`);
    return { teacher: checkpointTeacher(path), subset: s.subset, dustbinCorrection: s.dustbinCorrection };
  });
  return new SpecialistEnsembleTeacher(generalist, members, {
    topN: o.topN ?? b.topN, solver: { ...b.solver, ...o.solver },
  });
}

/** The weight files of a bundle: the generalist's and each specialist's checkpoint (for reports). */
export function bundleFiles(dir: string): string[] {
  const file = join(dir, BUNDLE_FILE);
  if (!existsSync(file)) return [file];
  const b = JSON.parse(readFileSync(file, 'utf8')) as SpecialistBundle;
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  return [at(b.generalist), ...b.specialists.map((s) => at(s.checkpoint))];
}

/** A path as written into specialists.json: relative to the bundle folder, so the repository can move. */
export function relativeTo(dir: string, path: string): string {
  return relative(resolve(dir), resolve(path));
}
