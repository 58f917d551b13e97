// Star Attention hosts where host 0 (the query host) runs in this thread and hosts 1..k-1 each run
// in their own worker thread (ThreadStarHost), so on the CPU the hosts use k cores in phase 1 and 2.
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import type { Transformer } from '../../engine/runtime/transformer';
import type { StarHost } from '../../engine/star/host';
import type { LocalStarHost } from '../../engine/star/localHost';
import { createLocalHosts, type LocalHostsOptions } from './localHosts';
import { ThreadStarHost } from './threadHost';

export interface ThreadHostsOptions extends LocalHostsOptions {
  /** The file or folder `model` was opened from: each worker opens it again. */
  readonly modelPath: string;
  /** The bundled worker (dist/hostWorker.mjs); default: found beside or above this bundle. */
  readonly workerScript?: string;
}

export interface ThreadHosts {
  /** The query host's transformer (host 0's, in this thread). */
  readonly query: Transformer;
  /** Host 0, which the query attends in its own forward. */
  readonly colocated: LocalStarHost;
  /** Host 0 then the worker hosts. */
  readonly hosts: StarHost[];
  dispose(): Promise<void>;
}

export async function createThreadHosts(model: LoadedModel, opts: ThreadHostsOptions): Promise<ThreadHosts> {
  const count = opts.hosts ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new EngineError(`--hosts must be an integer in 1..64 (got ${count})`);
  const local = await createLocalHosts(model, { backend: opts.backend, hosts: 1, memoryBudgetBytes: opts.memoryBudgetBytes });
  const workers: ThreadStarHost[] = [];
  try {
    // Started together: each opens the model and uploads its weights on its own thread.
    const started = await Promise.allSettled(Array.from({ length: count - 1 }, (_, i) => ThreadStarHost.start({
      modelPath: opts.modelPath, backend: opts.backend, memoryBudgetBytes: opts.memoryBudgetBytes,
      workerScript: opts.workerScript, name: `host ${i + 1} (thread, ${opts.backend})`,
    })));
    for (const s of started) if (s.status === 'fulfilled') workers.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await Promise.allSettled(workers.map((w) => w.dispose()));
    await local.dispose();
    throw err;
  }
  return {
    query: local.query,
    colocated: local.hosts[0]!,
    hosts: [local.hosts[0]!, ...workers],
    async dispose() {
      await Promise.allSettled(workers.map((w) => w.dispose()));
      await local.dispose();
    },
  };
}
