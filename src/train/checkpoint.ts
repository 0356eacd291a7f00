// Training checkpoints: one safetensors file holding the trainable modules' state, the
// optimizer state (as bytes), the global RNG state and the loop position. One file, written
// atomically, so a checkpoint is never half-written and always self-consistent.
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { getRngState, setRngState } from '../tensor/torch.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { loadSafetensors, saveSafetensors } from '../nn/safetensors.js';

export interface TrainState {
  /** Epoch and batch index the run continues at. */
  epoch: number;
  batch: number;
  /** Global steps taken. */
  step: number;
  /** Running sums of the current epoch's loss terms, so its mean survives a resume. */
  sums?: Record<string, number>;
  count?: number;
}

export function saveCheckpoint(path: string, modules: Module[], optimizer: Optimizer, state: TrainState): void {
  const tensors = new Map<string, Tensor>();
  modules.forEach((m, i) => {
    for (const [k, t] of m.stateDict()) tensors.set(`module${i}.${k}`, t);
  });
  const opt = optimizer.stateDict();
  const optT = tensor(new Uint8Array(opt.buffer, opt.byteOffset, opt.byteLength));
  const rng = getRngState();
  tensors.set('optimizer', optT);
  tensors.set('rng', rng);
  try {
    saveSafetensors(path, tensors, { kind: 'kdistill-checkpoint', state: JSON.stringify(state), modules: String(modules.length) });
  } finally {
    optT.dispose();
    rng.dispose();
  }
}

export function loadCheckpoint(path: string, modules: Module[], optimizer: Optimizer): TrainState {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    if (metadata.kind !== 'kdistill-checkpoint') throw new Error(`${path} is not a kdistill training checkpoint`);
    if (Number(metadata.modules) !== modules.length) {
      throw new Error(`${path}: checkpoint holds ${metadata.modules} trainable modules, this run has ${modules.length} (was the method changed?)`);
    }
    modules.forEach((m, i) => {
      const prefix = `module${i}.`;
      const own = new Map<string, Tensor>();
      for (const [k, t] of tensors) if (k.startsWith(prefix)) own.set(k.slice(prefix.length), t);
      try {
        m.loadStateDict(own);
      } catch (e) {
        throw new Error(`${path}: ${(e as Error).message}`);
      }
    });
    const opt = tensors.get('optimizer');
    const rng = tensors.get('rng');
    if (!opt || !rng) throw new Error(`${path}: checkpoint lacks optimizer or RNG state`);
    const bytes = opt.data<Uint8Array>();
    optimizer.loadStateDict(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    setRngState(rng);
    const state = JSON.parse(metadata.state ?? 'null') as TrainState | null;
    if (!state || typeof state.epoch !== 'number') throw new Error(`${path}: checkpoint has no loop position`);
    return state;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
