// The Star engine's BlockStore (src/engine/star/context.ts) on top of KvDiskCache: checked, atomic, fsynced
// entries with an LRU size cap. Keys are the engine's blockCacheKey (SHA-256 hex), used as file names as they are.
import type { BlockStore } from '../../engine/star/context';
import type { BlockKv } from '../../engine/star/types';
import { KvDiskCache, type KvDiskCacheOptions } from './kvDiskCache';

export interface KvBlockStore extends BlockStore {
  readonly cache: KvDiskCache;
}

export function openKvBlockStore(opts: KvDiskCacheOptions): KvBlockStore {
  const cache = new KvDiskCache(opts);
  const warn = opts.onWarning ?? (() => {});
  return {
    cache,
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
    async put(key, kv): Promise<void> {
      await cache.put(key, { layers: kv.k.length, rows: kv.length, width: kv.width, positions: { start: kv.start }, k: kv.k, v: kv.v });
    },
  };
}
