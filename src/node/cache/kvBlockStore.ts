// The Star engine's BlockStore (src/engine/star/context.ts) on top of KvDiskCache: checked, atomic, fsynced
// entries with an LRU size cap. Keys are the engine's blockCacheKey (SHA-256 hex), used as file names as they are.
// A write that fails is warned about once and does not fail phase 1.
import type { BlockStore } from '../../engine/star/context';
import type { BlockKv } from '../../engine/star/types';
import { KvDiskCache, type KvDiskCacheOptions } from './kvDiskCache';

export interface KvBlockStore extends BlockStore {
  readonly cache: KvDiskCache;
}

export function openKvBlockStore(opts: KvDiskCacheOptions): KvBlockStore {
  const cache = new KvDiskCache(opts);
  const warn = opts.onWarning ?? (() => {});
  let failedWrites = 0;
  return {
    cache,
    dtype: cache.dtype,
    async get(key, expect): Promise<BlockKv | undefined> {
      const entry = await cache.get(key);
      if (!entry) return undefined;
      if (entry.rows !== expect.length || entry.width !== expect.width || entry.layers !== expect.layers) {
        // Same key, other geometry: only a bug or a hand-copied file gets here; never use such KV.
        warn(`${cache.fileOf(key)}: KV cache entry has ${entry.layers} layers x ${entry.rows} rows x ${entry.width}, expected ` +
          `${expect.layers} x ${expect.length} x ${expect.width}; deleted, encoding the block again`);
        await cache.delete(key);
        return undefined;
      }
      return { index: -1, start: entry.positions.start, length: entry.rows, width: entry.width, k: entry.k, v: entry.v };
    },
    // A cache that cannot be written (read-only folder, full disk, file size limit, a folder in an entry's place)
    // must not cost the answer: the block's KV is already in memory. Warned once per store; entries that fit are kept.
    async put(key, kv): Promise<void> {
      try {
        await cache.put(key, { layers: kv.k.length, rows: kv.length, width: kv.width, positions: { start: kv.start }, k: kv.k, v: kv.v });
      } catch (err) {
        if (failedWrites++ === 0) warn(`${(err as Error).message}; going on without caching such blocks (later failures are not reported)`);
      }
    },
  };
}
