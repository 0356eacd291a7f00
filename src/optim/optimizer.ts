// libtorch's optimizers bound as torch.optim.SGD / Adam / AdamW. Learning rates can change every
// step (schedules call setLr); state serialises to bytes for checkpoints.
import { native, type Handle } from '../tensor/native.js';
import type { Tensor } from '../tensor/tensor.js';

export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
}

export interface SGDOptions { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }
export interface AdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number; amsgrad?: boolean }

type Params = Tensor[] | ParamGroup[];

function groups(params: Params): ParamGroup[] {
  if (params.length === 0) throw new Error('optimizer got an empty parameter list');
  return (params[0] as ParamGroup).params !== undefined ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
}

export abstract class Optimizer {
  readonly handle: Handle;
  readonly paramGroups: ParamGroup[];

  protected constructor(kind: string, params: Params, defaults: object) {
    this.paramGroups = groups(params);
    for (const [i, g] of this.paramGroups.entries()) {
      for (const p of g.params) if (!p.isLeaf) throw new Error(`optimizer parameter group ${i}: a parameter is not a leaf tensor (call .detach().requiresGrad_())`);
    }
    const gs = this.paramGroups.map((g) => {
      const o: { params: Handle[]; [k: string]: unknown } = { params: g.params.map((p) => p.handle) };
      if (g.lr !== undefined) o.lr = g.lr;
      if (g.weightDecay !== undefined) o.weightDecay = g.weightDecay;
      return o;
    });
    this.handle = native.optimCreate(kind, gs, { ...defaults });
  }

  step(): void {
    native.optimStep(this.handle);
  }
  /** Drops gradients (setToNone, the default and cheaper) or zeroes them. */
  zeroGrad(setToNone = true): void {
    native.optimZeroGrad(this.handle, setToNone);
  }
  /** Sets the learning rate of every group, or of one. */
  setLr(lr: number, group?: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`learning rate must be a finite number >= 0, got ${lr}`);
    native.optimSetLr(this.handle, lr, group);
  }
  get lr(): number {
    return native.optimGetLr(this.handle)[0]!;
  }
  lrs(): number[] {
    return native.optimGetLr(this.handle);
  }
  /** Optimizer state (moments, step counts) as bytes. */
  stateDict(): Buffer {
    return native.optimSave(this.handle);
  }
  loadStateDict(b: Buffer): void {
    native.optimLoad(this.handle, b);
  }
}

export class SGD extends Optimizer {
  constructor(params: Params, o: SGDOptions) {
    if (o.nesterov && (!o.momentum || (o.dampening ?? 0) !== 0)) throw new Error('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    super('sgd', params, o);
  }
}

export class Adam extends Optimizer {
  constructor(params: Params, o: AdamOptions = {}) {
    super('adam', params, o);
  }
}

export class AdamW extends Optimizer {
  constructor(params: Params, o: AdamOptions = {}) {
    super('adamw', params, { weightDecay: 0.01, ...o });
  }
}

/** An optimizer as an experiment file or the library API names it (`optimizer:`). */
export interface OptimizerSpec {
  name: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  betas?: [number, number];
  /** Max-norm constraint on the student's linear/conv weights after each step (src/optim/constraints.ts). */
  maxNorm?: number;
}

/** The optimizer an OptimizerSpec names, over `params`. */
export function makeOptimizer(spec: OptimizerSpec, params: Tensor[] | ParamGroup[]): Optimizer {
  switch (spec.name) {
    case 'sgd':
      return new SGD(params, { lr: spec.lr, momentum: spec.momentum ?? 0, nesterov: spec.nesterov ?? false, weightDecay: spec.weightDecay ?? 0 });
    case 'adam':
      return new Adam(params, { lr: spec.lr, weightDecay: spec.weightDecay ?? 0, ...(spec.betas ? { betas: spec.betas } : {}) });
    case 'adamw':
      return new AdamW(params, { lr: spec.lr, weightDecay: spec.weightDecay ?? 0.01, ...(spec.betas ? { betas: spec.betas } : {}) });
  }
}
