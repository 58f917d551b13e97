// Stored tensor bytes -> float32, for every TensorType, exactly as ggml lays the blocks out.
// Reference: ggml/src/ggml-quants.c (dequantize_row_q8_0, dequantize_row_q4_0, dequantize_row_q4_K,
// dequantize_row_q6_K, get_scale_min_k4) and ggml-common.h (block_* structs); read from the copy
// vendored in ollama/ollama ml/backend/ggml/ggml/src/ggml-quants.c. All multi-byte fields little-endian.
import type { TensorType } from '../model/types';
import { bytesFor, QK_K } from './formats';
import { bf16ToF32, f16Lookup } from './half';

/**
 * Decodes `count` values of `type` from `bytes` (which must hold at least bytesFor(type, count) bytes)
 * into `out` (allocated when absent). Returns `out`.
 */
export function dequantize(type: TensorType, bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const need = bytesFor(type, count);
  if (bytes.byteLength < need) throw new RangeError(`dequantize ${type}: ${count} values need ${need} bytes, got ${bytes.byteLength}`);
  const y = out ?? new Float32Array(count);
  if (y.length < count) throw new RangeError(`dequantize ${type}: output holds ${y.length} values, need ${count}`);
  switch (type) {
    case 'F32': dequantizeF32(bytes, count, y); break;
    case 'F16': dequantizeF16(bytes, count, y); break;
    case 'BF16': dequantizeBf16(bytes, count, y); break;
    case 'Q8_0': dequantizeQ8_0(bytes, count, y); break;
    case 'Q4_0': dequantizeQ4_0(bytes, count, y); break;
    case 'Q4_K': dequantizeQ4_K(bytes, count, y); break;
    case 'Q6_K': dequantizeQ6_K(bytes, count, y); break;
  }
  return y;
}

function dequantizeF32(b: Uint8Array, n: number, y: Float32Array): void {
  if (b.byteOffset % 4 === 0) {
    y.set(new Float32Array(b.buffer, b.byteOffset, n));
  } else {
    const view = new DataView(b.buffer, b.byteOffset, n * 4);
    for (let i = 0; i < n; i++) y[i] = view.getFloat32(i * 4, true);
  }
}

function dequantizeF16(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let i = 0; i < n; i++) y[i] = h[b[2 * i]! | (b[2 * i + 1]! << 8)]!;
}

function dequantizeBf16(b: Uint8Array, n: number, y: Float32Array): void {
  for (let i = 0; i < n; i++) y[i] = bf16ToF32(b[2 * i]! | (b[2 * i + 1]! << 8));
}

// block_q8_0 { ggml_half d; int8_t qs[32]; }: y = qs[j] * d.
function dequantizeQ8_0(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let blk = 0, p = 0, o = 0; o < n; blk++, p += 34, o += 32) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    for (let j = 0; j < 32; j++) y[o + j] = ((b[p + 2 + j]! << 24) >> 24) * d;
  }
}

// block_q4_0 { ggml_half d; uint8_t qs[16]; }: low nibbles are values 0..15, high nibbles 16..31, both minus 8.
function dequantizeQ4_0(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 18, o += 32) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    for (let j = 0; j < 16; j++) {
      const q = b[p + 2 + j]!;
      y[o + j] = ((q & 0x0f) - 8) * d;
      y[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** get_scale_min_k4: 8 six-bit scales and 8 six-bit mins packed into 12 bytes. */
function scaleMinK4(j: number, s: Uint8Array, p: number): [number, number] {
  if (j < 4) return [s[p + j]! & 63, s[p + j + 4]! & 63];
  return [
    (s[p + j + 4]! & 0x0f) | ((s[p + j - 4]! >> 6) << 4),
    (s[p + j + 4]! >> 4) | ((s[p + j]! >> 6) << 4),
  ];
}

// block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }
// Each 64 values: 32 low nibbles (sub-block 2k) then 32 high nibbles (sub-block 2k+1); y = d*sc*q - dmin*m.
function dequantizeQ4_K(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 144, o += QK_K) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    const dmin = h[b[p + 2]! | (b[p + 3]! << 8)]!;
    const scales = p + 4;
    let q = p + 16;
    let out = o;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(is, b, scales);
      const [sc2, m2] = scaleMinK4(is + 1, b, scales);
      const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
      for (let l = 0; l < 32; l++) y[out + l] = d1 * (b[q + l]! & 0x0f) - mm1;
      for (let l = 0; l < 32; l++) y[out + 32 + l] = d2 * (b[q + l]! >> 4) - mm2;
      q += 32;
      out += 64;
    }
  }
}

// block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
// Per 128 values: 4 groups of 32 take low/high nibbles of ql[0..63] and 2-bit pairs of qh[0..31]; q in -32..31.
function dequantizeQ6_K(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 210, o += QK_K) {
    const d = h[b[p + 208]! | (b[p + 209]! << 8)]!;
    let ql = p, qh = p + 128, sc = p + 192, out = o;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const hb = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0x0f) | ((hb & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0x0f) | (((hb >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        y[out + l] = d * ((b[sc + is]! << 24) >> 24) * q1;
        y[out + l + 32] = d * ((b[sc + is + 2]! << 24) >> 24) * q2;
        y[out + l + 64] = d * ((b[sc + is + 4]! << 24) >> 24) * q3;
        y[out + l + 96] = d * ((b[sc + is + 6]! << 24) >> 24) * q4;
      }
      out += 128; ql += 64; qh += 32; sc += 8;
    }
  }
}
