import { throwIfAborted } from '../errors';
import { isRounded, roundKvAs } from '../quant/kvRounding';
import { Sha256 } from '../util/hash';
import { balanceBlocks, type StarHost } from './host';
import { POSITION_SCHEME, type BlockKv, type BlockSpec } from './types';
import type { KvDtype } from '../runtime/kvBytes';

/*
 * Star Attention phase 1 over a set of hosts, with a per-block KV store (the disk cache in Node).
 * A block's KV depends only on (model, anchor tokens, block tokens, position scheme, its start
 * position). The key leaves the start out on purpose: a block whose text is unchanged but whose
 * start moved (an earlier file grew) is reused by re-rotating its cached keys (shiftBlockKv) instead
 * of re-encoding it; the stored entry records the start it was rotated for, and is rewritten at the
 * new start after such a move (see encodeContext).
 */

/** Version of what a block's KV means (part of every blockCacheKey): bumped when the same tokens would give other KV. */
export const BLOCK_KV_VERSION = 1;

export interface BlockStore {
  /** Undefined on a miss; a corrupted entry is reported (warning) and treated as a miss. */
  get(key: string, expect: { length: number; width: number; layers: number }): Promise<BlockKv | undefined>;
  put(key: string, kv: BlockKv): Promise<void>;
  /** Storage type of the entries (default 'f32'); part of every key (blockCacheKey's variant). */
  readonly dtype?: KvDtype;
}

export interface EncodeContextOptions {
  readonly modelIdentity: string;
  readonly anchor: readonly number[];
  /** Every context block in order; block 0 is the anchor (start 0). */
  readonly blocks: readonly BlockSpec[];
  readonly hosts: readonly StarHost[];
  readonly store?: BlockStore;
  /** KV geometry, to validate stored entries. */
  readonly kvWidth: number;
  readonly nLayers: number;
  /** Re-rotates a cached block to a new start (see shiftBlockKv). */
  readonly shift: (kv: BlockKv, newStart: number) => Promise<BlockKv>;
  readonly signal?: AbortSignal;
  /** Progress: blocks done so far out of the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Blocks handed to a host per encode() call (default DEFAULT_BLOCKS_PER_BATCH); a local host runs
   * them several per forward (see LocalStarHostOptions.maxBatchRows). 1 encodes block by block.
   */
  readonly blocksPerBatch?: number;
  /**
   * Rewrite a stored entry found at another start at the block's new start (default true: a block that moved
   * because an earlier file grew stays there). False for a question's selected blocks (selection/plan.ts): their
   * placement changes with every question, the entry stays at the start it was encoded at.
   */
  readonly rewriteMoved?: boolean;
}

/** Enough blocks per call to fill a batched forward; small enough that progress and disk writes keep flowing. */
export const DEFAULT_BLOCKS_PER_BATCH = 8;

export interface ContextStats {
  readonly blocks: number;
  readonly contextTokens: number;
  /** Blocks run through the model this run: one per distinct block (by key) missing from the store. */
  readonly blocksEncoded: number;
  /**
   * Blocks not encoded (blocks = encoded + reused): loaded from the store, or a copy of an identical block's
   * KV (read or encoded this run).
   */
  readonly blocksReused: number;
  /**
   * Of the reused blocks, how many were re-rotated: the owner of an entry cached at another start (an earlier
   * file grew; the entry is then rewritten, see entriesRewritten), and every duplicate of another block.
   */
  readonly blocksShifted: number;
  /** Store entries rewritten at their block's new start, so the next run loads them without rotating. */
  readonly entriesRewritten: number;
  /** Wall time of phase 1 encoding (cache lookups and writes excluded). */
  readonly encodeMs: number;
  /** Host index per block index. */
  readonly hostOfBlock: readonly number[];
}

/** What a stored block's KV also depends on besides model, anchor and block (defaults: this build's and f32). */
export interface BlockKeyVariant {
  /** Storage type of the entry: an f16 entry's values are not an f32 entry's. */
  readonly dtype?: string;
  readonly positionScheme?: string;
  readonly formatVersion?: number;
}

/**
 * The one cache key of a block's KV: SHA-256 (hex) over the model identity, the anchor's and the block's tokens
 * (each length-framed, so no two splits of one token list collide), whether it is the anchor itself, and the
 * variant. The block's start and index are left out on purpose (see the top of this file).
 */
export function blockCacheKey(modelIdentity: string, anchor: readonly number[], block: Pick<BlockSpec, 'tokens' | 'start'>, variant: BlockKeyVariant = {}): string {
  const h = new Sha256();
  h.updateText(JSON.stringify({
    key: 'star-kv',
    formatVersion: variant.formatVersion ?? BLOCK_KV_VERSION,
    positionScheme: variant.positionScheme ?? POSITION_SCHEME,
    dtype: variant.dtype ?? 'f32',
    modelIdentity,
    // The anchor itself (block 0) is a different thing from a block whose tokens equal the anchor.
    role: block.start === 0 ? 'anchor' : 'block',
  }) + '\n');
  h.update(framedTokens(anchor));
  h.update(framedTokens(block.tokens));
  return h.hex();
}

/** [length, ...ids] as little-endian int32. */
function framedTokens(ids: readonly number[]): Uint8Array {
  const framed = new Int32Array(ids.length + 1);
  framed[0] = ids.length;
  framed.set(ids, 1);
  return new Uint8Array(framed.buffer);
}

/**
 * Loads cached blocks, encodes the rest (hosts in parallel), stores what was encoded.
 *
 * Blocks with identical tokens (same key) within one layout: the first occurrence (lowest index) is the key's
 * owner. Only the owner is looked up or encoded, and the entry is kept at the OWNER's start: when the cached
 * entry sits elsewhere (an earlier file grew), the owner's re-rotated KV is written back under the same key, so
 * the next run loads it without rotating. The other occurrences never touch the store; each gets its own copy
 * rotated from the owner's KV (the entry as read, or as just encoded), so duplicates never fight over
 * the entry and every block is rotated exactly once per run, never from an already-rotated in-memory copy.
 * A rewrite means a later move rotates the rewritten keys again (across runs, never within one). Rotations
 * compose exactly (RoPE), so each rewrite adds only the stored dtype's rounding: ~1e-7 relative with f32
 * entries, up to 2^-11 per value with f16 entries, which can add up over many rewrites of one entry; the
 * model-level error of a move (the block saw the anchor at its first distance, ~7e-3 relative K on
 * stories260K for +37, test/star-cache.test.ts) is larger and not changed by rewriting.
 */
export async function encodeContext(o: EncodeContextOptions): Promise<ContextStats> {
  const plan = planEncode(o.blocks, o.hosts.length, (spec) => blockCacheKey(o.modelIdentity, o.anchor, spec, { dtype: o.store?.dtype }));
  return applyEncodePlan(plan, o);
}

/** Phase 1 decided without I/O: each block's key and host, which block owns each key, which copy an owner. */
export interface EncodePlan {
  readonly keyOf: ReadonlyMap<number, string>;
  /** Host index per block index. */
  readonly hostOfBlock: readonly number[];
  /** Keys held by more than one block (their owner's KV is shared with the duplicates). */
  readonly sharedKeys: ReadonlySet<string>;
  /** Per host, in block order: the blocks that own their key (looked up, or encoded) and the duplicates. */
  readonly perHost: readonly { readonly owned: readonly BlockSpec[]; readonly duplicates: readonly BlockSpec[] }[];
}

/** Balances the blocks over `hostCount` hosts and finds each key's owner (its first occurrence). */
export function planEncode(blocks: readonly BlockSpec[], hostCount: number, keyOf: (spec: BlockSpec) => string): EncodePlan {
  const keys = new Map<number, string>();
  const owners = new Map<string, number>();
  const sharedKeys = new Set<string>();
  for (const spec of [...blocks].sort((a, b) => a.index - b.index)) {
    const key = keyOf(spec);
    keys.set(spec.index, key);
    if (owners.has(key)) sharedKeys.add(key);
    else owners.set(key, spec.index);
  }
  const hostOfBlock = new Array<number>(blocks.length);
  const perHost = balanceBlocks(blocks, hostCount).map((specs, h) => {
    const owned: BlockSpec[] = [];
    const duplicates: BlockSpec[] = [];
    for (const spec of specs) {
      hostOfBlock[spec.index] = h;
      (owners.get(keys.get(spec.index)!) === spec.index ? owned : duplicates).push(spec);
    }
    return { owned, duplicates };
  });
  return { keyOf: keys, hostOfBlock, sharedKeys, perHost };
}

/** Runs a plan: every host loads its owned blocks' entries or encodes them (storing them), then copies its duplicates. */
export async function applyEncodePlan(plan: EncodePlan, o: EncodeContextOptions): Promise<ContextStats> {
  const run = new Phase1Run(plan, o);
  await Promise.all(plan.perHost.map(async ({ owned, duplicates }, h) => {
    const host = o.hosts[h]!;
    await run.ownedOn(host, owned);
    // Duplicates last: they only wait on owners, and owners never wait, so hosts cannot deadlock.
    await run.duplicatesOn(host, duplicates);
  }));
  return run.stats();
}

/** One phase 1's shared state: the counts, and the owners' KV awaited by their duplicates on any host. */
class Phase1Run {
  private encoded = 0;
  private reused = 0;
  private shifted = 0;
  private rewritten = 0;
  private done = 0;
  // Hosts encode concurrently: phase 1's time is the span from the first encode to the last.
  private firstEncode = Infinity;
  private lastEncode = -Infinity;
  /** Each shared key's owner KV (at the start it was read or encoded at). */
  private readonly ownerKvs = new Map<string, Deferred<BlockKv>>();
  /** What the store keeps is what the hosts attend to, so a warm run equals a cold one (BlockSpec.kvDtype). */
  private readonly dtype: KvDtype;

  constructor(private readonly plan: EncodePlan, private readonly o: EncodeContextOptions) {
    for (const key of plan.sharedKeys) this.ownerKvs.set(key, deferred());
    this.dtype = o.store?.dtype ?? 'f32';
  }

  stats(): ContextStats {
    return {
      blocks: this.o.blocks.length,
      contextTokens: this.o.blocks.reduce((s, b) => s + b.tokens.length, 0),
      blocksEncoded: this.encoded,
      blocksReused: this.reused,
      blocksShifted: this.shifted,
      entriesRewritten: this.rewritten,
      encodeMs: this.encoded > 0 ? this.lastEncode - this.firstEncode : 0,
      hostOfBlock: this.plan.hostOfBlock,
    };
  }

  /** Loads the owned blocks the store has (re-rotating and rewriting those stored at another start), encodes the rest. */
  async ownedOn(host: StarHost, owned: readonly BlockSpec[]): Promise<void> {
    const o = this.o;
    // Every write is awaited before phase 1 reports done (and on failure, so no entry is left half-written).
    const writes: Promise<void>[] = [];
    try {
      const missing: BlockSpec[] = [];
      for (const spec of owned) {
        throwIfAborted(o.signal);
        const key = this.plan.keyOf.get(spec.index)!;
        const kv = await o.store?.get(key, this.expect(spec));
        if (!kv) {
          missing.push(spec);
          continue;
        }
        this.ownerKvs.get(key)?.resolve(kv);
        if (kv.start !== spec.start) {
          // Rounded to the store's precision before use, as the rewritten entry will be read back next time.
          const moved = this.keepAs(await o.shift(kv, spec.start));
          this.shifted++;
          if (o.rewriteMoved ?? true) {
            this.rewritten++;
            writes.push(o.store!.put(key, moved));
          }
          await host.load([{ ...own(moved), index: spec.index }]);
        } else {
          await host.load([{ ...(this.ownerKvs.has(key) ? own(kv) : kv), index: spec.index }]);
        }
        this.reused++;
        this.progress();
      }
      await this.encodeOn(host, missing, writes);
    } catch (err) {
      await Promise.allSettled(writes);
      // Duplicates on other hosts wait for this host's owners: fail them too rather than leave them waiting.
      for (const spec of owned) this.ownerKvs.get(this.plan.keyOf.get(spec.index)!)?.reject(err);
      throw err;
    }
    await Promise.all(writes);
  }

  /** Encodes `missing` in groups, storing each group before the next is encoded. */
  private async encodeOn(host: StarHost, missing: readonly BlockSpec[], writes: Promise<void>[]): Promise<void> {
    const o = this.o;
    const perCall = Math.max(1, o.blocksPerBatch ?? DEFAULT_BLOCKS_PER_BATCH);
    for (let i = 0; i < missing.length; i += perCall) {
      const group = missing.slice(i, i + perCall);
      this.firstEncode = Math.min(this.firstEncode, performance.now());
      const kvs = await host.encode(o.anchor, isRounded(this.dtype) ? group.map((spec) => ({ ...spec, kvDtype: this.dtype })) : group, o.signal);
      this.lastEncode = Math.max(this.lastEncode, performance.now());
      const groupWrites = group.map((spec, j) => {
        const key = this.plan.keyOf.get(spec.index)!;
        this.encoded++;
        this.ownerKvs.get(key)?.resolve(kvs[j]!);
        return o.store?.put(key, kvs[j]!);
      });
      // Stored before the next group is encoded, so a kill, a Ctrl-C or a full disk keeps every block encoded
      // so far (an in-process CPU host would otherwise starve these writes until phase 1 ends).
      writes.push(...groupWrites.filter((w) => w !== undefined));
      await Promise.all(groupWrites);
      for (const _ of group) this.progress();
    }
  }

  /** Each duplicate gets its own copy of its owner's KV, rotated to its start. */
  async duplicatesOn(host: StarHost, duplicates: readonly BlockSpec[]): Promise<void> {
    for (const spec of duplicates) {
      throwIfAborted(this.o.signal);
      const ownerKv = await this.ownerKvs.get(this.plan.keyOf.get(spec.index)!)!.promise;
      const kv = await this.o.shift(ownerKv, spec.start);
      this.shifted++;
      // shift gives new keys but shares the values with the owner's KV: the host gets its own.
      await host.load([{ ...kv, index: spec.index, v: kv.v.map((t) => t.slice()) }]);
      this.reused++;
      this.progress();
    }
  }

  private progress(): void {
    this.o.onProgress?.(++this.done, this.o.blocks.length);
  }

  private expect(spec: BlockSpec) {
    return { length: spec.tokens.length, width: this.o.kvWidth, layers: this.o.nLayers };
  }

  private keepAs(kv: BlockKv): BlockKv {
    roundKvAs(this.dtype, kv);
    return kv;
  }
}

/**
 * A KV handed to host.load may be taken over (a worker host can transfer its buffers): whatever is still needed
 * afterwards (a pending write, duplicates' owner KV) is handed over as a copy.
 */
function own(kv: BlockKv): BlockKv {
  return { ...kv, k: kv.k.map((t) => t.slice()), v: kv.v.map((t) => t.slice()) };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // a rejection nobody awaits (no duplicate got that far) is not unhandled
  return { promise, resolve, reject };
}
