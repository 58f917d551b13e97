import { f16Lookup, f32ToF16Saturated } from './half';

/*
 * 8-bit KV values for the disk cache, as llama.cpp's q8_0 KV cache type: each group of 32 consecutive values of a
 * row is one ggml block_q8_0 { f16 d; int8 qs[32] } with d = max|x| / 127 and x read back as qs[i] * d. 34 bytes per
 * 32 values: 1.0625 bytes per value, 53 % of f16. Groups run along a row ([rows, width], width = nKvHeads x
 * headDim); a row whose width is not a multiple of 32 ends with a shorter group (2 + its count bytes), so groups
 * never straddle rows. Where width is a multiple of 32 (every real model: headDim 64 or 128) the bytes of a row are
 * a row of ggml's Q8_0 tensor type, which test/kv-cache-q8.test.ts decodes with the GGUF dequantizer.
 *
 * Unlike ggml's quantize_row_q8_0 the int8s are made against the scale as stored (f16), not the f32 d: the error
 * is then at most d / 2 per value, and rounding twice gives the same values (the group's largest value becomes
 * exactly 127 x d, which gives d again).
 *
 * Error per value: at most d / 2 = max|x| / 254 of its group, plus the scale's own f16 rounding (relative 2^-11 of
 * q * d); against f16's 2^-11 relative per value this is coarse for small values beside a large one in the same
 * group, which is what the fidelity test measures at the model's output (test/selection-q8.test.ts).
 */

export const Q8_GROUP = 32;

/** Bytes of one [rows, width] tensor in q8: per row, ceil(width / 32) groups of a 2-byte scale and their int8s. */
export function q8TensorBytes(rows: number, width: number): number {
  return rows * (Math.ceil(width / Q8_GROUP) * 2 + width);
}

/** Encodes [rows, width] row-major values: per row, each group of 32 as its f16 scale then its int8 values. */
export function encodeQ8(values: Float32Array, rows: number, width: number): Uint8Array {
  const out = new Uint8Array(q8TensorBytes(rows, width));
  const table = f16Lookup();
  let p = 0;
  for (let r = 0; r < rows; r++) {
    for (let from = r * width, end = from + width; from < end; from += Q8_GROUP) {
      const to = Math.min(end, from + Q8_GROUP);
      let amax = 0;
      for (let i = from; i < to; i++) amax = Math.max(amax, Math.abs(values[i]!));
      const bits = f32ToF16Saturated(amax / 127);
      out[p] = bits & 0xff;
      out[p + 1] = bits >> 8;
      p += 2;
      // Quantized against the scale as stored, so decoding multiplies by exactly the d the int8s were made for.
      const d = table[bits]!;
      const inv = d > 0 ? 1 / d : 0;
      for (let i = from; i < to; i++) out[p++] = Math.max(-127, Math.min(127, Math.round(values[i]! * inv))) & 0xff;
    }
  }
  return out;
}

export function decodeQ8(bytes: Uint8Array, rows: number, width: number): Float32Array {
  if (bytes.length < q8TensorBytes(rows, width)) throw new RangeError(`q8: ${bytes.length} bytes for ${rows} x ${width} values (${q8TensorBytes(rows, width)} needed)`);
  const table = f16Lookup();
  const out = new Float32Array(rows * width);
  let p = 0;
  for (let r = 0; r < rows; r++) {
    for (let from = r * width, end = from + width; from < end; from += Q8_GROUP) {
      const to = Math.min(end, from + Q8_GROUP);
      const d = table[bytes[p]! | (bytes[p + 1]! << 8)]!;
      p += 2;
      for (let i = from; i < to; i++) out[i] = ((bytes[p++]! << 24) >> 24) * d;
    }
  }
  return out;
}

/** Rounds [rows, width] values in place to what q8 storage gives back (a freshly encoded block then equals a loaded one). */
export function roundToQ8(values: Float32Array, rows: number, width: number): void {
  values.set(decodeQ8(encodeQ8(values, rows, width), rows, width));
}
