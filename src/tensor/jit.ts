// TorchScript: load a module written by torch.jit.save in Python and run it from TypeScript.
import { existsSync } from 'node:fs';
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';
import { suggest } from '../util/suggest.js';

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
  /**
   * forward(...inputs) together with the outputs of the submodules at `paths` (as namedModules()
   * names them), what PyTorch's forward hooks would capture: returns [forward's output, output
   * of paths[0], ...]. Built once per list of paths (native/jit.cc inlines the calls along them in
   * a copy of forward's graph); a path that does not exist, is never called by forward(), is called
   * more than once, or only inside a loop or branch is an error naming it.
   */
  forwardWithSubmoduleOutputs(paths: readonly string[], ...inputs: unknown[]): ScriptValue[] {
    const key = JSON.stringify(paths);
    let fn = this.#featureFns.get(key);
    if (!fn) {
      const known = new Set(this.namedModules().map(([n]) => n));
      const unknown = paths.filter((p) => !known.has(p));
      if (unknown.length) {
        throw new Error(`${this.path}: no submodule ${unknown.map((n) => `'${n}'`).join(', ')}${suggest(unknown[0]!, [...known])}; submodules: ${[...known].join(', ') || 'none'}`);
      }
      try {
        fn = native.jitWithSubmoduleOutputs(this.handle, [...paths]);
      } catch (e) {
        throw new Error(`${this.path}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
      }
      this.#featureFns.set(key, fn);
    }
    return wrap(native.jitRunWithSubmoduleOutputs(fn, inputs.map(unwrap))) as ScriptValue[];
  }
  #featureFns = new Map<string, Handle>();

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
