// Creates Star Attention hosts in this process: each host owns its own backend (a CPU backend or
// a Dawn WebGPU device) and its own copy of the weights. Host 0 also runs the query (phase 2):
// its resident blocks are attended inside the query's own forward, the others are merged in.
import type { Backend } from '../../engine/backend/types';
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { Transformer } from '../../engine/runtime/transformer';
import { LocalStarHost } from '../../engine/star/localHost';
import { createBackend, type BackendKind } from '../createBackend';
import { cpuThreadsPerHost } from '../cpuThreads';

export interface LocalHostsOptions {
  readonly backend: BackendKind;
  /** Number of hosts (each holds its own weights). Default 1. */
  readonly hosts?: number;
  /** Overrides the backend's memory budget for blocks' KV (forces waves in tests). */
  readonly memoryBudgetBytes?: number;
}

export interface LocalHosts {
  /** The query host's transformer (host 0's). */
  readonly query: Transformer;
  readonly hosts: LocalStarHost[];
  dispose(): Promise<void>;
}

export async function createLocalHosts(model: LoadedModel, opts: LocalHostsOptions): Promise<LocalHosts> {
  const count = checkHostCount(opts.hosts ?? 1);
  const backends: Backend[] = [];
  const hosts: LocalStarHost[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const backend = await createBackend(opts.backend, {
        ...(opts.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: opts.memoryBudgetBytes } : {}),
        threads: cpuThreadsPerHost(count),
      });
      backends.push(backend);
      const transformer = await Transformer.create(model, backend);
      hosts.push(new LocalStarHost(transformer, { name: `host ${i} (${backend.deviceName})`, memoryBudgetBytes: opts.memoryBudgetBytes }));
    }
  } catch (err) {
    for (const b of backends) b.destroy();
    throw err;
  }
  return {
    query: hosts[0]!.transformer,
    hosts,
    async dispose() {
      for (const h of hosts) await h.dispose();
      for (const b of backends) b.destroy();
    },
  };
}

/** Most hosts one pool runs (each host holds its own weights). */
export const MAX_HOSTS = 64;

export function checkHostCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new EngineError(`the host count must be an integer in 1..${MAX_HOSTS} (got ${count})`);
  return count;
}
