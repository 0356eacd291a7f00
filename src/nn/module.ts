// Module: named parameters, buffers and submodules, train/eval modes, state dicts, and capture
// of intermediate outputs by name (what feature-based distillation reads).
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';

/** Collects the outputs of named submodules during one forward pass. */
class FeatureCapture {
  readonly features = new Map<string, Tensor>();
  readonly inputs = new Map<string, Tensor>();
  constructor(readonly wanted: Set<string>, readonly wantedInputs: Set<string> = new Set()) {}
}
let capture: FeatureCapture | null = null;

export abstract class Module {
  training = true;
  /** Dotted path from the root module (set when the module is registered in a parent). */
  path = '';
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  abstract forward(x: Tensor, ...rest: unknown[]): Tensor;

  /** Runs forward and, inside forwardWithFeatures, records this module's output if asked. */
  call(x: Tensor, ...rest: unknown[]): Tensor {
    if (capture !== null && capture.wantedInputs.has(this.path) && !capture.inputs.has(this.path)) capture.inputs.set(this.path, x);
    const out = this.forward(x, ...rest);
    if (capture !== null && capture.wanted.has(this.path)) capture.features.set(this.path, out);
    return out;
  }

  /** Output and the outputs of the named submodules (dotted paths as in namedModules()). */
  forwardWithFeatures(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    const { output, features } = this.forwardCapturing(x, names, []);
    return { output, features };
  }

  /**
   * Output plus the *inputs* of the named submodules (DeepInversion matches the statistics of
   * what enters each batch-norm layer); the first input of a module that runs twice is kept.
   */
  forwardWithInputs(x: Tensor, names: string[]): { output: Tensor; inputs: Record<string, Tensor> } {
    const { output, inputs } = this.forwardCapturing(x, [], names);
    return { output, inputs };
  }

  private forwardCapturing(x: Tensor, names: string[], inputNames: string[]): { output: Tensor; features: Record<string, Tensor>; inputs: Record<string, Tensor> } {
    const known = new Set(this.namedModules().map(([n]) => n));
    const unknown = [...names, ...inputNames].filter((n) => !known.has(n));
    if (unknown.length) {
      throw new Error(`${this.constructor.name}: no submodule named ${unknown.map((n) => `'${n}'`).join(', ')}; ` +
        `known: ${[...known].filter(Boolean).join(', ')}`);
    }
    // Capture matches absolute paths, so a model nested in a wrapper still answers to its own names.
    const abs = (n: string): string => (this.path ? (n ? `${this.path}.${n}` : this.path) : n);
    const prev = capture;
    const cap = new FeatureCapture(new Set(names.map(abs)), new Set(inputNames.map(abs)));
    capture = cap;
    let output: Tensor;
    try {
      output = this.call(x);
    } finally {
      capture = prev;
    }
    const features: Record<string, Tensor> = {};
    for (const n of names) {
      const f = cap.features.get(abs(n));
      if (!f) throw new Error(`${this.constructor.name}: submodule '${n}' did not run in forward()`);
      features[n] = f;
    }
    const inputs: Record<string, Tensor> = {};
    for (const n of inputNames) {
      const f = cap.inputs.get(abs(n));
      if (!f) throw new Error(`${this.constructor.name}: submodule '${n}' did not run in forward()`);
      inputs[n] = f;
    }
    return { output, features, inputs };
  }

  // ---- registration ------------------------------------------------------------------
  protected registerParameter(name: string, t: Tensor, requiresGrad = true): Tensor {
    keep(t);
    t.requiresGrad_(requiresGrad);
    this.#params.set(name, t);
    return t;
  }
  protected registerBuffer(name: string, t: Tensor): Tensor {
    keep(t);
    this.#buffers.set(name, t);
    return t;
  }
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    m.setPath(this.path ? `${this.path}.${name}` : name);
    return m;
  }
  /** Replaces a registered parameter or buffer tensor (used by loadStateDict). */
  protected replaceTensor(name: string, t: Tensor): void {
    if (this.#params.has(name)) this.#params.set(name, t);
    else this.#buffers.set(name, t);
  }
  private setPath(p: string): void {
    this.path = p;
    for (const [n, c] of this.#children) c.setPath(`${p}.${n}`);
  }

  // ---- traversal ---------------------------------------------------------------------
  children(): [string, Module][] {
    return [...this.#children];
  }
  /** [path, module] for this module ('' ) and every descendant. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.#children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) for (const [n, t] of m.#params) out.push([p ? `${p}.${n}` : n, t]);
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) for (const [n, t] of m.#buffers) out.push([p ? `${p}.${n}` : n, t]);
    return out;
  }
  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((a, t) => a + t.numel(), 0);
  }
  /** The scalars inference uses: numParameters() unless a model carries parts for training only (a BERT's MLM head). */
  numInferenceParameters(): number {
    return this.numParameters();
  }

  // ---- modes -------------------------------------------------------------------------
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Runs fn with every module in eval mode, then gives each module back its own mode (also when fn throws). */
  inEvalMode<T>(fn: () => T): T {
    const modes = this.namedModules().map(([, m]) => [m, m.training] as const);
    this.eval();
    try {
      return fn();
    } finally {
      for (const [m, t] of modes) m.training = t;
    }
  }
  /** Stops gradients to every parameter (frozen teachers). */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad_(false);
    return this;
  }

  /** Frees every parameter and buffer now (they are exempt from tidy scopes); the module is unusable after. */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }

  // ---- state -------------------------------------------------------------------------
  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }
  /** Copies values in; every missing, unexpected or mis-shaped entry is reported by name. */
  loadStateDict(state: Map<string, Tensor>, strict = true): void {
    const own = this.stateDict();
    const problems: string[] = [];
    for (const [k, t] of own) {
      const src = state.get(k);
      if (!src) {
        if (strict) problems.push(`missing '${k}'`);
        continue;
      }
      const a = t.shape.join('x'), b = src.shape.join('x');
      if (a !== b) problems.push(`'${k}' has shape [${b}], the model needs [${a}]`);
    }
    if (strict) for (const k of state.keys()) if (!own.has(k)) problems.push(`unexpected '${k}'`);
    if (problems.length) throw new Error(`${this.constructor.name}.loadStateDict: ${problems.join('; ')}`);
    noGrad(() => {
      for (const [k, t] of own) {
        const src = state.get(k);
        if (!src) continue;
        if (src.dtype !== t.dtype) {
          const c = src.to(t.dtype);
          t.copy_(c);
          c.dispose();
        } else t.copy_(src);
      }
    });
  }
}
