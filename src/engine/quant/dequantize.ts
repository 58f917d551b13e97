// Stored tensor bytes -> float32, for every TensorType, exactly as ggml lays the blocks out.
// Reference: ggml/src/ggml-quants.c (dequantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1,q2_K,q3_K,q4_K,q5_K,q6_K},
// get_scale_min_k4) and ggml-common.h (block_* structs); the first four K/legacy types were read from the
// copy vendored in ollama/ollama, the rest from ggml-org/llama.cpp. All multi-byte fields little-endian.
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
    case 'Q4_1': dequantizeQ4_1(bytes, count, y); break;
    case 'Q5_0': dequantizeQ5(bytes, count, y, false); break;
    case 'Q5_1': dequantizeQ5(bytes, count, y, true); break;
    case 'Q2_K': dequantizeQ2_K(bytes, count, y); break;
    case 'Q3_K': dequantizeQ3_K(bytes, count, y); break;
    case 'Q4_K': dequantizeQ4_K(bytes, count, y); break;
    case 'Q5_K': dequantizeQ5_K(bytes, count, y); break;
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

// block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }: nibbles as in Q4_0, y = q * d + m (q in 0..15).
function dequantizeQ4_1(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 20, o += 32) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    const m = h[b[p + 2]! | (b[p + 3]! << 8)]!;
    for (let j = 0; j < 16; j++) {
      const q = b[p + 4 + j]!;
      y[o + j] = (q & 0x0f) * d + m;
      y[o + j + 16] = (q >> 4) * d + m;
    }
  }
}

// block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }: y = (q - 16) * d;
// block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }: y = q * d + m.
// q = nibble (low nibbles values 0..15, high nibbles 16..31) | bit j of the little-endian u32 qh, as bit 4.
function dequantizeQ5(b: Uint8Array, n: number, y: Float32Array, withMin: boolean): void {
  const h = f16Lookup();
  const size = withMin ? 24 : 22;
  const head = withMin ? 4 : 2;
  for (let p = 0, o = 0; o < n; p += size, o += 32) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    const m = withMin ? h[b[p + 2]! | (b[p + 3]! << 8)]! : 0;
    const qh = (b[p + head]! | (b[p + head + 1]! << 8) | (b[p + head + 2]! << 16) | (b[p + head + 3]! << 24)) >>> 0;
    const qs = p + head + 4;
    for (let j = 0; j < 16; j++) {
      const q = b[qs + j]!;
      const q0 = (q & 0x0f) | (((qh >>> j) & 1) << 4);
      const q1 = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      y[o + j] = withMin ? q0 * d + m : (q0 - 16) * d;
      y[o + j + 16] = withMin ? q1 * d + m : (q1 - 16) * d;
    }
  }
}

// block_q2_K { uint8_t scales[16]; uint8_t qs[64]; ggml_half d; ggml_half dmin; }
// scales[k] (one per 16 values): low nibble scale, high nibble min. Per 128 values, qs[32 bytes] hold
// four 32-value groups in bit pairs 0-1, 2-3, 4-5, 6-7. y = d * sc * q - dmin * m, q in 0..3.
function dequantizeQ2_K(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 84, o += QK_K) {
    const d = h[b[p + 80]! | (b[p + 81]! << 8)]!;
    const dmin = h[b[p + 82]! | (b[p + 83]! << 8)]!;
    for (let i = 0; i < QK_K; i += 16) {
      const sc = b[p + (i >> 4)]!;
      const dl = d * (sc & 0x0f), ml = dmin * (sc >> 4);
      const q = p + 16 + 32 * (i >> 7) + (i & 31);
      const shift = 2 * ((i & 127) >> 5);
      for (let l = 0; l < 16; l++) y[o + i + l] = dl * ((b[q + l]! >> shift) & 3) - ml;
    }
  }
}

/** Q3_K's 16 six-bit scales in 12 bytes at `p`: low nibbles in bytes 0-7 (k < 8 low, k >= 8 high), top bits in bytes 8-11. */
function scaleQ3_K(b: Uint8Array, p: number, k: number): number {
  const low = k < 8 ? b[p + k]! & 0x0f : b[p + k - 8]! >> 4;
  const high = (b[p + 8 + (k & 3)]! >> (2 * (k >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

// block_q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d; }
// Low 2 bits as in Q2_K; value i's high bit is bit (i >> 5) of hmask[i & 31]; q = low - (high ? 0 : 4)
// in -4..3; y = d * (scale - 32) * q with one 6-bit scale per 16 values.
function dequantizeQ3_K(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 110, o += QK_K) {
    const d = h[b[p + 108]! | (b[p + 109]! << 8)]!;
    for (let i = 0; i < QK_K; i += 16) {
      const dl = d * scaleQ3_K(b, p + 96, i >> 4);
      const l0 = i & 31;
      const q = p + 32 + 32 * (i >> 7) + l0;
      const shift = 2 * ((i & 127) >> 5);
      const bit = i >> 5;
      for (let l = 0; l < 16; l++) {
        const high = (b[p + l0 + l]! >> bit) & 1;
        y[o + i + l] = dl * (((b[q + l]! >> shift) & 3) - (high ? 0 : 4));
      }
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

// block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
// As Q4_K, plus a fifth bit: value 64c + l (sub-block 2c) takes bit 2c of qh[l], value 64c + 32 + l bit 2c + 1.
function dequantizeQ5_K(b: Uint8Array, n: number, y: Float32Array): void {
  const h = f16Lookup();
  for (let p = 0, o = 0; o < n; p += 176, o += QK_K) {
    const d = h[b[p]! | (b[p + 1]! << 8)]!;
    const dmin = h[b[p + 2]! | (b[p + 3]! << 8)]!;
    const qh = p + 16;
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(2 * c, b, p + 4);
      const [sc2, m2] = scaleMinK4(2 * c + 1, b, p + 4);
      const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
      const q = p + 48 + 32 * c;
      const out = o + 64 * c;
      for (let l = 0; l < 32; l++) {
        const hb = b[qh + l]! >> (2 * c);
        y[out + l] = d1 * ((b[q + l]! & 0x0f) | ((hb & 1) << 4)) - mm1;
        y[out + 32 + l] = d2 * ((b[q + l]! >> 4) | ((hb & 2) << 3)) - mm2;
      }
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
