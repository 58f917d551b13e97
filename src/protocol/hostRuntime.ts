// What runs inside a host worker, platform-free: the Node worker thread (src/node/star/hostWorker.ts) and the
// webview's Worker (webview/hostWorker.ts) differ only in how they open the model and make the backend (`open`)
// and how they wrap their ports. It opens a LocalStarHost, serves the StarHost calls on its main port and on
// `served` ports (the query host's direct lines), all through one serial queue, and, on the query host, answers
// whole questions (phase 2, answerQuery) over itself and the `peers`, so per-layer traffic stays worker to worker.
import type { Backend } from '../engine/backend/types';
import type { LoadedModel } from '../engine/model/types';
import { Transformer } from '../engine/runtime/transformer';
import { answerQuery, type AnswerRequest } from '../engine/star/answer';
import { LocalStarHost } from '../engine/star/localHost';
import type { MessagePortLike } from './port';
import { RpcServer, type Handler } from './rpc';
import { starHostHandlers, StarHostClient } from './starHost';

export interface HostRuntimeInit {
  /** For stats and errors, e.g. "host 1 (webview, webgpu)". */
  readonly name: string;
  /** Overrides the backend's memory budget for blocks' KV. */
  readonly memoryBudgetBytes?: number;
  /** Rows per batched phase-1 forward (LocalStarHostOptions.maxBatchRows). */
  readonly maxBatchRows?: number;
}

/** What `open` gives the runtime; `close` frees the backend and the model's files. */
export interface HostRuntimeParts {
  readonly model: LoadedModel;
  readonly backend: Backend;
  close(): Promise<void>;
}

export interface HostRuntimeOptions {
  readonly init: HostRuntimeInit;
  /** Opens the model and makes the backend (the platform's part). A failure fails every call with its error. */
  open(): Promise<HostRuntimeParts>;
  /** On the query host: one port to each other host (hosts 1..k-1, in order). */
  readonly peers?: readonly MessagePortLike[];
  /** On the other hosts: the port the query host calls this host through. */
  readonly served?: readonly MessagePortLike[];
}

/** describe()'s answer. */
export interface HostDescription {
  readonly name: string;
  /** The backend's device, e.g. "SwiftShader (emulated)" or "cpu (4 threads)". */
  readonly device: string;
  readonly backend: Backend['kind'];
}

/** An answer's streamed event: one generated id and the text it completes. */
export interface AnswerToken {
  readonly id: number;
  readonly text: string;
}

/** Every method a host worker answers: StarHost's, plus describe, stats (LocalStarHost.stats) and answer. */
export const HOST_RUNTIME_METHODS = ['encode', 'load', 'blockIndices', 'attend', 'clear', 'dispose', 'describe', 'stats', 'answer'] as const;

export function runHostRuntime(main: MessagePortLike, o: HostRuntimeOptions): void {
  const ready = (async () => {
    const parts = await o.open();
    try {
      const transformer = await Transformer.create(parts.model, parts.backend);
      const host = new LocalStarHost(transformer, { name: o.init.name, memoryBudgetBytes: o.init.memoryBudgetBytes, maxBatchRows: o.init.maxBatchRows });
      const peers = (o.peers ?? []).map((p, i) => new StarHostClient(p, `host ${i + 1}`));
      return { parts, host, peers };
    } catch (err) {
      await parts.close();
      throw err;
    }
  })();

  const live = ready.then((s): Record<string, Handler> => ({
    ...starHostHandlers(s.host, {
      encodeResultMovable: () => s.host.totalBytes <= s.host.budgetBytes,
      afterDispose: async () => {
        for (const p of s.peers) p.rpc.close();
        await s.parts.close();
      },
    }),
    describe: (): HostDescription => ({ name: s.host.name, device: s.parts.backend.deviceName, backend: s.parts.backend.kind }),
    stats: () => ({ ...s.host.stats }),
    answer: ([req], ctx) => answerQuery(
      { transformer: s.host.transformer, tokenizer: s.parts.model.tokenizer },
      [s.host, ...s.peers], s.host, req as AnswerRequest,
      (id, text) => ctx.emit({ id, text } satisfies AnswerToken), ctx.signal,
    ),
  }));
  live.catch(() => {}); // reported to every call instead
  // Every call waits for the host; a failed start (no adapter, a bad file) answers every call with its error.
  const handlers: Record<string, Handler> = Object.fromEntries(HOST_RUNTIME_METHODS.map((name) => [
    name, async (args: readonly unknown[], ctx: Parameters<Handler>[1]) => (await live)[name]!(args, ctx),
  ]));
  const server = new RpcServer(handlers, { immediate: ['stats', 'describe'] });
  server.serve(main);
  for (const p of o.served ?? []) server.serve(p);
}
