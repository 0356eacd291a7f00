// Training checkpoints: one safetensors file holding the trainable modules' state, the
// optimizer state (as bytes), the global RNG state and the loop position. One file, written
// atomically, so a checkpoint is never half-written and always self-consistent.
import { createHash } from 'node:crypto';
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

/**
 * sha256 over every tensor (name, dtype, shape, bytes) in name order. The optimizer and RNG bytes
 * go to libtorch deserialisers that trust their input, so corruption is caught here first.
 */
function digest(tensors: Map<string, Tensor>, meta: string): string {
  const h = createHash('sha256').update(meta);
  for (const k of [...tensors.keys()].sort()) {
    const t = tensors.get(k)!;
    const d = t.data();
    h.update(`${k}\0${t.dtype}\0${t.shape.join(',')}\0`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
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
    saveSafetensors(path, tensors, { kind: 'kdistill-checkpoint', state: JSON.stringify(state), modules: String(modules.length), sha256: digest(tensors, `${JSON.stringify(state)}\0${modules.length}`) });
  } catch (e) {
    // The write is atomic (temp file + rename), so a failure leaves the previous checkpoint in place.
    const m = (e as Error).message;
    if (/ENOSPC|no space/i.test(m)) throw new Error(`no space left on device while writing the checkpoint ${path}; the previous checkpoint there is untouched and still usable: free some space and resume`, { cause: e });
    throw new Error(`cannot write the checkpoint ${path} (${m}); the previous checkpoint there is untouched`, { cause: e });
  } finally {
    optT.dispose();
    rng.dispose();
  }
}

export function loadCheckpoint(path: string, modules: Module[], optimizer: Optimizer): TrainState {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    if (metadata.kind !== 'kdistill-checkpoint') throw new Error(`${path} is not a kdistill training checkpoint`);
    if (metadata.sha256 !== undefined && metadata.sha256 !== digest(tensors, `${metadata.state}\0${metadata.modules}`)) throw new Error(`${path}: checksum mismatch, the checkpoint is corrupt (delete it or start over with --no-resume)`);
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
    // Validate the loop position before touching the optimizer or the RNG.
    let state: TrainState | null;
    try {
      state = JSON.parse(metadata.state ?? 'null') as TrainState | null;
    } catch {
      throw new Error(`${path}: the checkpoint's loop position is not valid JSON (corrupt checkpoint)`);
    }
    const nat = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!state || typeof state !== 'object' || !nat(state.epoch) || !nat(state.batch) || !nat(state.step)) throw new Error(`${path}: checkpoint has no valid loop position`);
    if (opt.dtype !== 'uint8' || opt.shape.length !== 1 || rng.dtype !== 'uint8' || rng.shape.length !== 1) throw new Error(`${path}: checkpoint's optimizer or RNG state is not a byte vector`);
    const bytes = opt.data<Uint8Array>();
    try {
      optimizer.loadStateDict(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new Error(`${path}: cannot restore the optimizer state (${(e as Error).message.split('\n')[0]}); was the optimizer changed, or is the checkpoint corrupt?`);
    }
    try {
      setRngState(rng);
    } catch (e) {
      throw new Error(`${path}: cannot restore the RNG state (${(e as Error).message.split('\n')[0]})`);
    }
    return state;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
