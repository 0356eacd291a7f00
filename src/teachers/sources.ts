// Teachers from files: a kdistill model checkpoint or a TorchScript module. Both are frozen and
// in eval mode by construction; their outputs are checked to be logits of the expected width.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { load as jitLoad, type ScriptModule, type ScriptValue } from '../tensor/jit.js';
import type { Module } from '../nn/module.js';
import { loadModel } from '../nn/safetensors.js';
import { isHfFolder, loadHfBert } from '../nn/huggingface.js';
import type { Teacher } from './teacher.js';
import { fileSha256 } from '../data/errors.js';
import { wrongTeacherFile } from './file-kind.js';
import type { Normalization } from './pipeline.js';

/** A kdistill Module as a frozen teacher. */
export class ModuleTeacher implements Teacher {
  readonly numParameters: number;
  classNames?: readonly string[];
  inputNormalization?: Normalization;
  constructor(readonly model: Module, readonly numClasses: number, readonly description: string, readonly checksum: string) {
    model.eval().freeze();
    this.numParameters = model.numInferenceParameters() || model.parameters().reduce((a, t) => a + t.numel(), 0);
  }
  logits(x: Tensor): Tensor {
    return noGrad(() => this.model.call(x));
  }
  /** The parameters are frozen, so the graph reaches only x. */
  logitsWithGrad(x: Tensor): Tensor {
    return this.model.call(x);
  }
  features(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    return noGrad(() => this.model.forwardWithFeatures(x, names));
  }
  /** The parameters are frozen, so the graph reaches only x. */
  featuresWithGrad(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    return this.model.forwardWithFeatures(x, names);
  }
}

/**
 * A kdistill model file, or a folder in Hugging Face's layout (config.json + model.safetensors of
 * a fine-tuned BertForSequenceClassification), as a frozen teacher.
 */
export function checkpointTeacher(path: string): ModuleTeacher {
  if (!existsSync(path)) throw new Error(`teacher checkpoint not found: ${path}`);
  if (statSync(path).isDirectory()) {
    if (!isHfFolder(path)) throw new Error(`teacher checkpoint ${path} is a folder without config.json: give a kdistill model file (.safetensors) or a Hugging Face model folder`);
    const hf = loadHfBert(path, { requireClassifier: true });
    const sums = fileSha256(join(path, 'config.json')) + fileSha256(join(path, 'model.safetensors'));
    const t = new ModuleTeacher(hf.model, hf.model.spec.numClasses, `Hugging Face BERT ${path}`, sums);
    if (hf.classNames) t.classNames = hf.classNames;
    return t;
  }
  const { model, metadata } = loadModel(path);
  const numClasses = Number(model.spec.numClasses);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`${path}: the model spec has no valid numClasses`);
  const t = new ModuleTeacher(model, numClasses, `checkpoint ${path}`, fileSha256(path));
  const rec = recordedTraining(path, metadata);
  if (rec.classNames) t.classNames = rec.classNames;
  if (rec.normalize) t.inputNormalization = rec.normalize;
  return t;
}

/** Model-file metadata keys under which a run records its inputs' normalisation and class order (JSON). */
export const NORMALIZE_KEY = 'normalize';
export const CLASS_NAMES_KEY = 'classNames';

/**
 * What a kdistill model was trained on: its metadata (runs record it there), else, for a model
 * of an older run, that run folder's run.json (the experiment's data.normalize) and result.json
 * (classNames). Unreadable records count as absent: the teacher is then taken as trained on raw inputs.
 */
export function recordedTraining(path: string, metadata: Record<string, string>): { normalize?: Normalization; classNames?: string[] } {
  const json = (s: string | undefined): unknown => { try { return s === undefined ? undefined : JSON.parse(s); } catch { return undefined; } };
  let normalize = asNormalization(json(metadata[NORMALIZE_KEY]));
  let classNames = asNames(json(metadata[CLASS_NAMES_KEY]));
  const dir = dirname(path);
  if (basename(path) === 'model.safetensors' && metadata[NORMALIZE_KEY] === undefined) {
    const run = json(readIfExists(join(dir, 'run.json'))) as { config?: string } | undefined;
    try {
      const data = (parseYaml(run?.config ?? '') as { data?: { normalize?: unknown } } | null)?.data;
      normalize = asNormalization(data?.normalize);
    } catch { /* no usable record */ }
  }
  if (basename(path) === 'model.safetensors' && !classNames) classNames = asNames((json(readIfExists(join(dir, 'result.json'))) as { classNames?: unknown } | undefined)?.classNames);
  return { ...(normalize ? { normalize } : {}), ...(classNames ? { classNames } : {}) };
}

function readIfExists(f: string): string | undefined {
  try {
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

function asNormalization(v: unknown): Normalization | undefined {
  const nums = (a: unknown): a is number[] => Array.isArray(a) && a.length > 0 && a.every((x) => typeof x === 'number' && Number.isFinite(x));
  const o = v as { mean?: unknown; std?: unknown } | undefined;
  return o && nums(o.mean) && nums(o.std) ? { mean: o.mean, std: o.std } : undefined;
}

function asNames(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? v as string[] : undefined;
}

/** A TorchScript module as a frozen teacher; `output` picks the logits from a tuple/dict output. */
export class TorchScriptTeacher implements Teacher {
  readonly module: ScriptModule;
  readonly numParameters: number;
  readonly checksum: string;
  readonly description: string;

  constructor(readonly path: string, readonly numClasses: number, readonly output: number | string = 0) {
    try {
      this.module = jitLoad(path).eval();
    } catch (e) {
      if (!existsSync(path)) throw e;
      throw new Error(wrongTeacherFile(path, 'torchscript', (e as Error).message), { cause: e });
    }
    for (const p of this.module.parameters()) p.requiresGrad_(false);
    this.numParameters = this.module.parameters().reduce((a, t) => a + t.numel(), 0);
    this.checksum = fileSha256(path);
    this.description = `TorchScript ${path}`;
  }

  logits(x: Tensor): Tensor {
    return noGrad(() => this.pick(this.module.forward(x)));
  }

  /** Logits as a differentiable function of x (Sobolev training, boundary attacks). */
  logitsWithGrad(x: Tensor): Tensor {
    return this.pick(this.module.forward(x));
  }

  /**
   * Logits plus intermediate outputs for feature-based methods. A name is either
   *   a submodule path ('layer1', 'layer2.0.conv1', as PyTorch's named_modules() gives them): that
   *     submodule's output in this forward() call, what a PyTorch forward hook would capture
   *     (ScriptModule.forwardWithSubmoduleOutputs); or
   *   'output:<index or key>': an element of the tuple/dict that forward() returns.
   */
  features(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    return noGrad(() => {
      const paths = names.filter((n) => !n.startsWith('output:'));
      const [v, ...outs] = paths.length ? this.module.forwardWithSubmoduleOutputs(paths, x) : [this.module.forward(x)];
      const features: Record<string, Tensor> = {};
      paths.forEach((p, i) => {
        const t = outs[i];
        if (!(t instanceof Tensor)) throw new Error(`${this.path}: submodule '${p}' returns ${Array.isArray(t) ? 'a tuple' : t === null ? 'None' : typeof t}, not a tensor, so it cannot be a feature`);
        features[p] = t;
      });
      for (const n of names) if (n.startsWith('output:')) features[n] = this.element(v!, n);
      return { output: this.pick(v!), features };
    });
  }

  private element(v: ScriptValue, name: string): Tensor {
    const key = name.slice('output:'.length);
    const idx = /^\d+$/.test(key) ? Number(key) : null;
    // A single-tensor output is element 0 of a one-element tuple.
    if (v instanceof Tensor && idx === 0) return v;
    const e = Array.isArray(v) && idx !== null ? v[idx] : v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tensor) ? (v as Record<string, ScriptValue>)[key] : undefined;
    if (!(e instanceof Tensor)) throw new Error(`${this.path}: forward() output has no tensor at '${key}' (feature '${name}')`);
    return e;
  }

  private pick(v: ScriptValue): Tensor {
    if (v instanceof Tensor) return v;
    if (Array.isArray(v) && typeof this.output === 'number' && v[this.output] instanceof Tensor) return v[this.output] as Tensor;
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof this.output === 'string' && (v as Record<string, ScriptValue>)[this.output] instanceof Tensor) {
      return (v as Record<string, ScriptValue>)[this.output] as Tensor;
    }
    throw new Error(`${this.path}: the TorchScript module's output is not a tensor of logits (set teacher.output to the tuple index or dict key that holds them)`);
  }
}

/** Checks before training that the teacher maps a sample batch to [batch, numClasses] logits. */
export function checkTeacherOutput(t: Teacher, sample: Tensor, numClasses: number): void {
  let shape: number[];
  try {
    shape = noGrad(() => {
      const y = t.logits(sample);
      const s = y.shape;
      y.dispose();
      return s;
    });
  } catch (e) {
    throw new Error(`teacher (${t.description}) cannot take inputs of shape [${sample.shape.join(', ')}]: ${(e as Error).message.split('\n')[0]}`);
  }
  if (shape.length !== 2 || shape[0] !== sample.shape[0]) {
    throw new Error(`teacher (${t.description}) returned shape [${shape.join(', ')}] for a batch of ${sample.shape[0]}; expected logits [batch, classes]`);
  }
  if (shape[1] !== numClasses) {
    throw new Error(`teacher (${t.description}) predicts ${shape[1]} classes but the data has ${numClasses}: use a teacher trained on the same label set`);
  }
}
