// Autograd entry points: grad mode and the functional grad() with higher-order support.
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** Runs fn with gradient recording off (torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording on, even inside noGrad (torch.enable_grad()). */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function setGradEnabled(b: boolean): boolean {
  return native.setGradEnabled(b);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  gradOutputs?: (Tensor | null)[] | Tensor;
  retainGraph?: boolean;
  /** Record the gradient computation itself, for second-order derivatives. */
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on instead of throwing. */
  allowUnused?: boolean;
}

/** torch.autograd.grad: d(outputs)/d(inputs), without touching .grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], o: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const go = o.gradOutputs === undefined ? null : (Array.isArray(o.gradOutputs) ? o.gradOutputs : [o.gradOutputs]).map((t) => t?.handle ?? null);
  const res = native.grad(outs.map((t) => t.handle), ins.map((t) => t.handle), go, o.retainGraph, o.createGraph ?? false, o.allowUnused ?? false);
  return res.map((h) => (h === null ? null : new Tensor(h)));
}

/** torch.autograd.backward: accumulate gradients of several outputs into the leaves' .grad. */
export function backward(outputs: Tensor[], gradOutputs?: Tensor[], o: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
  native.backward(outputs.map((t) => t.handle), gradOutputs ? gradOutputs.map((t) => t.handle) : null, o.retainGraph, o.createGraph ?? false, null);
}
