// A StarHost over any MessagePortLike: StarHostClient is the caller's proxy, starHostHandlers the other side
// (served with a host worker's other methods by hostRuntime.ts). Every StarHost call is one RPC call of the
// method map (hostMethods.ts); encode's AbortSignal becomes a cancel that aborts the host's own encode.
// The arrays' ownership rules are StarHost's (src/engine/star/host.ts).
import { EngineError } from '../engine/errors';
import type { BlockMove, StarHost } from '../engine/star/host';
import type { BlockKv, BlockSpec, HostAttention } from '../engine/star/types';
import type { HostMethods, StarHostMethods } from './hostMethods';
import type { MessagePortLike } from './port';
import { transferList } from './port';
import { RpcClient, Transferring, type Handlers } from './rpc';

export class StarHostClient implements StarHost {
  /** Also answers the worker's other methods (describe, stats, answer): hostMethods.ts. */
  readonly rpc: RpcClient<HostMethods>;

  constructor(port: MessagePortLike, readonly name: string) {
    this.rpc = new RpcClient(port, name);
  }

  encode(anchor: readonly number[], blocks: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]> {
    // Every field crosses (kvDtype included: a block the cache stores in f16 or q8 is rounded so on the worker too).
    const plain = blocks.map((b): BlockSpec => ({ ...b, tokens: [...b.tokens] }));
    return this.rpc.call('encode', [[...anchor], plain], { signal });
  }

  load(blocks: readonly BlockKv[]): Promise<void> {
    // Copied, not moved: the caller (a cache store, the piece split's kept keys) may keep its arrays.
    return this.rpc.call('load', [blocks]);
  }

  blockIndices(): Promise<number[]> {
    return this.rpc.call('blockIndices', []);
  }

  attend(layer: number, q: Float32Array, rows: number, perBlock: boolean): Promise<HostAttention> {
    // q belongs to the caller: copied (rows x width, small).
    return this.rpc.call('attend', [layer, q, rows, perBlock]);
  }

  clear(): Promise<void> {
    return this.rpc.call('clear', []);
  }

  drop(indices: readonly number[]): Promise<void> {
    return this.rpc.call('drop', [[...indices]]);
  }

  move(moves: readonly BlockMove[]): Promise<void> {
    return this.rpc.call('move', [moves.map((m) => ({ ...m }))]);
  }

  /** Asks the other side to free its blocks (and what it owns); this proxy answers no more calls afterwards. */
  async dispose(): Promise<void> {
    if (this.rpc.failed) return;
    try {
      await this.rpc.call('dispose', []);
    } finally {
      this.rpc.close();
    }
  }
}

export interface StarHostHandlerOptions {
  /**
   * True when the host keeps no reference to the arrays encode(blocks) just returned, so they may move to the
   * caller instead of being copied (a LocalStarHost whose blocks are all resident). Default: copy.
   */
  readonly encodeResultMovable?: (blocks: readonly BlockSpec[]) => boolean;
  /** Runs after dispose (a worker frees its backend and model here). */
  readonly afterDispose?: () => Promise<void>;
}

/** The RPC handlers of every StarHost method, for a server that also answers other methods (hostRuntime.ts). */
export function starHostHandlers(host: StarHost, opts: StarHostHandlerOptions = {}): Handlers<StarHostMethods> {
  return {
    encode: async ([anchor, blocks], { signal }) => {
      const kvs = await host.encode(anchor, blocks, signal);
      return opts.encodeResultMovable?.(blocks) ? new Transferring(kvs, transferList(kvs.flatMap((kv) => [...kv.k, ...kv.v]))) : kvs;
    },
    load: ([blocks]) => host.load(blocks),
    blockIndices: () => host.blockIndices(),
    attend: async ([layer, q, rows, perBlock]) => {
      const r = await host.attend(layer, q, rows, perBlock);
      // Fresh arrays (the accumulator and read-backs), not referenced by the host afterwards.
      return new Transferring(r, transferList([r.out, r.lse, ...(r.blocks ?? []).map((b) => b.lse)]));
    },
    clear: () => host.clear(),
    drop: ([indices]) => {
      if (!host.drop) throw new EngineError(`${host.name} cannot drop single blocks`);
      return host.drop(indices);
    },
    move: ([moves]) => {
      if (!host.move) throw new EngineError(`${host.name} cannot move blocks`);
      return host.move(moves);
    },
    dispose: async () => {
      await host.dispose();
      await opts.afterDispose?.();
    },
  };
}
