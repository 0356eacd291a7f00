// A process group: c10d's TCPStore rendezvous plus a Gloo process group (native/distributed.cc),
// as torch.distributed.init_process_group(backend='gloo') sets up. Collectives block until done;
// a peer that died or a timeout throws a PeerFailure naming this rank and what was in flight.
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { native, type Handle } from '../tensor/native.js';
import { Tensor } from '../tensor/tensor.js';
import { cat, tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';

export interface DistributedOptions {
  worldSize: number;
  rank: number;
  /** Address and port of rank 0's TCP store (the rendezvous). */
  masterAddr: string;
  masterPort: number;
  /** Network interface Gloo binds to (default: $GLOO_SOCKET_IFNAME, else the address that routes to the master). */
  iface?: string;
  /** Rendezvous and collective timeout (default: $KDISTILL_DIST_TIMEOUT seconds, else 600 s). */
  timeoutMs?: number;
}

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

/** A collective failed: a peer died (its sockets closed) or the timeout passed. */
export class PeerFailure extends Error {}

/** Rank 0 writes: logs, checkpoints, caches, reports. */
export const isWriter = (pg: ProcessGroup | null | undefined): boolean => !pg || pg.rank === 0;

/**
 * Reads torchrun-style variables: WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT (the launcher sets
 * them). Null when WORLD_SIZE is unset.
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return null;
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(n) || n < 0) throw new Error(`distributed: ${name} must be a non-negative integer, got '${v ?? ''}'`);
    return n;
  };
  return checkOptions({
    worldSize: int('WORLD_SIZE', env.WORLD_SIZE),
    rank: int('RANK', env.RANK),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: int('MASTER_PORT', env.MASTER_PORT),
    ...(env.GLOO_SOCKET_IFNAME ? { iface: env.GLOO_SOCKET_IFNAME } : {}),
  });
}

/** Validates and returns the options; messages name the flag a user would fix. */
export function checkOptions(o: DistributedOptions): DistributedOptions {
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new Error(`distributed: world size must be a positive integer, got ${o.worldSize}`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new Error(`distributed: rank ${o.rank} is outside [0, ${o.worldSize}) for world size ${o.worldSize}`);
  if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) throw new Error(`distributed: master port must be in 1..65535, got ${o.masterPort}`);
  if (!o.masterAddr) throw new Error('distributed: a master address is needed (--master host:port)');
  return o;
}

/** "host:port" (IPv6 as [addr]:port) as given to --master. */
export function parseMaster(s: string): { masterAddr: string; masterPort: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--master must be host:port (e.g. 10.0.0.1:29500), got '${s}'`);
  return { masterAddr: m[1]!, masterPort: Number(m[2]) };
}

function defaultTimeoutMs(): number {
  const s = Number(process.env.KDISTILL_DIST_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 600_000;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host.startsWith('127.') || host === '::1';

/** This machine's address on the route to `host` (no packet is sent: a UDP connect only picks the route). */
async function localAddressToward(host: string, port: number): Promise<string | null> {
  const family = isIP(host) === 6 ? 'udp6' : 'udp4';
  const s = createSocket(family);
  try {
    return await new Promise<string | null>((resolve) => {
      s.once('error', () => resolve(null));
      s.connect(port, host, () => resolve(s.address().address));
    });
  } finally {
    s.close();
  }
}

/**
 * DDP's reducer over a process group (native/distributed.cc): all-reduces buckets of gradients
 * from autograd hooks while backward runs (see OverlappedGradients in buckets.ts).
 */
export interface GradientReducer {
  /** Before backward from `roots`: arms the hooks; this rank's gradients count `weight` times. */
  prepare(weight: number, roots: Tensor[]): void;
  /** After backward: waits for every bucket and writes the sums; the number of buckets that started earlier. */
  finalize(): number;
  destroy(): void;
}

export class ProcessGroup {
  readonly rank: number;
  readonly size: number;
  // held so the rendezvous store (rank 0 serves it) lives exactly as long as the group
  #store: Handle | null;
  #pg: Handle | null;
  // destroyed with the group: each holds the group's sockets and hooks on parameters
  #reducers = new Set<GradientReducer>();

  private constructor(rank: number, size: number, store: Handle, pg: Handle) {
    this.rank = rank;
    this.size = size;
    this.#store = store;
    this.#pg = pg;
  }

  /** Joins the group: rank 0 hosts the TCP store; every rank waits until all have joined. */
  static async init(opts: DistributedOptions): Promise<ProcessGroup> {
    const o = checkOptions(opts);
    const timeout = o.timeoutMs ?? defaultTimeoutMs();
    // Gloo must bind to an address the peers can reach: loopback for one machine; otherwise the
    // interface asked for, or the address routing to the master (the host name may resolve to
    // 127.0.1.1 on Debian, which peers cannot reach).
    let where: { iface?: string; hostname?: string } = {};
    if (o.iface) where = { iface: o.iface };
    else if (isLoopback(o.masterAddr)) where = { hostname: '127.0.0.1' };
    else {
      const local = await localAddressToward(o.masterAddr, o.masterPort);
      if (local) where = { hostname: local };
    }
    const what = `rank ${o.rank} of ${o.worldSize} (master ${o.masterAddr}:${o.masterPort})`;
    let store: Handle;
    try {
      store = native.distStoreCreate(o.masterAddr, o.masterPort, o.worldSize, o.rank === 0, timeout);
    } catch (e) {
      throw new PeerFailure(`distributed: ${what} cannot ${o.rank === 0 ? 'listen on' : 'reach'} the rendezvous store: ${firstLine(e)}`, { cause: e });
    }
    let pg: Handle;
    try {
      pg = native.distGroupCreate(store, o.rank, o.worldSize, where, timeout);
    } catch (e) {
      throw new PeerFailure(`distributed: ${what} could not form the process group within ${timeout / 1000} s (did every rank start, with the same --world-size and --master?): ${firstLine(e)}`, { cause: e });
    }
    return new ProcessGroup(o.rank, o.worldSize, store, pg);
  }

  #handle(): Handle {
    if (!this.#pg) throw new Error('distributed: the process group was destroyed');
    return this.#pg;
  }

  #run<T>(what: string, f: (pg: Handle) => T): T {
    const pg = this.#handle();
    try {
      return f(pg);
    } catch (e) {
      throw new PeerFailure(`distributed: rank ${this.rank} of ${this.size}: ${firstLine(e)} (another process of the group died or stopped responding during ${what})`, { cause: e });
    }
  }

  /** Reduces every (contiguous) tensor across ranks, in place. */
  allreduce(ts: Tensor[], op: ReduceOp = 'sum'): void {
    if (ts.length) this.#run('allreduce', (pg) => native.distAllreduce(pg, ts.map((t) => t.handle), op));
  }

  /** Every tensor takes `root`'s values, in place. */
  broadcast(ts: Tensor[], root = 0): void {
    if (ts.length) this.#run('broadcast', (pg) => native.distBroadcast(pg, ts.map((t) => t.handle), root));
  }

  /** One tensor per rank, each shaped like `t` (which must have the same shape on every rank). */
  allgather(t: Tensor): Tensor[] {
    return this.#run('allgather', (pg) => native.distAllgather(pg, t.handle)).map((h) => new Tensor(h));
  }

  barrier(): void {
    this.#run('barrier', (pg) => native.distBarrier(pg));
  }

  /** Numbers summed across ranks (float64: exact for counts and loss sums). */
  sumNumbers(values: number[], op: ReduceOp = 'sum'): number[] {
    return tidy(() => {
      const t = tensor(Float64Array.from(values), { dtype: 'float64' });
      this.allreduce([t], op);
      return Array.from(t.data<Float64Array>());
    });
  }

  /** Root's bytes on every rank (length first, then the bytes). */
  broadcastBytes(bytes: Uint8Array | null, root = 0): Buffer {
    const [n] = tidy(() => {
      const len = tensor(Float64Array.of(this.rank === root ? bytes!.length : 0), { dtype: 'float64' });
      this.broadcast([len], root);
      return Array.from(len.data<Float64Array>());
    });
    if (!n) return Buffer.alloc(0);
    return tidy(() => {
      const b = tensor(this.rank === root ? bytes! : new Uint8Array(n), { dtype: 'uint8' });
      this.broadcast([b], root);
      const d = b.data<Uint8Array>();
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    });
  }

  /**
   * Root's values copied into `ts` on every rank, one exchange per dtype (parameters and buffers
   * at start-up, as DDP does, so every rank starts from the same weights).
   */
  broadcastTensors(ts: Tensor[], root = 0): void {
    for (const group of byDtype(ts)) {
      tidy(() => noGrad(() => {
        const flat = cat(group.map((t) => t.reshape(-1)));
        this.broadcast([flat], root);
        let off = 0;
        for (const t of group) {
          const n = t.numel();
          t.copy_(flat.narrow(0, off, n).view(t.shape));
          off += n;
        }
      }));
    }
  }

  /** Averages `ts` across ranks in place, one exchange per dtype. */
  averageTensors(ts: Tensor[]): void {
    for (const group of byDtype(ts)) {
      tidy(() => noGrad(() => {
        const flat = cat(group.map((t) => t.reshape(-1)));
        this.allreduce([flat], 'avg');
        let off = 0;
        for (const t of group) {
          const n = t.numel();
          t.copy_(flat.narrow(0, off, n).view(t.shape));
          off += n;
        }
      }));
    }
  }

  /** A gradient reducer for `params` (each requiring a gradient), in buckets of indices into it. */
  createReducer(params: Tensor[], buckets: number[][]): GradientReducer {
    const h = native.distReducerCreate(this.#handle(), params.map((p) => p.handle), buckets);
    const r: GradientReducer = {
      prepare: (weight, roots) => this.#run('the gradient all-reduce', () => native.distReducerPrepare(h, weight, roots.map((t) => t.handle))),
      finalize: () => {
        try {
          return native.distReducerFinalize(h);
        } catch (e) {
          // The reducer's own complaints (e.g. a parameter given two gradients) are no peer's fault.
          if (firstLine(e).startsWith('gradient reducer:')) throw e;
          return this.#run('the gradient all-reduce', () => { throw e; });
        }
      },
      destroy: () => {
        native.distReducerDestroy(h);
        this.#reducers.delete(r);
      },
    };
    this.#reducers.add(r);
    return r;
  }

  /** Releases sockets and threads now (otherwise at garbage collection). */
  destroy(): void {
    for (const r of [...this.#reducers]) r.destroy();
    if (this.#pg) native.distGroupDestroy(this.#pg);
    this.#pg = null;
    this.#store = null;
  }
}

function byDtype(ts: Tensor[]): Tensor[][] {
  const m = new Map<string, Tensor[]>();
  for (const t of ts) {
    if (t.numel() === 0) continue;
    const g = m.get(t.dtype) ?? [];
    g.push(t);
    m.set(t.dtype, g);
  }
  return [...m.values()];
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split('\n')[0]!;
}
