// GGUF string arrays: a long one (a vocabulary) is read into PackedStrings, whose items must be exactly the strings
// a reader decoding each item would have made (test/tokenizer.test.ts then holds the tokenizers to their references):
// odd items included (invalid UTF-8, a byte order mark, empty), across the reader's growing window, and written back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGguf } from '../src/engine/model/gguf';
import { MemoryByteSource } from '../src/engine/io/byteSource';
import { writeGguf } from '../src/engine/quant/ggufWriter';
import { PackedStrings } from '../src/engine/util/packedStrings';

const enc = new TextEncoder();
const u64 = (n: number) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return b; };
const u32 = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
const str = (b: Uint8Array) => [u64(b.length), b];

function ggufWithStrings(arrays: Record<string, Uint8Array[]>): Uint8Array {
  const parts: Uint8Array[] = [enc.encode('GGUF'), u32(3), u64(0), u64(Object.keys(arrays).length)];
  for (const [key, items] of Object.entries(arrays)) parts.push(...str(enc.encode(key)), u32(9), u32(8), u64(items.length), ...items.flatMap(str));
  const out = new Uint8Array(Math.ceil(parts.reduce((a, p) => a + p.length, 0) / 32) * 32); // padded to the data alignment
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const ODD: Uint8Array[] = [
  new Uint8Array([]), enc.encode('\ufeffx'), enc.encode('\ufeff\ufeffy'), Uint8Array.of(0xef, 0xbb), Uint8Array.of(0xff, 0x41),
  Uint8Array.of(0xe6, 0x97), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xc0, 0xaf), Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
  enc.encode('Ġhello'), enc.encode('日本'), enc.encode('🤖'), Uint8Array.of(0x61, 0xf0, 0x9f, 0xa4), enc.encode('a b'),
];

test('a long GGUF string array reads as PackedStrings equal, item for item, to the strings decoded one by one', async () => {
  // Over 64 KB of items, so the reader's window grows in the middle of the array.
  const long = [...ODD, ...Array.from({ length: 3000 }, (_, i) => enc.encode(`token ${i} ${'x'.repeat(i % 37)}`)), ...ODD];
  const short = ODD.slice(0, 5);
  const file = ggufWithStrings({ 'tokenizer.ggml.tokens': long, 'general.tags': short });
  assert.ok(file.length > 64 * 1024);
  const h = await parseGguf(new MemoryByteSource('strings.gguf', file));
  const loose = new TextDecoder('utf-8', { fatal: false });
  const packed = h.metadata['tokenizer.ggml.tokens'];
  assert.ok(packed instanceof PackedStrings);
  assert.equal(packed.length, long.length);
  for (let i = 0; i < long.length; i++) assert.equal(packed.get(i), loose.decode(long[i]!), `item ${i}`);
  assert.deepEqual(h.metadata['general.tags'], short.map((b) => loose.decode(b)), 'a short array stays strings');
  assert.deepEqual(PackedStrings.from(long.map((b) => loose.decode(b))).bytes, packed.bytes, 'from() packs the same bytes');

  const chunks: Uint8Array[] = [];
  await writeGguf({ metadata: h.metadata, metadataTypes: h.metadataTypes, tensors: [] }, async (c) => { chunks.push(c); });
  const again = await parseGguf(new MemoryByteSource('again.gguf', Uint8Array.from(chunks.flatMap((c) => [...c]))));
  const back = again.metadata['tokenizer.ggml.tokens'] as PackedStrings;
  // Read back as a reader decoding each item would: a U+FEFF left at an item's start is dropped again there.
  const expected = Array.from({ length: packed.length }, (_, i) => loose.decode(enc.encode(packed.get(i))));
  assert.deepEqual(Array.from({ length: back.length }, (_, i) => back.get(i)), expected, 'written and read back');
  assert.equal(back.get(2), 'y');
});
