// KvDiskCache on real temporary directories: round trips, atomic writes, damaged entries, LRU eviction, and a
// real write failure (a child process under `ulimit -f`, where writes fail with EFBIG part-way through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, rmSync, statSync, existsSync, mkdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvDiskCache, type KvEntry } from '../src/node/cache/kvDiskCache';
import { blockCacheKey, BLOCK_KV_VERSION } from '../src/engine/star/context';
import { POSITION_SCHEME } from '../src/engine/star/types';
import { KV_HEADER_BYTES } from '../src/node/cache/kvFileFormat';
import { EngineError } from '../src/engine/errors';
import { openKvBlockStore } from '../src/node/cache/kvBlockStore';
import { withTempDir } from './support/tempDir';

/** Seeded values shaped like real K/V: mostly small, some outliers. */
function makeEntry(layers: number, rows: number, width: number, start: number, seed: number): KvEntry {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const tensor = () => Float32Array.from({ length: rows * width }, () => gauss() * (rand() < 0.01 ? 40 : 1.5));
  return { layers, rows, width, positions: { start }, k: Array.from({ length: layers }, tensor), v: Array.from({ length: layers }, tensor) };
}

const parts = { modelIdentity: 'model-a', anchorTokens: [1, 2, 3] as readonly number[], blockTokens: [4, 5] as readonly number[] };
/** The production key (blockCacheKey) of a file block with these parts. */
const keyOf = (p: Partial<typeof parts> = {}): string => {
  const q = { ...parts, ...p };
  return blockCacheKey(q.modelIdentity, q.anchorTokens, { tokens: q.blockTokens, start: 3 });
};

if (process.env.KV_CACHE_TEST_CHILD && process.env.KV_CACHE_TEST_STORE) {
  // Child mode, through the Star BlockStore: a 16 KiB entry fits under the file size limit, a 1 MiB one does not.
  process.on('SIGXFSZ', () => {});
  const warnings: string[] = [];
  const store = openKvBlockStore({ dir: process.env.KV_CACHE_TEST_CHILD, maxSizeBytes: 1 << 30, onWarning: (m) => warnings.push(m) });
  const asKv = (e: KvEntry) => ({ index: 1, start: 0, length: e.rows, width: e.width, k: e.k, v: e.v });
  try {
    await store.put(keyOf({ ...parts, blockTokens: [1] }), asKv(makeEntry(4, 256, 128, 0, 1)));
    await store.put(keyOf({ ...parts, blockTokens: [2] }), asKv(makeEntry(1, 16, 128, 0, 2)));
    await store.put(keyOf({ ...parts, blockTokens: [3] }), asKv(makeEntry(4, 256, 128, 0, 3)));
    process.stdout.write(JSON.stringify({ ok: true, warnings }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, message: (err as Error).message, warnings }));
  }
} else if (process.env.KV_CACHE_TEST_CHILD) {
  // Child mode: write one 1 MiB entry with the file size limit far below it; report what happened.
  process.on('SIGXFSZ', () => {}); // with the signal handled, an over-limit write fails with EFBIG instead of killing us
  const cache = new KvDiskCache({ dir: process.env.KV_CACHE_TEST_CHILD, maxSizeBytes: 1 << 30 });
  try {
    await cache.put(keyOf(parts), makeEntry(4, 256, 128, 0, 1));
    process.stdout.write(JSON.stringify({ ok: true }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, name: (err as Error).name, message: (err as Error).message }));
  }
} else {
  registerTests();
}

function registerTests(): void {
  test('blockCacheKey: each input alone gives a new key; start, index and array identity do not', () => {
    const anchor = [1, 2, 3];
    const block = { index: 4, tokens: [4, 5, 6], start: 40 };
    const k = blockCacheKey('model-a', anchor, block);
    assert.match(k, /^[0-9a-f]{64}$/);
    // Nothing else: another start (a moved block is re-rotated, not re-keyed), another index, copies of the arrays,
    // and the defaults spelled out.
    for (const same of [
      blockCacheKey('model-a', [...anchor], { ...block, start: 999 }),
      blockCacheKey('model-a', anchor, Object.assign({}, block, { index: 9, tokens: [...block.tokens], start: 1 })),
      blockCacheKey('model-a', anchor, block, { dtype: 'f32', positionScheme: POSITION_SCHEME, formatVersion: BLOCK_KV_VERSION }),
    ]) assert.equal(same, k);
    // Each input alone.
    const variants: Record<string, string> = {
      model: blockCacheKey('model-b', anchor, block),
      'anchor tokens': blockCacheKey('model-a', [1, 2, 7], block),
      'block tokens': blockCacheKey('model-a', anchor, { ...block, tokens: [4, 5, 7] }),
      'position scheme': blockCacheKey('model-a', anchor, block, { positionScheme: 'other' }),
      'format version': blockCacheKey('model-a', anchor, block, { formatVersion: BLOCK_KV_VERSION + 1 }),
      dtype: blockCacheKey('model-a', anchor, block, { dtype: 'f16' }),
      'the anchor itself (start 0)': blockCacheKey('model-a', anchor, { ...block, start: 0 }),
      // Framing: the same token list split elsewhere between anchor and block is another key.
      'anchor/block boundary': blockCacheKey('model-a', [1, 2, 3, 4], { ...block, tokens: [5, 6] }),
    };
    for (const [what, key] of Object.entries(variants)) assert.notEqual(key, k, what);
    assert.equal(new Set(Object.values(variants)).size, Object.keys(variants).length, 'and every variant differs from the others');
  });

  test('KvDiskCache: f32 round trip is exact, a fresh instance reads it back, misses are undefined', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const warnings: string[] = [];
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24, dtype: 'f32', onWarning: (m) => warnings.push(m) });
      const key = keyOf(parts);
      const entry = makeEntry(3, 7, 16, 1234, 42);
      assert.equal(await cache.get(key), undefined);
      await cache.put(key, entry);
      const back = await new KvDiskCache({ dir, maxSizeBytes: 1 << 24 }).get(key);
      assert.deepEqual(back, entry);
      assert.equal(statSync(cache.fileOf(key)).size, KV_HEADER_BYTES + 3 * 2 * 7 * 16 * 4);
      assert.deepEqual(readdirSync(dir), [`${key}.kv`], 'no temp file left behind');
      assert.deepEqual(warnings, []);
      assert.throws(() => cache.fileOf('../etc/passwd'), EngineError);
    });
  });

  test('KvDiskCache: f16 storage halves the size; error within half precision', async (t) => {
    await withTempDir('kvcache-', async (dir) => {
      assert.equal(new KvDiskCache({ dir, maxSizeBytes: 1 << 24 }).dtype, 'f16', 'f16 is the default');
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24, dtype: 'f16' });
      const key = keyOf(parts);
      const entry = makeEntry(2, 64, 32, 0, 7);
      entry.k[0]![0] = 1e6; // beyond half range: saturates, never Infinity
      await cache.put(key, entry);
      assert.equal(statSync(cache.fileOf(key)).size, KV_HEADER_BYTES + 2 * 2 * 64 * 32 * 2);
      const back = (await cache.get(key))!;
      let maxRel = 0;
      let maxAbs = 0;
      for (let l = 0; l < 2; l++) {
        for (const [a, b] of [[entry.k[l]!, back.k[l]!], [entry.v[l]!, back.v[l]!]] as const) {
          for (let i = 0; i < a.length; i++) {
            if (l === 0 && a === entry.k[0] && i === 0) continue;
            const err = Math.abs(a[i]! - b[i]!);
            maxAbs = Math.max(maxAbs, err);
            if (Math.abs(a[i]!) > 2 ** -14) maxRel = Math.max(maxRel, err / Math.abs(a[i]!));
          }
        }
      }
      t.diagnostic(`f16 KV: max relative error ${maxRel.toExponential(3)}, max absolute ${maxAbs.toExponential(3)}`);
      assert.ok(maxRel <= 2 ** -11 && maxRel > 0, `relative error ${maxRel}`);
      assert.equal(back.k[0]![0], 65504);
    });
  });

  test('KvDiskCache: a temp file left by a crashed writer is never read and is cleaned up', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24 });
      const key = keyOf(parts);
      // A complete entry's bytes, but under a temp name of a writer that died before its rename.
      await cache.put(key, makeEntry(1, 4, 4, 0, 1));
      const bytes = readFileSync(cache.fileOf(key));
      rmSync(cache.fileOf(key));
      const dead = join(dir, `${key}.kv.tmp-999999999-abcdef`);
      const live = join(dir, `${key}.kv.tmp-${process.pid}-012345`); // this process: a concurrent writer
      writeFileSync(dead, bytes.subarray(0, 100));
      writeFileSync(live, bytes.subarray(0, 100));
      const fresh = new KvDiskCache({ dir, maxSizeBytes: 1 << 24 });
      assert.equal(await fresh.get(key), undefined);
      assert.ok(!existsSync(dead), 'the dead writer\'s temp file is removed');
      assert.ok(existsSync(live), 'a live writer\'s temp file is left alone');
    });
  });

  test('KvDiskCache: truncated, bit-flipped, wrong-version and misplaced entries are warned about, deleted, missed', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const warnings: string[] = [];
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24, onWarning: (m) => warnings.push(m) });
      const entry = makeEntry(2, 8, 8, 500, 3);
      const damage: [string, (b: Buffer) => Buffer][] = [
        ['truncated', (b) => b.subarray(0, b.length - 10)],
        ['payload', (b) => { b[KV_HEADER_BYTES + 37]! ^= 0x10; return b; }],
        ['header checksum', (b) => { b[24]! ^= 0x01; return b; }], // positions.start 500 -> 501
        ['version', (b) => { b.writeUInt32LE(2, 4); return b; }],
        ['another key', (b) => b],
        ['bad magic', (b) => { b[0] = 0; return b; }],
        ['trailing bytes', (b) => Buffer.concat([b, Buffer.alloc(3)])],
      ];
      for (const [i, [what, corrupt]] of damage.entries()) {
        const key = keyOf({ ...parts, blockTokens: [i] });
        const source = what === 'another key' ? keyOf({ ...parts, blockTokens: [999] }) : key;
        await cache.put(source, entry);
        const good = readFileSync(cache.fileOf(source));
        if (source !== key) rmSync(cache.fileOf(source));
        writeFileSync(cache.fileOf(key), corrupt(Buffer.from(good)));
        warnings.length = 0;
        assert.equal(await cache.get(key), undefined, what);
        assert.equal(warnings.length, 1, what);
        assert.ok(warnings[0]!.includes(cache.fileOf(key)), `warning names the file: ${warnings[0]}`);
        assert.ok(!existsSync(cache.fileOf(key)), `${what}: the bad entry is deleted`);
      }
    });
  });

  test('KvDiskCache: LRU eviction keeps the total under the cap, by last use', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const entry = makeEntry(1, 16, 16, 0, 5);
      const entryBytes = KV_HEADER_BYTES + 2 * 16 * 16 * 4;
      const warnings: string[] = [];
      const cache = new KvDiskCache({ dir, maxSizeBytes: Math.floor(entryBytes * 3.5), dtype: 'f32', onWarning: (m) => warnings.push(m) });
      const keys = ['a', 'b', 'c', 'd'].map((m) => keyOf({ ...parts, modelIdentity: m }));
      // Last use is the file's mtime: set a < b < c in the past rather than sleeping between the writes.
      const past = Date.now() / 1000 - 1000;
      for (const [i, k] of keys.slice(0, 3).entries()) {
        await cache.put(k, entry);
        utimesSync(cache.fileOf(k), past + i, past + i);
      }
      const beforeHit = Date.now();
      const fresh = new KvDiskCache({ dir, maxSizeBytes: cache.maxSizeBytes, dtype: 'f32', onWarning: (m) => warnings.push(m) }); // reads the mtimes
      assert.deepEqual(await fresh.keysByRecency(), keys.slice(0, 3));
      assert.ok(await fresh.get(keys[0]!)); // a is now the most recently used
      assert.ok(statSync(fresh.fileOf(keys[0]!)).mtimeMs >= beforeHit - 1000, 'a hit touches the entry');
      await fresh.put(keys[3]!, entry);
      assert.equal(await fresh.has(keys[1]!), false, 'b, least recently used, was evicted');
      const order = await fresh.keysByRecency();
      assert.equal(order[0], keys[2], 'c is now the least recently used');
      assert.deepEqual([...order].sort(), [keys[0]!, keys[2]!, keys[3]!].sort());
      assert.ok((await cache.sizeBytes()) <= cache.maxSizeBytes);
      // An entry larger than the whole cache is not stored, with a warning.
      await cache.put(keyOf({ ...parts, modelIdentity: 'huge' }), makeEntry(8, 64, 64, 0, 1));
      assert.equal(warnings.length, 1);
      assert.equal(readdirSync(dir).length, 3);
    });
  });

  test('KvDiskCache: writes in flight together (as phase 1 makes them) stay under the cap', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 20 });
      const entry = makeEntry(5, 48, 64, 0, 11); // 123 KB: eight fit in 1 MiB
      const groups = [0, 1, 2, 3].map((g) => Array.from({ length: 8 }, (_, j) => keyOf({ blockTokens: [g, j] })));
      for (const group of groups) await Promise.all(group.map((k) => cache.put(k, entry)));
      const onDisk = readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
      assert.ok(onDisk <= cache.maxSizeBytes, `${onDisk} bytes on disk under a cap of ${cache.maxSizeBytes}`);
      for (const k of groups[3]!) assert.ok(await cache.has(k), 'the last group, most recently used, is kept');
    });
  });

  test('KvDiskCache: a directory that cannot be created is an error naming it', async () => {
    await withTempDir('kvcache-', async (dir) => {
      writeFileSync(join(dir, 'file'), 'x');
      const cacheDir = join(dir, 'file', 'cache');
      const cache = new KvDiskCache({ dir: cacheDir, maxSizeBytes: 1 << 24 });
      await assert.rejects(cache.put(keyOf(parts), makeEntry(1, 2, 2, 0, 1)), (err: Error) => err instanceof EngineError && err.message.includes(cacheDir));
      assert.equal(await cache.get(keyOf(parts)), undefined);
    });
  });

  test('KvDiskCache: a write that fails part-way (EFBIG under ulimit -f) leaves no entry and no temp file', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const self = fileURLToPath(import.meta.url);
      const out = execFileSync('bash', ['-c', 'ulimit -f 256 && exec "$0" "$1"', process.execPath, self], {
        env: { ...process.env, KV_CACHE_TEST_CHILD: dir }, encoding: 'utf8',
      });
      const result = JSON.parse(out) as { ok: boolean; name?: string; message?: string };
      assert.equal(result.ok, false, 'the 1 MiB write must fail under a 256 KiB file size limit');
      assert.equal(result.name, 'EngineError');
      assert.ok(result.message!.includes(dir), result.message);
      assert.deepEqual(readdirSync(dir), [], 'neither a partial entry nor a temp file remains');
    });
  });

  test('openKvBlockStore: a failed write (EFBIG under ulimit -f) is warned about once, does not throw, and keeps what fits', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const self = fileURLToPath(import.meta.url);
      const out = execFileSync('bash', ['-c', 'ulimit -f 256 && exec "$0" "$1"', process.execPath, self], {
        env: { ...process.env, KV_CACHE_TEST_CHILD: dir, KV_CACHE_TEST_STORE: '1' }, encoding: 'utf8',
      });
      const result = JSON.parse(out) as { ok: boolean; message?: string; warnings: string[] };
      assert.equal(result.ok, true, result.message);
      assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
      assert.ok(result.warnings[0]!.includes(dir), result.warnings[0]);
      const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 30 });
      assert.deepEqual(readdirSync(dir), [`${keyOf({ ...parts, blockTokens: [2] })}.kv`], 'the entry that fits is kept, nothing else');
    });
  });

  test('openKvBlockStore: a folder where an entry should be, or a cache folder that cannot be made, is warned once, never thrown', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const warnings: string[] = [];
      const store = openKvBlockStore({ dir, maxSizeBytes: 1 << 24, dtype: 'f32', onWarning: (m) => warnings.push(m) });
      const e = makeEntry(2, 5, 8, 0, 9);
      const kv = { index: 1, start: 0, length: 5, width: 8, k: e.k, v: e.v };
      const keys = [1, 2, 3].map((t) => keyOf({ ...parts, blockTokens: [t] }));
      mkdirSync(store.cache.fileOf(keys[0]!));
      mkdirSync(store.cache.fileOf(keys[2]!));
      for (const key of keys) await store.put(key, kv);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.ok(warnings[0]!.includes(dir), warnings[0]);
      assert.deepEqual(await store.get(keys[1]!, { length: 5, width: 8, layers: 2 }), { ...kv, index: -1 }, 'the entry that fit is kept');

      writeFileSync(join(dir, 'file'), 'x');
      const unmakeable = openKvBlockStore({ dir: join(dir, 'file', 'cache'), maxSizeBytes: 1 << 24, onWarning: (m) => warnings.push(m) });
      await unmakeable.put(keys[1]!, kv);
      await unmakeable.put(keys[2]!, kv);
      assert.equal(warnings.length, 2);
      assert.ok(warnings[1]!.includes(join(dir, 'file', 'cache')), warnings[1]);
    });
  });

  test('openKvBlockStore: the Star engine\'s BlockStore round trip; a geometry mismatch is a warned miss', async () => {
    await withTempDir('kvcache-', async (dir) => {
      const warnings: string[] = [];
      const store = openKvBlockStore({ dir, maxSizeBytes: 1 << 24, dtype: 'f32', onWarning: (m) => warnings.push(m) });
      const e = makeEntry(2, 5, 8, 77, 9);
      const kv = { index: 3, start: 77, length: 5, width: 8, k: e.k, v: e.v };
      const key = keyOf(parts);
      await store.put(key, kv);
      assert.deepEqual(await store.get(key, { length: 5, width: 8, layers: 2 }), { ...kv, index: -1 });
      assert.deepEqual(warnings, []);
      assert.equal(await store.get(key, { length: 6, width: 8, layers: 2 }), undefined);
      assert.equal(warnings.length, 1);
      assert.equal(await store.cache.has(key), false);
    });
  });
}
