// Host pools: the Star Attention hosts a question is answered on, in one of three places. hosts[0] is the query
// host; phase 1 encodes and loads through every host (RepoSession), answer() runs phase 2 (answerQuery) where
// hosts[0] lives:
// - in process (the CLI's default): every host in this thread;
// - worker threads: every host, the query host included, in its own worker_threads Worker; the query host reaches
//   the others through MessageChannels, so per-layer traffic never touches this thread;
// - webview workers (webviewHostPool.ts): the same, with the workers in the extension's webview.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, SHARE_ENV, Worker } from 'node:worker_threads';
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { answerQuery, prefillQuery, type AnswerRequest, type AnswerResult, type HeldPrefix, type PrefixRequest } from '../../engine/star/answer';
import type { StarHost } from '../../engine/star/host';
import type { QuestionQueries } from '../../engine/star/selection/keySummary';
import { probeQuestionQueries } from '../../engine/star/selection/queryProbe';
import type { BlockKv } from '../../engine/star/types';
import { serialQueue } from '../../engine/util/serialQueue';
import type { HostDescription } from '../../protocol/hostMethods';
import { StarHostClient } from '../../protocol/starHost';
import type { BackendKind } from '../createBackend';
import { cpuThreadsPerHost } from '../cpuThreads';
import type { NodeHostWorkerData } from './hostWorker';
import { checkHostCount, createLocalHosts } from './localHosts';
import { nodeWorkerPort } from './nodePort';

export type HostKind = 'webview-webgpu' | 'node-webgpu' | 'node-cpu' | 'in-process';

export interface HostPool {
  readonly kind: HostKind;
  /** The query host's device, e.g. "SwiftShader (emulated)". */
  readonly device: string;
  /** hosts[0] is the query host; phase 1 encodes/loads through these. */
  readonly hosts: readonly StarHost[];
  /** Phase 2 over every host's blocks. One at a time (a second call waits for the first). */
  answer(req: AnswerRequest, onToken: (id: number, text: string) => void, signal?: AbortSignal): Promise<AnswerResult>;
  /**
   * Runs the start of the next question ahead of it (answer.ts prefillQuery), held on the query host until the next
   * answer, which uses it when asked to (AnswerRequest.prefilled) and drops it otherwise. Serial with answer.
   */
  prefill(req: PrefixRequest, signal?: AbortSignal): Promise<void>;
  /**
   * The question's per-layer queries over `context` (the anchor's KV), for ranking blocks by attention
   * (selection/queryProbe.ts). Only where the query host runs in this thread; worker pools leave it out and a
   * question there is ranked lexically.
   */
  probe?(context: readonly BlockKv[], question: readonly number[], position: number, signal?: AbortSignal): Promise<QuestionQueries>;
  /** Drops every host's blocks (weights stay). */
  clear(): Promise<void>;
  dispose(): Promise<void>;
}

export interface InProcessPoolOptions {
  readonly backend: BackendKind;
  readonly hosts?: number;
  /** Overrides the backend's memory budget for blocks' KV (forces waves in tests). */
  readonly memoryBudgetBytes?: number;
}

export async function createInProcessHostPool(model: LoadedModel, opts: InProcessPoolOptions): Promise<HostPool> {
  const local = await createLocalHosts(model, { backend: opts.backend, hosts: opts.hosts, memoryBudgetBytes: opts.memoryBudgetBytes });
  // An in-process host must not run two calls at once.
  const serial = serialQueue();
  const runner = { transformer: local.query, tokenizer: model.tokenizer };
  let held: HeldPrefix | undefined;
  const take = () => {
    const h = held;
    held = undefined;
    return h;
  };
  return {
    kind: 'in-process',
    device: local.query.backend.deviceName,
    hosts: local.hosts,
    answer: (req, onToken, signal) => serial(() => answerQuery(runner, local.hosts, local.hosts[0], req, onToken, signal, take())),
    prefill: (req, signal) => serial(async () => {
      take()?.dispose();
      held = await prefillQuery(runner, local.hosts, local.hosts[0], req, signal);
    }),
    probe: (context, question, position, signal) => serial(() => probeQuestionQueries(local.query, context, question, { position, signal })),
    clear: () => serial(async () => { take()?.dispose(); await Promise.all(local.hosts.map((h) => h.clear())); }),
    dispose: () => serial(() => { take()?.dispose(); return local.dispose(); }),
  };
}

export interface ThreadPoolOptions {
  /** The model file or folder; every worker opens it itself. */
  readonly modelPath: string;
  readonly backend: BackendKind;
  readonly hosts?: number;
  /** The bundled worker (dist/hostWorker.mjs); default: found beside or above this bundle. */
  readonly workerScript?: string;
  readonly memoryBudgetBytes?: number;
  /** Rows per batched phase-1 forward in each worker (LocalStarHostOptions.maxBatchRows). */
  readonly maxBatchRows?: number;
}

/** The bundle name of the worker entry (scripts/build.mjs). */
export const HOST_WORKER_BUNDLE = 'hostWorker.mjs';

/** dist/hostWorker.mjs as seen from the bundle running this code: dist/cli.mjs has it beside itself, tests one folder up. */
export function defaultHostWorkerScript(): string {
  const url = import.meta.url;
  if (!url) throw new EngineError('cannot locate the host worker bundle from this build; pass workerScript');
  const here = dirname(fileURLToPath(url));
  const candidates = [resolve(here, HOST_WORKER_BUNDLE), resolve(here, '..', HOST_WORKER_BUNDLE), resolve(here, '../../dist', HOST_WORKER_BUNDLE)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new EngineError(`host worker bundle not found (looked for ${candidates.join(', ')}); run \`node scripts/build.mjs\``);
  return found;
}

/**
 * Every host in its own worker thread. Rejects with the worker's error when a host cannot start: a DeviceError
 * when backend 'webgpu' finds no adapter (the caller may fall back to 'cpu'), a FormatError for a bad model file.
 */
export async function createThreadHostPool(opts: ThreadPoolOptions): Promise<HostPool> {
  const count = checkHostCount(opts.hosts ?? 1);
  const script = opts.workerScript ?? defaultHostWorkerScript();
  if (!existsSync(script)) throw new EngineError('host worker bundle not found', script);
  // Host 0 gets port1 of every channel, host i port2 of channel i-1.
  const channels = Array.from({ length: count - 1 }, () => new MessageChannel());
  const names = Array.from({ length: count }, (_, i) => `host ${i} (thread, ${opts.backend})`);
  const spawn = (i: number) => {
    const peers = i === 0 ? channels.map((c) => c.port1) : [];
    const served = i === 0 ? [] : [channels[i - 1]!.port2];
    const workerData: NodeHostWorkerData = {
      modelPath: opts.modelPath, backend: opts.backend, peers, served, cpuThreads: cpuThreadsPerHost(count),
      runtime: { name: names[i]!, memoryBudgetBytes: opts.memoryBudgetBytes, maxBatchRows: opts.maxBatchRows },
    };
    // SHARE_ENV: the Vulkan loader reads the process's real environment, which only a shared env reaches (the Dawn
    // setup falls back to SwiftShader by setting VK_ICD_FILENAMES, src/node/webgpu.ts).
    return new Worker(script, { workerData, transferList: [...peers, ...served], env: SHARE_ENV });
  };
  const workers: Worker[] = [];
  const clients: StarHostClient[] = [];
  for (let i = 0; i < count; i++) {
    workers.push(spawn(i));
    clients.push(new StarHostClient(nodeWorkerPort(workers[i]!, `${names[i]} worker`), names[i]!));
    // A GPU backend's setup may set the shared environment (SwiftShader's VK_ICD_FILENAMES) while another thread's
    // Vulkan loader reads it: GPU hosts start one after another (measured: concurrent starts failed 1 in 5).
    if (opts.backend !== 'cpu' && opts.backend !== 'cpu-ref' && !(await clients[i]!.rpc.call('describe', []).then(() => true, () => false))) break;
  }
  const terminate = () => Promise.all(workers.map((w) => w.terminate()));
  return poolOfClients(clients, (d) => (d.backend === 'webgpu' ? 'node-webgpu' : 'node-cpu'), terminate);
}

/**
 * A pool over host workers reached through StarHostClients (threads or webview workers): waits until every host
 * has started (the first failure, e.g. DeviceError, rejects after `close`), then answers on clients[0]'s worker.
 */
export async function poolOfClients(
  clients: readonly StarHostClient[],
  kindOf: (d: HostDescription) => HostKind,
  close: () => Promise<unknown>,
): Promise<HostPool> {
  let query: HostDescription;
  try {
    [query] = await allStarted(clients.map((c) => c.rpc.call('describe', [])));
  } catch (err) {
    for (const c of clients) c.rpc.close();
    await close();
    throw err;
  }
  let disposed = false;
  // One host lost is the pool lost (its blocks are gone): every host's calls fail with that host's error.
  for (const c of clients) c.rpc.onFailure((err) => { if (!disposed) for (const other of clients) other.rpc.failAll(err); });
  return {
    kind: kindOf(query),
    device: query.device,
    hosts: clients,
    answer: (req, onToken, signal) => clients[0]!.rpc.call('answer', [req], { signal, onEvent: (t) => onToken(t.id, t.text) }),
    prefill: (req, signal) => clients[0]!.rpc.call('prefill', [req], { signal }),
    clear: async () => { await Promise.all(clients.map((c) => c.clear())); },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await Promise.allSettled(clients.map((c) => c.dispose()));
      await close();
    },
  };
}

/** Every value once all have settled (unlike Promise.all, which rejects while others still run), or the first failure. */
async function allStarted<T>(starts: readonly Promise<T>[]): Promise<T[]> {
  const values: T[] = [];
  for (const s of await Promise.allSettled(starts)) {
    if (s.status === 'rejected') throw s.reason;
    values.push(s.value);
  }
  return values;
}
