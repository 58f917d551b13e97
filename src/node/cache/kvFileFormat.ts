// The on-disk layout of one cached KV entry (one context block's K and V for every layer).
//
// Little-endian, a 128-byte header then the payload:
//   0  'SAKV' magic            4  u32 format version      8  u32 dtype (0 = f32, 1 = f16, 2 = q8)
//   12 u32 layers              16 u32 rows                20 u32 width (nKvHeads * headDim)
//   24 u32 positions.start     28 u32 reserved (0)        32 u64 payload bytes
//   40 32 bytes SHA-256 of the payload                    72 32 bytes the entry's key (binds file to name)
//   104 8 bytes: first 8 bytes of SHA-256(header[0..104))  112..128 zero
// Payload: for each layer, K [rows, width] then V [rows, width], row-major, in `dtype`; q8 (engine/quant/q8Kv.ts)
// stores each row as its groups' f16 scales, then its int8 values. A new dtype code leaves the version as it is:
// an older build reads code 2 as an unknown dtype (a warned miss), never as other values.
import { f16Lookup, f32ToF16Saturated } from '../../engine/quant/half';
import { decodeQ8, encodeQ8 } from '../../engine/quant/q8Kv';
import { kvBytes, kvTensorBytes, type KvDtype } from '../../engine/runtime/kvBytes';

export const KV_FILE_MAGIC = 0x56414b53; // 'SAKV' read as a little-endian u32
/** Version of the entry file's byte layout (this header and the payload), checked on every read. */
export const KV_FILE_FORMAT_VERSION = 1;
export const KV_HEADER_BYTES = 128;
const HEADER_HASHED_BYTES = 104;

export type { KvDtype };
const DTYPE_CODES: Record<KvDtype, number> = { f32: 0, f16: 1, q8: 2 };
const DTYPE_BY_CODE = new Map(Object.entries(DTYPE_CODES).map(([k, v]) => [v, k as KvDtype]));

/** One block's KV for every layer. k[l], v[l]: [rows, width] row-major; K already rotated for its positions. */
export interface KvEntry {
  readonly layers: number;
  readonly rows: number;
  readonly width: number;
  /** Global position id of row 0 (RoPE was applied for start..start+rows-1). */
  readonly positions: { readonly start: number };
  readonly k: Float32Array[];
  readonly v: Float32Array[];
}

export interface KvHeader {
  readonly version: number;
  readonly dtype: KvDtype;
  readonly layers: number;
  readonly rows: number;
  readonly width: number;
  readonly start: number;
  readonly payloadBytes: number;
  readonly payloadSha256: Uint8Array;
  readonly key: Uint8Array;
}

export function payloadBytesOf(layers: number, rows: number, width: number, dtype: KvDtype): number {
  return kvBytes(layers, rows, width, dtype);
}

/** `headerSha256(bytes)` hashes header[0..104); the caller supplies SHA-256 (node:crypto here). */
export function encodeHeader(h: Omit<KvHeader, 'version'>, sha256: (b: Uint8Array) => Uint8Array): Uint8Array {
  const out = new Uint8Array(KV_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, KV_FILE_MAGIC, true);
  dv.setUint32(4, KV_FILE_FORMAT_VERSION, true);
  dv.setUint32(8, DTYPE_CODES[h.dtype], true);
  dv.setUint32(12, h.layers, true);
  dv.setUint32(16, h.rows, true);
  dv.setUint32(20, h.width, true);
  dv.setUint32(24, h.start, true);
  dv.setBigUint64(32, BigInt(h.payloadBytes), true);
  out.set(h.payloadSha256, 40);
  out.set(h.key, 72);
  out.set(sha256(out.subarray(0, HEADER_HASHED_BYTES)).subarray(0, 8), HEADER_HASHED_BYTES);
  return out;
}

/** Parses and checks a header; returns a reason string when the file cannot be used. */
export function decodeHeader(bytes: Uint8Array, sha256: (b: Uint8Array) => Uint8Array): KvHeader | string {
  if (bytes.length < KV_HEADER_BYTES) return `truncated: ${bytes.length} bytes, shorter than the ${KV_HEADER_BYTES}-byte header`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, KV_HEADER_BYTES);
  if (dv.getUint32(0, true) !== KV_FILE_MAGIC) return 'not a KV cache entry (bad magic)';
  const version = dv.getUint32(4, true);
  if (version !== KV_FILE_FORMAT_VERSION) return `format version ${version}, this build reads version ${KV_FILE_FORMAT_VERSION}`;
  const check = sha256(bytes.subarray(0, HEADER_HASHED_BYTES)).subarray(0, 8);
  if (!equalBytes(check, bytes.subarray(HEADER_HASHED_BYTES, HEADER_HASHED_BYTES + 8))) return 'header checksum mismatch';
  const dtype = DTYPE_BY_CODE.get(dv.getUint32(8, true));
  if (!dtype) return `unknown dtype code ${dv.getUint32(8, true)}`;
  const [layers, rows, width, start] = [12, 16, 20, 24].map((o) => dv.getUint32(o, true)) as [number, number, number, number];
  const payloadBytes = Number(dv.getBigUint64(32, true));
  if (payloadBytes !== payloadBytesOf(layers, rows, width, dtype)) {
    return `payload size ${payloadBytes} does not match ${layers} layers x ${rows} rows x ${width} ${dtype}`;
  }
  return {
    version, dtype, layers, rows, width, start, payloadBytes,
    payloadSha256: bytes.slice(40, 72), key: bytes.slice(72, 104),
  };
}

/** Bytes of one [rows, width] tensor in the payload. */
export function tensorBytesOf(rows: number, width: number, dtype: KvDtype): number {
  return kvTensorBytes(rows, width, dtype);
}

/** One [rows, width] tensor in the file's dtype (little-endian). */
export function encodeTensor(values: Float32Array, rows: number, width: number, dtype: KvDtype): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (dtype === 'q8') return encodeQ8(values, rows, width);
  const out = new Uint16Array(values.length);
  // Saturated as roundToF16 rounds the KV the engine keeps (an Infinity would poison softmax).
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Saturated(values[i]!);
  return new Uint8Array(out.buffer);
}

export function decodeTensor(bytes: Uint8Array, rows: number, width: number, dtype: KvDtype): Float32Array {
  const count = rows * width;
  if (dtype === 'q8') return decodeQ8(bytes.subarray(0, tensorBytesOf(rows, width, dtype)), rows, width);
  if (dtype === 'f32') {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
    return out;
  }
  const halves = new Uint16Array(count);
  new Uint8Array(halves.buffer).set(bytes.subarray(0, count * 2));
  const table = f16Lookup();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[halves[i]!]!;
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
