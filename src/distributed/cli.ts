// The CLI's distributed flags: --nproc N starts N workers here (the launcher); --world-size,
// --rank and --master host:port place this invocation in a group spanning machines.
import { checkOptions, distributedFromEnv, parseMaster, type DistributedOptions } from './group.js';

export const DISTRIBUTED_CLI_OPTIONS = {
  nproc: { type: 'string' },
  'world-size': { type: 'string' },
  rank: { type: 'string' },
  master: { type: 'string' },
} as const;

export type DistributedArgs =
  | { kind: 'single' }
  /** Start workers on this machine (ranks firstRank .. firstRank+nproc-1 of worldSize). */
  | { kind: 'launch'; nproc: number; worldSize: number; firstRank: number; masterAddr?: string; masterPort?: number }
  /** This process is one rank of a group. */
  | { kind: 'worker'; options: DistributedOptions };

/** Interprets the flags (parsed by parseArgs with DISTRIBUTED_CLI_OPTIONS) and the launcher's environment. */
export function distributedArgs(values: Partial<Record<keyof typeof DISTRIBUTED_CLI_OPTIONS, string | undefined>>, env: NodeJS.ProcessEnv = process.env): DistributedArgs {
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  // A worker started by a launcher: its environment says where it belongs.
  const fromEnv = distributedFromEnv(env);
  if (fromEnv && env.KDISTILL_LAUNCHER_PID) return fromEnv.worldSize > 1 ? { kind: 'worker', options: fromEnv } : { kind: 'single' };
  const nproc = int('nproc', values.nproc, 1);
  const world = int('world-size', values['world-size'], 1);
  const rank = int('rank', values.rank, 0);
  const master = values.master !== undefined ? parseMaster(values.master) : undefined;
  if (world !== undefined && world > 1 && !master) throw new Error('--world-size needs --master host:port (the address of the machine running rank 0, and a free port there)');
  if (rank !== undefined && world === undefined) throw new Error('--rank needs --world-size');
  if (nproc !== undefined && (nproc > 1 || (world ?? 1) > 1)) {
    return { kind: 'launch', nproc, worldSize: world ?? nproc, firstRank: rank ?? 0, ...(master ?? {}) };
  }
  if (world !== undefined && world > 1) {
    return { kind: 'worker', options: checkOptions({ worldSize: world, rank: rank ?? 0, ...master!, ...(env.GLOO_SOCKET_IFNAME ? { iface: env.GLOO_SOCKET_IFNAME } : {}) }) };
  }
  // Variables set by another launcher (e.g. torchrun, a cluster scheduler).
  if (fromEnv && fromEnv.worldSize > 1) return { kind: 'worker', options: fromEnv };
  return { kind: 'single' };
}
