import { FormatError } from '../errors';
import { KV_FORMAT_VERSION } from './context';
import type { BlockKv } from './types';

/*
 * A block's KV as bytes (disk cache entries, message payloads):
 *   "STKV" | u32 version | u32 start | u32 length | u32 width | u32 layers | u32 checksum
 *   then per layer: K [length, width] f32, V [length, width] f32 (little-endian).
 * The checksum (FNV-1a over the data's 32-bit words) catches truncated or damaged entries, which
 * the caller then re-encodes.
 */

const MAGIC = 0x564b5453; // "STKV" little-endian
const HEADER_BYTES = 28;

export function encodeBlockKv(kv: BlockKv): Uint8Array {
  const layerValues = kv.length * kv.width;
  const bytes = new Uint8Array(HEADER_BYTES + kv.k.length * 2 * layerValues * 4);
  const data = new Float32Array(bytes.buffer, HEADER_BYTES);
  kv.k.forEach((k, l) => {
    data.set(k.subarray(0, layerValues), 2 * l * layerValues);
    data.set(kv.v[l]!.subarray(0, layerValues), (2 * l + 1) * layerValues);
  });
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, KV_FORMAT_VERSION, true);
  view.setUint32(8, kv.start, true);
  view.setUint32(12, kv.length, true);
  view.setUint32(16, kv.width, true);
  view.setUint32(20, kv.k.length, true);
  view.setUint32(24, checksum(new Uint32Array(bytes.buffer, HEADER_BYTES)), true);
  return bytes;
}

/** Throws FormatError (naming `name`) when the bytes are not a valid entry or do not match `expect`. */
export function decodeBlockKv(bytes: Uint8Array, index: number, expect: { length: number; width: number; layers: number }, name: string): BlockKv {
  if (bytes.byteLength < HEADER_BYTES) throw new FormatError(`KV cache entry is truncated (${bytes.byteLength} bytes)`, name);
  // Copy so the data is 4-byte aligned whatever buffer the bytes came from.
  const own = new Uint8Array(bytes);
  const view = new DataView(own.buffer);
  if (view.getUint32(0, true) !== MAGIC) throw new FormatError('not a KV cache entry (bad magic)', name);
  const version = view.getUint32(4, true);
  if (version !== KV_FORMAT_VERSION) throw new FormatError(`KV cache entry has format version ${version}, expected ${KV_FORMAT_VERSION}`, name);
  const start = view.getUint32(8, true);
  const length = view.getUint32(12, true);
  const width = view.getUint32(16, true);
  const layers = view.getUint32(20, true);
  if (length !== expect.length || width !== expect.width || layers !== expect.layers) {
    throw new FormatError(`KV cache entry holds ${length}x${width}x${layers}, expected ${expect.length}x${expect.width}x${expect.layers}`, name);
  }
  const layerValues = length * width;
  if (own.byteLength !== HEADER_BYTES + layers * 2 * layerValues * 4) {
    throw new FormatError(`KV cache entry has ${own.byteLength} bytes, expected ${HEADER_BYTES + layers * 2 * layerValues * 4}`, name);
  }
  if (checksum(new Uint32Array(own.buffer, HEADER_BYTES)) !== view.getUint32(24, true)) {
    throw new FormatError('KV cache entry is damaged (checksum mismatch)', name);
  }
  const data = new Float32Array(own.buffer, HEADER_BYTES);
  const k: Float32Array[] = [];
  const v: Float32Array[] = [];
  for (let l = 0; l < layers; l++) {
    k.push(data.subarray(2 * l * layerValues, (2 * l + 1) * layerValues));
    v.push(data.subarray((2 * l + 1) * layerValues, (2 * l + 2) * layerValues));
  }
  return { index, start, length, width, k, v };
}

function checksum(words: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}
