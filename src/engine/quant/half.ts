// IEEE half (F16) and bfloat16 (BF16) conversions, bit-exact with ggml:
// F32 -> F16 rounds to nearest even (what F16C / GGML_FP32_TO_FP16 do); F32 -> BF16 is
// ggml_compute_fp32_to_bf16 (round to nearest even, NaN kept quiet).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | undefined;

/** Float value of F16 bits (a 64K-entry table, built once). */
export function f16ToF32(bits: number): number {
  return (f16Table ??= buildF16Table())[bits & 0xffff]!;
}

/** The whole table, for hot loops that index it directly. */
export function f16Lookup(): Float32Array {
  return (f16Table ??= buildF16Table());
}

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) table[h] = mant ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return table;
}

/** F16 bits of `value` (rounded to float32 first, then to nearest-even half). */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: value / 2^-24, rounded to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry into the exponent is correct rounding (up to Inf)
  return sign | half;
}

export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Largest finite half: KV values beyond it saturate (an Infinity would poison softmax). */
export const F16_MAX = 65504;

/** F16 bits of `value`, saturated at ±F16_MAX (what the KV cache stores). */
export function f32ToF16Saturated(value: number): number {
  return f32ToF16(value > F16_MAX ? F16_MAX : value < -F16_MAX ? -F16_MAX : value);
}

/**
 * Rounds every array in place to what f16 storage keeps (saturated at ±F16_MAX, nearest-even): a value read back
 * from an f16 KV cache entry equals this rounding of the value written.
 */
export function roundToF16(...arrays: Float32Array[]): void {
  const table = f16Lookup();
  for (const values of arrays) {
    for (let i = 0; i < values.length; i++) values[i] = table[f32ToF16Saturated(values[i]!)]!;
  }
}
