import { f16Lookup, f32ToF16Saturated } from './half';

/*
 * 8-bit KV values for the disk cache, as llama.cpp's q8_0 KV cache type: each group of 32 consecutive values of a
 * row is stored as one f16 scale d = max|x| / 127 and 32 int8 q = round(x / d), read back as q * d. 34 bytes per
 * 32 values: 1.0625 bytes per value, 53 % of f16. Groups run along a row ([rows, width], width = nKvHeads x
 * headDim); a row whose width is not a multiple of 32 ends with a shorter group, so groups never straddle rows.
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

/** Encodes [rows, width] row-major values: per row, every group's f16 scale first, then the row's int8 values. */
export function encodeQ8(values: Float32Array, rows: number, width: number): Uint8Array {
  const groups = Math.ceil(width / Q8_GROUP);
  const rowBytes = groups * 2 + width;
  const out = new Uint8Array(rows * rowBytes);
  const dv = new DataView(out.buffer);
  const table = f16Lookup();
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    for (let g = 0; g < groups; g++) {
      const from = r * width + g * Q8_GROUP;
      const to = r * width + Math.min(width, (g + 1) * Q8_GROUP);
      let amax = 0;
      for (let i = from; i < to; i++) amax = Math.max(amax, Math.abs(values[i]!));
      const bits = f32ToF16Saturated(amax / 127);
      dv.setUint16(base + g * 2, bits, true);
      // Quantized against the scale as stored, so decoding multiplies by exactly the d the int8s were made for.
      const d = table[bits]!;
      const inv = d > 0 ? 1 / d : 0;
      for (let i = from; i < to; i++) {
        const q = Math.max(-127, Math.min(127, Math.round(values[i]! * inv)));
        dv.setInt8(base + groups * 2 + (i - r * width), q);
      }
    }
  }
  return out;
}

export function decodeQ8(bytes: Uint8Array, rows: number, width: number): Float32Array {
  const groups = Math.ceil(width / Q8_GROUP);
  const rowBytes = groups * 2 + width;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = f16Lookup();
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    for (let c = 0; c < width; c++) {
      const d = table[dv.getUint16(base + Math.floor(c / Q8_GROUP) * 2, true)]!;
      out[r * width + c] = dv.getInt8(base + groups * 2 + c) * d;
    }
  }
  return out;
}

/** Rounds [rows, width] values in place to what q8 storage gives back (a freshly encoded block then equals a loaded one). */
export function roundToQ8(values: Float32Array, rows: number, width: number): void {
  values.set(decodeQ8(encodeQ8(values, rows, width), rows, width));
}
