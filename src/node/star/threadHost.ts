// A Star Attention host in a Node worker thread: this main-thread proxy forwards every StarHost
// call as a message to hostWorker.ts, which holds its own weights, backend and blocks. On the CPU,
// hosts in separate threads encode (phase 1) and attend (phase 2) in parallel on separate cores.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CancelledError, EngineError } from '../../engine/errors';
import type { StarHost } from '../../engine/star/host';
import type { BlockKv, BlockSpec, HostAttention } from '../../engine/star/types';
import { deserializeError } from '../../protocol/engineMessages';
import type { BackendKind } from '../createBackend';
import type { HostReply, HostRequest, HostWorkerInit } from './hostMessages';

export interface ThreadHostOptions {
  /** The model file or folder; the worker opens it itself (openModel). */
  readonly modelPath: string;
  readonly backend: BackendKind;
  readonly name?: string;
  /** Overrides the worker backend's memory budget for blocks' KV. */
  readonly memoryBudgetBytes?: number;
  readonly maxBatchRows?: number;
  /** The bundled worker (dist/hostWorker.mjs); default: found beside or above this bundle. */
  readonly workerScript?: string;
}

/** The bundle name of the worker entry (scripts/build.mjs). */
export const HOST_WORKER_BUNDLE = 'hostWorker.mjs';

/**
 * dist/hostWorker.mjs as seen from the bundle running this code: dist/cli.mjs has it beside
 * itself, test bundles in dist/test/ one folder up.
 */
export function defaultHostWorkerScript(): string {
  const url = import.meta.url;
  if (!url) throw new EngineError('cannot locate the host worker bundle from this build; pass workerScript');
  const here = dirname(fileURLToPath(url));
  const candidates = [resolve(here, HOST_WORKER_BUNDLE), resolve(here, '..', HOST_WORKER_BUNDLE), resolve(here, '../../dist', HOST_WORKER_BUNDLE)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new EngineError(`host worker bundle not found (looked for ${candidates.join(', ')}); run \`node scripts/build.mjs\``);
  return found;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export class ThreadStarHost implements StarHost {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private disposed = false;

  private constructor(
    readonly name: string,
    private readonly worker: Worker,
    /** Settles with the thread's exit code once it has ended (after dispose, or a crash). */
    readonly exited: Promise<number>,
  ) {}

  /** Starts the worker and waits until it has opened the model and made its backend. */
  static async start(opts: ThreadHostOptions): Promise<ThreadStarHost> {
    const script = opts.workerScript ?? defaultHostWorkerScript();
    if (!existsSync(script)) throw new EngineError('host worker bundle not found', script);
    const name = opts.name ?? `thread host (${opts.backend})`;
    const init: HostWorkerInit = {
      modelPath: opts.modelPath, backend: opts.backend, name,
      memoryBudgetBytes: opts.memoryBudgetBytes, maxBatchRows: opts.maxBatchRows,
    };
    const worker = new Worker(script, { workerData: init });
    const exited = new Promise<number>((res) => worker.once('exit', res));
    let ready: { resolve(name: string): void; reject(err: Error): void } | undefined;
    const readyName = new Promise<string>((res, rej) => { ready = { resolve: res, reject: rej }; });
    let host: ThreadStarHost | undefined;
    worker.on('message', (msg: HostReply) => {
      if (msg.id === 0) {
        if (msg.kind === 'ready') ready!.resolve(msg.name);
        else if (msg.kind === 'error') ready!.reject(deserializeError(msg.error));
        return;
      }
      host?.settle(msg);
    });
    const fail = (err: Error): void => {
      ready!.reject(err);
      host?.failAll(err);
    };
    worker.on('error', (err) => fail(new EngineError(`${name} worker crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!host?.disposed) fail(new EngineError(`${name} worker exited (code ${code})`));
    });
    try {
      host = new ThreadStarHost(await readyName, worker, exited);
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return host;
  }

  encode(anchor: readonly number[], blocks: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]> {
    if (signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    const onAbort = (): void => {
      // The worker stops at its next check; the caller need not wait for it.
      this.worker.postMessage({ kind: 'cancel', id: this.nextId++, target: id } satisfies HostRequest);
      this.take(id)?.reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return this.request<BlockKv[]>({ kind: 'encode', id, anchor: [...anchor], blocks: blocks.map((b) => ({ index: b.index, start: b.start, tokens: [...b.tokens] })) })
      .finally(() => signal?.removeEventListener('abort', onAbort));
  }

  load(blocks: readonly BlockKv[]): Promise<void> {
    // Copied, not moved: the caller (a cache store) may keep its arrays.
    return this.request<void>({ kind: 'load', id: this.nextId++, blocks: [...blocks] });
  }

  blockIndices(): Promise<number[]> {
    return this.request<number[]>({ kind: 'blockIndices', id: this.nextId++ });
  }

  attend(layer: number, q: Float32Array, rows: number, perBlock: boolean): Promise<HostAttention> {
    // q belongs to the caller: copied (rows x width, small).
    return this.request<HostAttention>({ kind: 'attend', id: this.nextId++, layer, q, rows, perBlock });
  }

  /** Frees the worker's blocks, backend and model, then ends the thread. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    try {
      if (!this.failure) await this.request<void>({ kind: 'dispose', id: this.nextId++ });
    } finally {
      this.disposed = true;
      await this.worker.terminate();
      this.failAll(new EngineError(`${this.name} was disposed`));
    }
  }

  private request<T>(msg: Exclude<HostRequest, { kind: 'cancel' }>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.disposed) return Promise.reject(new EngineError(`${this.name} was disposed`));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage(msg);
    });
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private settle(msg: HostReply): void {
    const p = this.take(msg.id);
    if (!p) return; // cancelled earlier
    if (msg.kind === 'result') p.resolve(msg.value);
    else if (msg.kind === 'error') p.reject(deserializeError(msg.error));
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
