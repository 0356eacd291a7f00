// TorchScript: load a module written by torch.jit.save in Python and run it from TypeScript.
import { existsSync } from 'node:fs';
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';

export type ScriptValue = Tensor | number | boolean | string | null | ScriptValue[] | { [k: string]: ScriptValue };

function wrap(v: unknown): ScriptValue {
  if (v === null || typeof v !== 'object') return v as ScriptValue;
  if (Array.isArray(v)) return v.map(wrap);
  if (Object.getPrototypeOf(v) === Object.prototype) {
    const o: Record<string, ScriptValue> = {};
    for (const [k, x] of Object.entries(v)) o[k] = wrap(x);
    return o;
  }
  return new Tensor(v as Handle);
}

function unwrap(v: unknown): unknown {
  if (v instanceof Tensor) return v.handle;
  if (Array.isArray(v)) return v.map(unwrap);
  return v;
}

/** A loaded TorchScript module. Loaded modules start in eval mode. */
export class ScriptModule {
  constructor(readonly handle: Handle, readonly path: string) {}

  /** Runs forward(...inputs). Outputs are differentiable with respect to inputs that require grad. */
  forward(...inputs: unknown[]): ScriptValue {
    return this.callMethod('forward', ...inputs);
  }
  callMethod(name: string, ...inputs: unknown[]): ScriptValue {
    return wrap(native.jitCallMethod(this.handle, name, inputs.map(unwrap)));
  }
  methodNames(): string[] {
    return native.jitMethodNames(this.handle);
  }
  namedParameters(): [string, Tensor][] {
    return native.jitNamedParameters(this.handle).map(([n, h]) => [n, new Tensor(h).keep()]);
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(): [string, Tensor][] {
    return native.jitNamedBuffers(this.handle).map(([n, h]) => [n, new Tensor(h).keep()]);
  }
  /** [dotted name, TorchScript class name] of every submodule. */
  namedModules(): [string, string][] {
    return native.jitNamedModules(this.handle);
  }
  submodule(path: string): ScriptModule {
    return new ScriptModule(native.jitSubmodule(this.handle, path), `${this.path}#${path}`);
  }
  eval(): this {
    native.jitSetTraining(this.handle, false);
    return this;
  }
  train(mode = true): this {
    native.jitSetTraining(this.handle, mode);
    return this;
  }
  get training(): boolean {
    return native.jitIsTraining(this.handle);
  }
}

/** torch.jit.load(path): the module in eval mode. */
export function load(path: string): ScriptModule {
  if (!existsSync(path)) throw new Error(`torch.jit.load: no such file: ${path}`);
  try {
    return new ScriptModule(native.jitLoad(path), path).eval();
  } catch (e) {
    throw new Error(`torch.jit.load(${path}): ${(e as Error).message.split('\n')[0]}`);
  }
}
