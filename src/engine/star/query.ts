import type { Act } from '../backend/types';
import { EngineError, throwIfAborted } from '../errors';
import { createRandom } from '../runtime/random';
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

export interface DecodeOptions {
  readonly maxTokens: number;
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly stopIds: ReadonlySet<number>;
  readonly signal?: AbortSignal;
  /** Called with each id as soon as it is chosen (not for stop ids). */
  readonly onToken?: (id: number) => void;
}

/** What the query needs of a host that shares its transformer (a LocalStarHost). */
export interface ColocatedHost extends StarHost {
  readonly transformer: Transformer;
  /** The blocks' device caches when every block is resident, else null (the host is then called as a remote). */
  residentCaches(): Promise<{ index: number; cache: KvCache }[] | null>;
}

export class StarQuery {
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

  /**
   * Prefills `queryIds` then generates token by token until a stop id, maxTokens or the cache's
   * capacity. Returns the generated ids (stop id excluded) and timings.
   */
  async generate(queryIds: readonly number[], opts: DecodeOptions, mass?: AttentionMass): Promise<DecodeResult> {
    if (queryIds.length === 0) throw new EngineError('the query is empty');
    const started = performance.now();
    let logits = (await this.forward(queryIds, 'last', opts.signal, mass))!;
    return decodeLoop(this.transformer, logits, started, opts, this.cache, (id) => this.forward([id], 'last', opts.signal).then((l) => l!));
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

export interface DecodeResult {
  readonly ids: number[];
  readonly finish: 'stop' | 'length';
  /** From the start of the query prefill to the first token chosen. */
  readonly ttftMs: number;
  /** Generated tokens after the first, per second of decoding (0 when fewer than 2 tokens). */
  readonly decodeTokensPerSec: number;
}

/** Shared by star and global modes: pick from logits, feed the id back, until stop or limit. */
export async function decodeLoop(
  transformer: Transformer,
  firstLogits: Act,
  started: number,
  opts: DecodeOptions,
  cache: KvCache,
  step: (id: number) => Promise<Act>,
): Promise<DecodeResult> {
  const random = createRandom(opts.seed ?? 0);
  const ids: number[] = [];
  let logits = firstLogits;
  let ttftMs = 0;
  let firstAt = 0;
  let finish: 'stop' | 'length' = 'length';
  for (let produced = 0; produced < opts.maxTokens; produced++) {
    const next = opts.temperature <= 0
      ? (await transformer.backend.argmax(logits))[0]!
      : await transformer.backend.sampleTopP(logits, opts.temperature, opts.topP ?? 1, random());
    if (produced === 0) {
      firstAt = performance.now();
      ttftMs = firstAt - started;
    }
    throwIfAborted(opts.signal);
    if (opts.stopIds.has(next)) {
      finish = 'stop';
      break;
    }
    ids.push(next);
    opts.onToken?.(next);
    if (produced + 1 === opts.maxTokens || cache.length >= cache.capacity) break;
    logits = await step(next);
  }
  const decodeMs = performance.now() - firstAt;
  const decodeTokensPerSec = ids.length > 1 && decodeMs > 0 ? ((ids.length - 1) * 1000) / decodeMs : 0;
  return { ids, finish, ttftMs, decodeTokensPerSec };
}
