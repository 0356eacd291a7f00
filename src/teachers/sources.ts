// Teachers from files: a kdistill model checkpoint or a TorchScript module. Both are frozen and
// in eval mode by construction; their outputs are checked to be logits of the expected width.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { load as jitLoad, type ScriptModule, type ScriptValue } from '../tensor/jit.js';
import type { Module } from '../nn/module.js';
import { loadModel } from '../nn/safetensors.js';
import type { Teacher } from './teacher.js';

const hashCache = new Map<string, string>();

/** sha256 of a file, cached by path, size and mtime. */
export function fileChecksum(path: string): string {
  const st = statSync(path);
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  let h = hashCache.get(key);
  if (!h) {
    h = createHash('sha256').update(readFileSync(path)).digest('hex');
    hashCache.set(key, h);
  }
  return h;
}

/** A kdistill Module as a frozen teacher. */
export class ModuleTeacher implements Teacher {
  readonly numParameters: number;
  constructor(readonly model: Module, readonly numClasses: number, readonly description: string, readonly checksum: string) {
    model.eval().freeze();
    this.numParameters = model.numParameters() || model.parameters().reduce((a, t) => a + t.numel(), 0);
  }
  logits(x: Tensor): Tensor {
    return noGrad(() => this.model.call(x));
  }
  features(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    return noGrad(() => this.model.forwardWithFeatures(x, names));
  }
}

export function checkpointTeacher(path: string): ModuleTeacher {
  if (!existsSync(path)) throw new Error(`teacher checkpoint not found: ${path}`);
  const { model } = loadModel(path);
  const numClasses = Number(model.spec.numClasses);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`${path}: the model spec has no valid numClasses`);
  return new ModuleTeacher(model, numClasses, `checkpoint ${path}`, fileChecksum(path));
}

/** A TorchScript module as a frozen teacher; `output` picks the logits from a tuple/dict output. */
export class TorchScriptTeacher implements Teacher {
  readonly module: ScriptModule;
  readonly numParameters: number;
  readonly checksum: string;
  readonly description: string;

  constructor(readonly path: string, readonly numClasses: number, readonly output: number | string = 0) {
    this.module = jitLoad(path).eval();
    for (const p of this.module.parameters()) p.requiresGrad_(false);
    this.numParameters = this.module.parameters().reduce((a, t) => a + t.numel(), 0);
    this.checksum = fileChecksum(path);
    this.description = `TorchScript ${path}`;
  }

  logits(x: Tensor): Tensor {
    return noGrad(() => this.pick(this.module.forward(x)));
  }

  /** Logits as a differentiable function of x (Sobolev training, boundary attacks). */
  logitsWithGrad(x: Tensor): Tensor {
    return this.pick(this.module.forward(x));
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
