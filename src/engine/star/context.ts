import { throwIfAborted } from '../errors';
import { roundToF16 } from '../quant/half';
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
  const perHost = balanceBlocks(o.blocks, o.hosts.length);
  const hostOfBlock = new Array<number>(o.blocks.length);
  const keyOf = new Map<number, string>();
  // Per key: the owner (first occurrence) and how many blocks share it.
  const owners = new Map<string, { index: number; count: number }>();
  for (const spec of [...o.blocks].sort((a, b) => a.index - b.index)) {
    const key = blockCacheKey(o.modelIdentity, o.anchor, spec, { dtype: o.store?.dtype });
    keyOf.set(spec.index, key);
    const owner = owners.get(key);
    if (owner) owner.count++;
    else owners.set(key, { index: spec.index, count: 1 });
  }
  // Each duplicated key's owner KV (at the start it was read or encoded at), awaited by its duplicates on any host.
  const ownerKvs = new Map<string, Deferred<BlockKv>>();
  for (const [key, owner] of owners) if (owner.count > 1) ownerKvs.set(key, deferred());

  let encoded = 0;
  let reused = 0;
  let shifted = 0;
  let rewritten = 0;
  let done = 0;
  // Hosts encode concurrently: phase 1's time is the span from the first encode to the last.
  let firstEncode = Infinity;
  let lastEncode = -Infinity;
  const total = o.blocks.length;
  const expect = (spec: BlockSpec) => ({ length: spec.tokens.length, width: o.kvWidth, layers: o.nLayers });
  // A KV handed to host.load may be taken over (a worker host can transfer its buffers): whatever is still
  // needed afterwards (a pending write, duplicates' owner KV) is handed over as a copy.
  const own = (kv: BlockKv): BlockKv => ({ ...kv, k: kv.k.map((t) => t.slice()), v: kv.v.map((t) => t.slice()) });
  // What the store keeps is what the hosts attend to, so a warm run equals a cold one (BlockSpec.kvDtype).
  const dtype = o.store?.dtype === 'f16' ? 'f16' : 'f32';
  const keepAs = (kv: BlockKv): BlockKv => {
    if (dtype === 'f16') roundToF16(...kv.k, ...kv.v);
    return kv;
  };

  await Promise.all(perHost.map(async (blocks, h) => {
    const host = o.hosts[h]!;
    const owned: BlockSpec[] = [];
    const duplicates: BlockSpec[] = [];
    for (const spec of blocks) {
      hostOfBlock[spec.index] = h;
      (owners.get(keyOf.get(spec.index)!)!.index === spec.index ? owned : duplicates).push(spec);
    }
    // Every write is awaited before phase 1 reports done (and on failure, so no entry is left half-written).
    const writes: Promise<void>[] = [];
    try {
      const missing: BlockSpec[] = [];
      for (const spec of owned) {
        throwIfAborted(o.signal);
        const key = keyOf.get(spec.index)!;
        const kv = await o.store?.get(key, expect(spec));
        if (!kv) {
          missing.push(spec);
          continue;
        }
        ownerKvs.get(key)?.resolve(kv);
        const shared = ownerKvs.has(key);
        if (kv.start !== spec.start) {
          // Rounded to the store's precision before use, as the rewritten entry will be read back next time.
          const moved = keepAs(await o.shift(kv, spec.start));
          shifted++;
          rewritten++;
          writes.push(o.store!.put(key, moved));
          await host.load([{ ...own(moved), index: spec.index }]);
        } else {
          await host.load([{ ...(shared ? own(kv) : kv), index: spec.index }]);
        }
        reused++;
        o.onProgress?.(++done, total);
      }
      const perCall = Math.max(1, o.blocksPerBatch ?? DEFAULT_BLOCKS_PER_BATCH);
      for (let i = 0; i < missing.length; i += perCall) {
        const group = missing.slice(i, i + perCall);
        firstEncode = Math.min(firstEncode, performance.now());
        const kvs = await host.encode(o.anchor, dtype === 'f16' ? group.map((spec) => ({ ...spec, kvDtype: dtype })) : group, o.signal);
        lastEncode = Math.max(lastEncode, performance.now());
        const groupWrites = group.map((spec, j) => {
          const key = keyOf.get(spec.index)!;
          encoded++;
          ownerKvs.get(key)?.resolve(kvs[j]!);
          return o.store?.put(key, kvs[j]!);
        });
        // Stored before the next group is encoded, so a kill, a Ctrl-C or a full disk keeps every block encoded
        // so far (an in-process CPU host would otherwise starve these writes until phase 1 ends).
        writes.push(...groupWrites.filter((w) => w !== undefined));
        await Promise.all(groupWrites);
        for (const _ of group) o.onProgress?.(++done, total);
      }
    } catch (err) {
      await Promise.allSettled(writes);
      // Duplicates on other hosts wait for this host's owners: fail them too rather than leave them waiting.
      for (const spec of owned) ownerKvs.get(keyOf.get(spec.index)!)?.reject(err);
      throw err;
    }
    // Duplicates last: they only wait on owners, and owners never wait, so hosts cannot deadlock.
    for (const spec of duplicates) {
      throwIfAborted(o.signal);
      const ownerKv = await ownerKvs.get(keyOf.get(spec.index)!)!.promise;
      const kv = await o.shift(ownerKv, spec.start);
      shifted++;
      // shift gives new keys but shares the values with the owner's KV: the host gets its own.
      await host.load([{ ...kv, index: spec.index, v: kv.v.map((t) => t.slice()) }]);
      reused++;
      o.onProgress?.(++done, total);
    }
    await Promise.all(writes);
  }));

  return {
    blocks: total,
    contextTokens: o.blocks.reduce((s, b) => s + b.tokens.length, 0),
    blocksEncoded: encoded,
    blocksReused: reused,
    blocksShifted: shifted,
    entriesRewritten: rewritten,
    encodeMs: encoded > 0 ? lastEncode - firstEncode : 0,
    hostOfBlock,
  };
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
