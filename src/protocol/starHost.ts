// A StarHost over any MessagePortLike: StarHostClient is the caller's proxy, serveStarHost / starHostHandlers
// the other side. Every StarHost call is one RPC call (rpc.ts); encode's AbortSignal becomes a cancel that aborts
// the host's own encode. The arrays' ownership rules are StarHost's (src/engine/star/host.ts).
import { EngineError } from '../engine/errors';
import type { BlockMove, StarHost } from '../engine/star/host';
import type { BlockKv, BlockSpec, HostAttention } from '../engine/star/types';
import type { MessagePortLike } from './port';
import { transferList } from './port';
import { RpcClient, RpcServer, Transferring, type Handler } from './rpc';

export class StarHostClient implements StarHost {
  readonly rpc: RpcClient;

  constructor(port: MessagePortLike, readonly name: string) {
    this.rpc = new RpcClient(port, name);
  }

  encode(anchor: readonly number[], blocks: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]> {
    const plain = blocks.map((b) => ({ index: b.index, start: b.start, tokens: [...b.tokens] }));
    return this.rpc.call<BlockKv[]>('encode', [[...anchor], plain], { signal });
  }

  load(blocks: readonly BlockKv[]): Promise<void> {
    // Copied, not moved: the caller (a cache store, the piece split's kept keys) may keep its arrays.
    return this.rpc.call<void>('load', [blocks]);
  }

  blockIndices(): Promise<number[]> {
    return this.rpc.call<number[]>('blockIndices', []);
  }

  attend(layer: number, q: Float32Array, rows: number, perBlock: boolean): Promise<HostAttention> {
    // q belongs to the caller: copied (rows x width, small).
    return this.rpc.call<HostAttention>('attend', [layer, q, rows, perBlock]);
  }

  clear(): Promise<void> {
    return this.rpc.call<void>('clear', []);
  }

  drop(indices: readonly number[]): Promise<void> {
    return this.rpc.call<void>('drop', [[...indices]]);
  }

  move(moves: readonly BlockMove[]): Promise<void> {
    return this.rpc.call<void>('move', [moves.map((m) => ({ ...m }))]);
  }

  /** Asks the other side to free its blocks (and what it owns); this proxy answers no more calls afterwards. */
  async dispose(): Promise<void> {
    if (this.rpc.failed) return;
    try {
      await this.rpc.call<void>('dispose', []);
    } finally {
      this.rpc.close();
    }
  }
}

export interface StarHostHandlerOptions {
  /**
   * True when the host keeps no reference to the arrays encode() just returned, so they may move to the caller
   * instead of being copied (a LocalStarHost whose blocks are all resident). Default: copy.
   */
  readonly encodeResultMovable?: () => boolean;
  /** Runs after dispose (a worker frees its backend and model here). */
  readonly afterDispose?: () => Promise<void>;
}

/** The RPC handlers of every StarHost method, for a server that also answers other methods (hostRuntime.ts). */
export function starHostHandlers(host: StarHost, opts: StarHostHandlerOptions = {}): Record<string, Handler> {
  return {
    encode: async ([anchor, blocks], { signal }) => {
      const kvs = await host.encode(anchor as number[], blocks as BlockSpec[], signal);
      return opts.encodeResultMovable?.() ? new Transferring(kvs, transferList(kvs.flatMap((kv) => [...kv.k, ...kv.v]))) : kvs;
    },
    load: ([blocks]) => host.load(blocks as BlockKv[]),
    blockIndices: () => host.blockIndices(),
    attend: async ([layer, q, rows, perBlock]) => {
      const r = await host.attend(layer as number, q as Float32Array, rows as number, perBlock as boolean);
      // Fresh arrays (the accumulator and read-backs), not referenced by the host afterwards.
      return new Transferring(r, transferList([r.out, r.lse, ...(r.blocks ?? []).map((b) => b.lse)]));
    },
    clear: () => host.clear(),
    drop: ([indices]) => {
      if (!host.drop) throw new EngineError(`${host.name} cannot drop single blocks`);
      return host.drop(indices as number[]);
    },
    move: ([moves]) => {
      if (!host.move) throw new EngineError(`${host.name} cannot move blocks`);
      return host.move(moves as BlockMove[]);
    },
    dispose: async () => {
      await host.dispose();
      await opts.afterDispose?.();
    },
  };
}

/** Answers StarHost calls arriving on `port`, one at a time; returns the unsubscribe. */
export function serveStarHost(port: MessagePortLike, host: StarHost, opts: StarHostHandlerOptions = {}): () => void {
  return new RpcServer(starHostHandlers(host, opts)).serve(port);
}
