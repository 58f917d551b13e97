import { throwIfAborted } from '../errors';
import { Sha256 } from '../util/hash';
import { balanceBlocks, type StarHost } from './host';
import { POSITION_SCHEME, type BlockKv, type BlockSpec } from './types';

/*
 * Star Attention phase 1 over a set of hosts, with a per-block KV store (the disk cache in Node).
 * A block's KV depends only on (model, anchor tokens, block tokens, position scheme, its start
 * position). The key leaves the start out on purpose: a block whose text is unchanged but whose
 * start moved (an earlier file grew) is reused by re-rotating its cached keys (shiftBlockKv) instead
 * of re-encoding it; the stored entry records the start it was rotated for.
 */

/** Bumped whenever the stored KV's meaning or layout changes. */
export const KV_FORMAT_VERSION = 1;

export interface BlockStore {
  /** Undefined on a miss; a corrupted entry is reported (warning) and treated as a miss. */
  get(key: string, expect: { length: number; width: number; layers: number }): Promise<BlockKv | undefined>;
  put(key: string, kv: BlockKv): Promise<void>;
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
  readonly blocksEncoded: number;
  readonly blocksReused: number;
  /** Of the reused blocks, how many sat at another position and were re-rotated. */
  readonly blocksShifted: number;
  /** Wall time of phase 1 encoding (cache lookups and writes excluded). */
  readonly encodeMs: number;
  /** Host index per block index. */
  readonly hostOfBlock: readonly number[];
}

export function blockCacheKey(modelIdentity: string, anchor: readonly number[], block: BlockSpec): string {
  const h = new Sha256();
  h.updateText(`star-kv v${KV_FORMAT_VERSION}\n${POSITION_SCHEME}\n${modelIdentity}\n`);
  // The anchor itself (block 0) is a different thing from a block whose tokens equal the anchor.
  h.updateText(block.start === 0 ? 'anchor\n' : 'block\n');
  h.update(tokenBytes(anchor));
  h.updateText('\n');
  h.update(tokenBytes(block.tokens));
  return h.hex();
}

function tokenBytes(ids: readonly number[]): Uint8Array {
  return new Uint8Array(Int32Array.from(ids).buffer);
}

/** Loads cached blocks, encodes the rest (hosts in parallel), stores what was encoded. */
export async function encodeContext(o: EncodeContextOptions): Promise<ContextStats> {
  const perHost = balanceBlocks(o.blocks, o.hosts.length);
  const hostOfBlock = new Array<number>(o.blocks.length);
  let encoded = 0;
  let reused = 0;
  let shifted = 0;
  let done = 0;
  // Hosts encode concurrently: phase 1's time is the span from the first encode to the last.
  let firstEncode = Infinity;
  let lastEncode = -Infinity;
  const total = o.blocks.length;

  await Promise.all(perHost.map(async (blocks, h) => {
    const host = o.hosts[h]!;
    const missing: { spec: BlockSpec; key: string }[] = [];
    for (const spec of blocks) {
      throwIfAborted(o.signal);
      hostOfBlock[spec.index] = h;
      const key = blockCacheKey(o.modelIdentity, o.anchor, spec);
      let kv = await o.store?.get(key, { length: spec.tokens.length, width: o.kvWidth, layers: o.nLayers });
      if (!kv) {
        missing.push({ spec, key });
        continue;
      }
      if (kv.start !== spec.start) {
        kv = await o.shift(kv, spec.start);
        shifted++;
      }
      await host.load([{ ...kv, index: spec.index }]);
      reused++;
      o.onProgress?.(++done, total);
    }
    // Writes overlap the next block's encode; all are awaited before phase 1 reports done.
    const writes: Promise<void>[] = [];
    const perCall = Math.max(1, o.blocksPerBatch ?? DEFAULT_BLOCKS_PER_BATCH);
    for (let i = 0; i < missing.length; i += perCall) {
      const group = missing.slice(i, i + perCall);
      firstEncode = Math.min(firstEncode, performance.now());
      const kvs = await host.encode(o.anchor, group.map((m) => m.spec), o.signal);
      lastEncode = Math.max(lastEncode, performance.now());
      group.forEach(({ key }, j) => {
        encoded++;
        if (o.store) writes.push(o.store.put(key, kvs[j]!));
        o.onProgress?.(++done, total);
      });
    }
    await Promise.all(writes);
  }));

  return {
    blocks: total,
    contextTokens: o.blocks.reduce((s, b) => s + b.tokens.length, 0),
    blocksEncoded: encoded,
    blocksReused: reused,
    blocksShifted: shifted,
    encodeMs: encoded > 0 ? lastEncode - firstEncode : 0,
    hostOfBlock,
  };
}
