// q8 entries of the disk KV cache (src/engine/quant/q8Kv.ts in src/node/cache/kvFileFormat.ts): the bytes on disk
// are read back by an independent decoder, the GGUF Q8_0 dequantizer (checked against llama.cpp's quantizer), so a
// wrong scale placement, scale type or sign of the int8s fails here; values stay within their group's bound; what
// the cache gives back is what the hosts keep for a freshly encoded block (roundKvAs), so warm equals cold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, statSync, existsSync } from 'node:fs';
import { KvDiskCache, type KvEntry } from '../src/node/cache/kvDiskCache';
import { blockCacheKey } from '../src/engine/star/context';
import { KV_HEADER_BYTES } from '../src/node/cache/kvFileFormat';
import { dequantize } from '../src/engine/quant/dequantize';
import { roundKvAs } from '../src/engine/quant/kvRounding';
import { Q8_GROUP } from '../src/engine/quant/q8Kv';
import { kvBytes } from '../src/engine/runtime/kvBytes';
import { withTempDir } from './support/tempDir';

function makeEntry(layers: number, rows: number, width: number, seed: number): KvEntry {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  // Shaped like real K/V: mostly small, a few outliers, some negative groups, one all-zero row.
  const tensor = () => {
    const t = Float32Array.from({ length: rows * width }, () => gauss() * (rand() < 0.01 ? 40 : 1.5));
    t.fill(0, 0, width);
    return t;
  };
  return { layers, rows, width, positions: { start: 9 }, k: Array.from({ length: layers }, tensor), v: Array.from({ length: layers }, tensor) };
}

const key = blockCacheKey('model-q8', [1, 2, 3], { tokens: [4, 5, 6], start: 9 }, { dtype: 'q8' });

test('q8 cache entry: 34 bytes per 32 values, dtype code 2, every tensor a row of GGUF Q8_0 blocks (decoded by the GGUF dequantizer)', async () => {
  await withTempDir('kvq8-', async (dir) => {
    const [layers, rows, width] = [3, 40, 192]; // SmolLM2's row: 3 KV heads x 64
    const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24, dtype: 'q8' });
    const entry = makeEntry(layers, rows, width, 5);
    await cache.put(key, entry);
    const bytes = readFileSync(cache.fileOf(key));
    const tensorBytes = rows * (width / Q8_GROUP) * 34;
    assert.equal(bytes.length, KV_HEADER_BYTES + layers * 2 * tensorBytes);
    assert.equal(bytes.length - KV_HEADER_BYTES, kvBytes(layers, rows, width, 'q8'));
    assert.equal(bytes.readUInt32LE(8), 2, 'dtype code of q8');
    const back = (await cache.get(key))!;
    assert.equal(back.positions.start, 9);
    for (let l = 0; l < layers; l++) {
      for (const [which, tensors, original] of [['k', back.k, entry.k], ['v', back.v, entry.v]] as const) {
        const at = KV_HEADER_BYTES + (2 * l + (which === 'k' ? 0 : 1)) * tensorBytes;
        const ggml = dequantize('Q8_0', bytes.subarray(at, at + tensorBytes), rows * width);
        assert.deepEqual(tensors[l], ggml, `layer ${l} ${which}: the payload read as GGUF Q8_0 blocks gives what the cache read`);
        const x = original[l]!;
        const y = tensors[l]!;
        for (let g = 0; g < rows * width; g += Q8_GROUP) {
          let amax = 0;
          for (let i = g; i < g + Q8_GROUP; i++) amax = Math.max(amax, Math.abs(x[i]!));
          for (let i = g; i < g + Q8_GROUP; i++) assert.ok(Math.abs(y[i]! - x[i]!) <= (amax / 254) * (1 + 2 ** -10), `layer ${l} ${which} value ${i}`);
        }
        assert.ok(y.subarray(0, width).every((v) => v === 0), 'an all-zero row stays zero (scale 0)');
      }
    }
    // What a host keeps for a freshly encoded block (roundKvAs) is what a warm run reads: bit for bit.
    const fresh = { length: rows, width, k: entry.k.map((t) => t.slice()), v: entry.v.map((t) => t.slice()) };
    roundKvAs('q8', fresh);
    assert.deepEqual(fresh.k, back.k);
    assert.deepEqual(fresh.v, back.v);
    // Rounding again changes nothing (context.ts rounds a re-rotated block again; a stored block is rewritten so).
    roundKvAs('q8', fresh);
    assert.deepEqual(fresh.k, back.k);
  });
});

test('q8 cache entry: a row width that is not a multiple of 32 ends with a short group; a flipped scale byte is a warned miss', async () => {
  await withTempDir('kvq8-', async (dir) => {
    const warnings: string[] = [];
    const cache = new KvDiskCache({ dir, maxSizeBytes: 1 << 24, dtype: 'q8', onWarning: (m) => warnings.push(m) });
    const entry = makeEntry(2, 5, 70, 9);
    await cache.put(key, entry);
    const file = cache.fileOf(key);
    assert.equal(statSync(file).size, KV_HEADER_BYTES + 2 * 2 * 5 * (3 * 2 + 70));
    const back = (await cache.get(key))!;
    const fresh = { length: 5, width: 70, k: entry.k.map((t) => t.slice()), v: entry.v.map((t) => t.slice()) };
    roundKvAs('q8', fresh);
    assert.deepEqual(back.k, fresh.k);
    assert.deepEqual(back.v, fresh.v);
    const bytes = readFileSync(file);
    bytes[KV_HEADER_BYTES + 76 + 1] ^= 0x40; // the second row's first scale, high byte
    writeFileSync(file, bytes);
    assert.equal(await cache.get(key), undefined);
    assert.equal(existsSync(file), false, 'deleted');
    assert.match(warnings.join('\n'), /payload checksum mismatch/);
  });
});

test('q8 entries are another key than f16 ones', () => {
  const block = { tokens: [4, 5, 6], start: 9 };
  assert.notEqual(blockCacheKey('m', [1], block, { dtype: 'q8' }), blockCacheKey('m', [1], block, { dtype: 'f16' }));
});
