import type { Act } from '../backend/types';
import { EngineError } from '../errors';
import type { TokenSequence } from '../runtime/decode';
import type { Transformer } from '../runtime/transformer';
import type { KvCache, RemoteAttention } from '../runtime/types';
import type { StarHost } from './host';
import { AttentionMass } from './attentionMass';

/*
 * Star Attention phase 2 on the query host. The query tokens, then every generated token, run at
 * positions continuing after the whole context (n, n+1, ...). In every layer the transformer
 * attends over (a) the co-located host's resident blocks, passed as `context`, (b) its own query +
 * generated KV, causally, and (c) every other host through `remotes`; all are merged exactly by
 * log-sum-exp. A co-located host in waves mode is called as a remote like the others.
 */

export interface StarQueryOptions {
  /** Total context tokens n (anchor + blocks): the query starts at position n. */
  readonly contextLength: number;
  /** Hosts holding the context blocks. */
  readonly hosts: readonly StarHost[];
  /** A host running on `transformer`'s own backend, whose resident blocks become local `context`. */
  readonly colocated?: ColocatedHost;
  /** Query + generated tokens this session may hold. */
  readonly capacity: number;
}

/** What the query needs of a host that shares its transformer (a LocalStarHost). */
export interface ColocatedHost extends StarHost {
  readonly transformer: Transformer;
  /** The blocks' device caches when every block is resident, else null (the host is then called as a remote). */
  residentCaches(): Promise<{ index: number; cache: KvCache }[] | null>;
}

/** Phase 2's sequence: the one prefill and decode loop (runtime/decode.ts) run on it as on a causal one. */
export class StarQuery implements TokenSequence {
  readonly cache: KvCache;
  private context: KvCache[] = [];
  private contextIndices: number[] = [];
  private remotes: StarHost[] = [];
  private ready = false;

  constructor(readonly transformer: Transformer, private readonly options: StarQueryOptions) {
    this.cache = transformer.newCache(options.capacity);
  }

  /** Position of the next token. */
  get position(): number {
    return this.options.contextLength + this.cache.length;
  }

  /**
   * Runs query tokens (or a generated token) through phase 2, appending their KV to the query
   * cache. With `mass`, records every block's attention share for these rows.
   */
  async forward(ids: readonly number[], logits: 'none' | 'last' | 'all', signal?: AbortSignal, mass?: AttentionMass): Promise<Act | null> {
    await this.prepare();
    const n = ids.length;
    const positions = new Int32Array(n);
    for (let i = 0; i < n; i++) positions[i] = this.position + i;
    const perLayer = new Map<number, { index: number; lse: Float32Array }[]>();
    const record = (layer: number, blocks: readonly { index: number; lse: Float32Array }[]) => {
      const list = perLayer.get(layer) ?? [];
      list.push(...blocks);
      perLayer.set(layer, list);
    };
    const remotes: RemoteAttention[] = this.remotes.map((host) => ({
      attend: async (layer, q, rows) => {
        const r = await host.attend(layer, q, rows, mass !== undefined);
        if (mass && r.blocks) record(layer, r.blocks);
        return { out: r.out, lse: r.lse };
      },
    }));
    // Splitting blocks into files needs each layer's q.
    const queries = new Map<number, { q: Float32Array; rows: number }>();
    const observeQuery = mass?.wantsQuery ? (layer: number, q: Float32Array, rows: number) => queries.set(layer, { q: q.slice(), rows }) : undefined;
    const result = await this.transformer.forward(Int32Array.from(ids), positions, this.cache, {
      context: this.context,
      remotes,
      logits,
      signal,
      observeQuery,
      observeContextLse: mass
        ? (layer, perContext) => record(layer, perContext.map((lse, i) => ({ index: this.contextIndices[i]!, lse })))
        : undefined,
    });
    if (mass) for (const layer of [...perLayer.keys()].sort((a, b) => a - b)) mass.addLayer(perLayer.get(layer)!, queries.get(layer), layer);
    return result;
  }

  dispose(): void {
    this.transformer.releaseCache(this.cache);
  }

  private async prepare(): Promise<void> {
    if (this.ready) return;
    const local = this.options.colocated;
    const resident = local ? await local.residentCaches() : null;
    if (local && local.transformer !== this.transformer) throw new EngineError('the co-located host must run on the query transformer');
    this.context = resident ? resident.map((r) => r.cache) : [];
    this.contextIndices = resident ? resident.map((r) => r.index) : [];
    this.remotes = this.options.hosts.filter((h) => !(resident && h === local));
    this.ready = true;
  }
}
