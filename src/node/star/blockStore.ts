// The per-block KV store of Star Attention phase 1, on disk. Entries are blocks' KV in the
// kvCodec format under content keys (blockCacheKey): model identity, anchor tokens, block tokens,
// position scheme and format version. A damaged or unreadable entry is reported through
// `onWarning` and treated as a miss, so the block is encoded again and the answer is unchanged.
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlockStore } from '../../engine/star/context';
import { decodeBlockKv, encodeBlockKv } from '../../engine/star/kvCodec';
import type { BlockKv } from '../../engine/star/types';

/** Where a key's entry lives: <dir>/blocks/<first 2 hex>/<key>.stkv */
export function blockEntryPath(dir: string, key: string): string {
  return join(dir, 'blocks', key.slice(0, 2), `${key}.stkv`);
}

export async function openBlockStore(dir: string, onWarning?: (message: string) => void): Promise<BlockStore> {
  await mkdir(join(dir, 'blocks'), { recursive: true });
  let tmpCounter = 0;
  return {
    async get(key, expect): Promise<BlockKv | undefined> {
      const file = blockEntryPath(dir, key);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        onWarning?.(`${file}: cannot read KV cache entry (${(err as Error).message}); encoding the block again`);
        return undefined;
      }
      try {
        return decodeBlockKv(bytes, -1, expect, file);
      } catch (err) {
        onWarning?.(`${(err as Error).message}; encoding the block again`);
        await rm(file, { force: true });
        return undefined;
      }
    },
    async put(key, kv): Promise<void> {
      const file = blockEntryPath(dir, key);
      await mkdir(join(dir, 'blocks', key.slice(0, 2)), { recursive: true });
      // Write then rename: a reader never sees half an entry, concurrent writers of one key agree.
      const tmp = `${file}.${process.pid}.${tmpCounter++}.tmp`;
      await writeFile(tmp, encodeBlockKv(kv));
      await rename(tmp, file);
    },
  };
}
