// float32 -> stored bytes, ports of ggml's reference ("_ref") quantizers in ggml/src/ggml-quants.c:
// quantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1}_ref, quantize_row_{q2_K,q4_K,q5_K}_ref (with make_qkx2_quants),
// quantize_row_q3_K_ref (with make_q3_quants), quantize_row_q6_K_ref (with make_qx_quants); Q8_0, Q4_0,
// Q4_K and Q6_K were read from the copy vendored in ollama/ollama, the others from ggml-org/llama.cpp.
// Arithmetic is rounded to float32 (Math.fround) step by step as the C code does, so the 32-value types
// match ggml byte for byte; the K-quants follow the same algorithm but a C compiler may fuse
// multiply-adds, so their bytes can differ from llama.cpp's in rare blocks.
// No importance matrix (imatrix) support: these are the plain reference quantizers llama-quantize uses
// without --imatrix.
import type { TensorType } from '../model/types';
import { bytesFor, QK_K, TENSOR_FORMATS } from './formats';
import { f16ToF32, f32ToBf16, f32ToF16 } from './half';

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);

/**
 * Encodes `values` (length a multiple of the type's block size) as `type`.
 * Writes into `out` when given (at least bytesFor(type, values.length) bytes) and returns the written bytes.
 */
export function quantize(type: TensorType, values: Float32Array, out?: Uint8Array): Uint8Array {
  const n = values.length;
  const need = bytesFor(type, n);
  const y = out ? out.subarray(0, need) : new Uint8Array(need);
  if (y.length < need) throw new RangeError(`quantize ${type}: output holds ${y.length} bytes, need ${need}`);
  switch (type) {
    case 'F32': y.set(new Uint8Array(Float32Array.from(values).buffer)); break;
    case 'F16': for (let i = 0; i < n; i++) writeU16(y, 2 * i, f32ToF16(values[i]!)); break;
    case 'BF16': for (let i = 0; i < n; i++) writeU16(y, 2 * i, f32ToBf16(values[i]!)); break;
    case 'Q8_0': quantizeQ8_0(values, y); break;
    case 'Q4_0': quantizeQ4_0(values, y); break;
    case 'Q4_1': quantizeQ4_1(values, y); break;
    case 'Q5_0': quantizeQ5_0(values, y); break;
    case 'Q5_1': quantizeQ5_1(values, y); break;
    case 'Q2_K': quantizeQ2_K(values, y); break;
    case 'Q3_K': quantizeQ3_K(values, y); break;
    case 'Q4_K': quantizeQ4_K(values, y); break;
    case 'Q5_K': quantizeQ5_K(values, y); break;
    case 'Q6_K': quantizeQ6_K(values, y); break;
  }
  return y;
}

/**
 * The K-quant -> 32-value type llama.cpp's tensor_type_fallback (src/llama-quant.cpp) takes for rows
 * that are not a multiple of 256 (e.g. Qwen2.5-0.5B's 896-wide rows).
 */
const K_QUANT_FALLBACK: Partial<Record<TensorType, TensorType>> = { Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };

/**
 * The type a row of `cols` values is stored as when `type` is asked for: `type` when the rows fit its
 * blocks, else llama.cpp's fallback, else F16 (rows not a multiple of 32: llama.cpp also takes F16 for
 * K-quants there; for a 32-value type it refuses, we store F16).
 */
export function fallbackType(type: TensorType, cols: number): TensorType {
  if (cols % TENSOR_FORMATS[type].blockSize === 0) return type;
  const next = K_QUANT_FALLBACK[type] ?? 'F16';
  return cols % TENSOR_FORMATS[next].blockSize === 0 ? next : 'F16';
}

function writeU16(y: Uint8Array, at: number, v: number): void {
  y[at] = v & 0xff;
  y[at + 1] = v >> 8;
}

/** ggml's nearest_int: round half to even through the float32 magic-number trick. */
function nearestInt(v: number): number {
  return fr(fr(v) + 12582912) - 12582912;
}

/** C roundf: half away from zero. */
function roundf(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

function quantizeQ8_0(x: Float32Array, y: Uint8Array): void {
  for (let o = 0, p = 0; o < x.length; o += 32, p += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    for (let j = 0; j < 32; j++) y[p + 2 + j] = roundf(fr(x[o + j]! * id)) & 0xff;
  }
}

function quantizeQ4_0(x: Float32Array, y: Uint8Array): void {
  for (let o = 0, p = 0; o < x.length; o += 32, p += 18) {
    const d = fr(signedAbsMax(x, o, 32) / -8);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(15, Math.trunc(fr(fr(x[o + j]! * id) + 8.5)));
      const xi1 = Math.min(15, Math.trunc(fr(fr(x[o + 16 + j]! * id) + 8.5)));
      y[p + 2 + j] = xi0 | (xi1 << 4);
    }
  }
}

/** min and max of x[o, o + n). */
function minMax(x: Float32Array, o: number, n: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[o + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Index of the value of largest magnitude in x[o, o + n) (the first on ties), as Q4_0/Q5_0 pick `max`. */
function signedAbsMax(x: Float32Array, o: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[o + j]!;
    if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
  }
  return max;
}

function writeU32(y: Uint8Array, at: number, v: number): void {
  y[at] = v & 0xff;
  y[at + 1] = (v >>> 8) & 0xff;
  y[at + 2] = (v >>> 16) & 0xff;
  y[at + 3] = v >>> 24;
}

// quantize_row_q4_1_ref: d = (max - min) / 15, m = min, q = trunc((x - min) / d + 0.5) capped at 15.
function quantizeQ4_1(x: Float32Array, y: Uint8Array): void {
  for (let o = 0, p = 0; o < x.length; o += 32, p += 20) {
    const [min, max] = minMax(x, o, 32);
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    writeU16(y, p + 2, f32ToF16(min));
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(15, Math.trunc(fr(fr(fr(x[o + j]! - min) * id) + 0.5)));
      const xi1 = Math.min(15, Math.trunc(fr(fr(fr(x[o + 16 + j]! - min) * id) + 0.5)));
      y[p + 4 + j] = xi0 | (xi1 << 4);
    }
  }
}

/** Q5_0/Q5_1's quants: low nibbles into `qs` (values j and j + 16 share byte j), fifth bits into the u32 at `qhAt`. */
function packQ5(q: Uint8Array, y: Uint8Array, qhAt: number, qs: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    y[qs + j] = (q[j]! & 0x0f) | ((q[j + 16]! & 0x0f) << 4);
    qh |= ((q[j]! >> 4) << j) | ((q[j + 16]! >> 4) << (j + 16));
  }
  writeU32(y, qhAt, qh >>> 0);
}

// quantize_row_q5_0_ref: d = max / -16 (max = the value of largest magnitude), q = trunc(x / d + 16.5) capped at 31.
function quantizeQ5_0(x: Float32Array, y: Uint8Array): void {
  const q = new Uint8Array(32);
  for (let o = 0, p = 0; o < x.length; o += 32, p += 22) {
    const d = fr(signedAbsMax(x, o, 32) / -16);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    for (let j = 0; j < 32; j++) q[j] = Math.min(31, Math.trunc(fr(fr(x[o + j]! * id) + 16.5)));
    packQ5(q, y, p + 2, p + 6);
  }
}

// quantize_row_q5_1_ref: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5).
function quantizeQ5_1(x: Float32Array, y: Uint8Array): void {
  const q = new Uint8Array(32);
  for (let o = 0, p = 0; o < x.length; o += 32, p += 24) {
    const [min, max] = minMax(x, o, 32);
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    writeU16(y, p + 2, f32ToF16(min));
    for (let j = 0; j < 32; j++) q[j] = Math.min(31, Math.trunc(fr(fr(fr(x[o + j]! - min) * id) + 0.5)));
    packQ5(q, y, p + 4, p + 8);
  }
}

/**
 * make_qkx2_quants: asymmetric (scale, min) fit of n values to 0..nmax, weighted least squares (or, with
 * useMad, weighted absolute error for the search). Returns [scale, theMin].
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number, laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number, useMad = false,
): [number, number] {
  const err = (diff: number): number => (useMad ? Math.abs(diff) : fr(diff * diff));
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]!);
    bestError = fr(bestError + fr(w[i]! * err(diff)));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
      laux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * laux[i]!) + thisMin) - x[xo + i]!);
        curError = fr(curError + fr(w[i]! * err(diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/**
 * The shared half of quantize_row_q4_K_ref / quantize_row_q5_K_ref for the super-block x[o, o + 256):
 * per 32-value sub-block an asymmetric fit to 0..nmax (make_qkx2_quants), the scales and mins packed as
 * 6-bit values against f16 d / dmin into y[p, p + 16), then every value requantized against those stored
 * scales into L (so the codes fit what dequantization will use).
 */
function quantizeKScalesMins(
  x: Float32Array, o: number, nmax: number, rmin: number, nstep: number, y: Uint8Array, p: number, L: Uint8Array,
): void {
  const laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[o + 32 * j + l]! * x[o + 32 * j + l]!));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[o + 32 * j + l]!));
    const [scale, min] = makeQkx2Quants(32, nmax, x, o + 32 * j, weights, L, 32 * j, laux, rmin, 0.1, nstep);
    scales[j] = scale;
    mins[j] = min;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const s = p + 4; // scales[12]
  y.fill(0, s, s + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      y[s + j] = ls;
      y[s + j + 4] = lm;
    } else {
      y[s + j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
      y[s + j - 4]! |= (ls >> 4) << 6;
      y[s + j]! |= (lm >> 4) << 6;
    }
  }
  const dBits = f32ToF16(fr(maxScale / 63));
  const dminBits = f32ToF16(fr(maxMin / 63));
  writeU16(y, p, dBits);
  writeU16(y, p + 2, dminBits);
  const d0 = f16ToF32(dBits);
  const dmin0 = f16ToF32(dminBits);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = j < 4
      ? [y[s + j]! & 63, y[s + j + 4]! & 63]
      : [(y[s + j + 4]! & 0x0f) | ((y[s + j - 4]! >> 6) << 4), (y[s + j + 4]! >> 4) | ((y[s + j]! >> 6) << 4)];
    const d = fr(d0 * sc);
    if (!d) continue;
    const dm = fr(dmin0 * m);
    for (let ii = 0; ii < 32; ii++) {
      L[32 * j + ii] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[o + 32 * j + ii]! + dm) / d))));
    }
  }
}

function quantizeQ4_K(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 144) {
    quantizeKScalesMins(x, o, 15, -1, 20, y, p, L);
    let q = p + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) y[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
      q += 32;
    }
  }
}

// quantize_row_q5_K_ref: Q4_K's scheme with 5-bit codes; the fifth bits go to qh[32] (bit 2c for value
// 64c + l, bit 2c + 1 for value 64c + 32 + l), the low nibbles to qs as in Q4_K.
function quantizeQ5_K(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 176) {
    quantizeKScalesMins(x, o, 31, -0.5, 15, y, p, L);
    const qh = p + 16;
    y.fill(0, qh, qh + 32);
    for (let c = 0; c < 4; c++) {
      const q = p + 48 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const l1 = L[64 * c + l]!, l2 = L[64 * c + 32 + l]!;
        y[q + l] = (l1 & 0x0f) | ((l2 & 0x0f) << 4);
        y[qh + l]! |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
      }
    }
  }
}

/** Packs 2-bit codes L[0, 256) as Q2_K/Q3_K store them: per 128 values, byte l holds values l, l+32, l+64, l+96. */
function pack2Bit(L: Uint8Array | Int8Array, y: Uint8Array, qs: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      y[qs + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

// quantize_row_q2_K_ref: per 16 values an asymmetric fit to 0..3 (make_qkx2_quants, |x| weights, absolute
// error); scales and mins as 4-bit values against f16 d / dmin; codes requantized against the stored scales.
function quantizeQ2_K(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  const laux = new Uint8Array(16);
  const weights = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 84) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[o + 16 * j + l]!);
      const [scale, min] = makeQkx2Quants(16, 3, x, o + 16 * j, weights, L, 16 * j, laux, -0.5, 0.1, 15, true);
      scales[j] = scale;
      mins[j] = min;
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    y.fill(0, p, p + 16);
    let dBits = 0;
    let dminBits = 0;
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) y[p + j] = nearestInt(fr(iscale * scales[j]!)) & 0xff;
      dBits = f32ToF16(fr(maxScale / 15));
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) y[p + j] = (y[p + j]! | (nearestInt(fr(iscale * mins[j]!)) << 4)) & 0xff;
      dminBits = f32ToF16(fr(maxMin / 15));
    }
    writeU16(y, p + 80, dBits);
    writeU16(y, p + 82, dminBits);
    const d0 = f16ToF32(dBits);
    const dmin0 = f16ToF32(dminBits);
    for (let j = 0; j < 16; j++) {
      const d = fr(d0 * (y[p + j]! & 0x0f));
      if (!d) continue;
      const dm = fr(dmin0 * (y[p + j]! >> 4));
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(0, Math.min(3, nearestInt(fr(fr(x[o + 16 * j + ii]! + dm) / d))));
      }
    }
    pack2Bit(L, y, p + 16);
  }
}

/**
 * make_q3_quants with do_rmse: symmetric fit of n values to -nmax..nmax-1 weighted by x^2, refined by
 * moving single codes while that improves the fit (up to 5 passes). Writes codes + nmax into L; returns the scale.
 */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) { amax = ax; max = x[xo + i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
    L[lo + i] = l;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const w = fr(v * v);
      const li = L[lo + i]!;
      let slx = fr(sumlx - fr(fr(w * v) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const newL = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(fr(v * sl2) / slx))));
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * v) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = L[lo + i]! + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

// quantize_row_q3_K_ref: per 16 values a symmetric fit to -4..3 (make_q3_quants); the 16 scales as 6-bit
// values (stored + 32) against f16 d, packed low nibbles in bytes 0-7 and top bit pairs in bytes 8-11;
// codes requantized against the stored scales; each code's third bit (code >= 4) goes to hmask.
function quantizeQ3_K(x: Float32Array, y: Uint8Array): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 110) {
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, x, o + 16 * j, L, 16 * j);
      if (Math.abs(scales[j]!) > amax) { amax = Math.abs(scales[j]!); maxScale = scales[j]!; }
    }
    const sc = p + 96;
    y.fill(0, sc, sc + 12);
    let dBits = 0;
    if (maxScale) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = Math.max(-32, Math.min(31, (nearestInt(fr(iscale * scales[j]!)) << 24) >> 24)) + 32;
        if (j < 8) y[sc + j] = l & 0x0f;
        else y[sc + j - 8]! |= (l & 0x0f) << 4;
        y[sc + 8 + (j & 3)]! |= (l >> 4) << (2 * (j >> 2));
      }
      dBits = f32ToF16(fr(1 / iscale));
    }
    writeU16(y, p + 108, dBits);
    const d0 = f16ToF32(dBits);
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? y[sc + j]! & 0x0f : y[sc + j - 8]! >> 4;
      const s = (low | (((y[sc + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3) << 4)) - 32;
      const d = fr(d0 * s);
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(-4, Math.min(3, nearestInt(fr(x[o + 16 * j + ii]! / d)))) + 4;
      }
    }
    y.fill(0, p, p + 32);
    for (let j = 0; j < QK_K; j++) {
      if (L[j]! > 3) {
        y[p + (j & 31)]! |= 1 << (j >> 5);
        L[j] = L[j]! - 4;
      }
    }
    pack2Bit(L, y, p + 32);
  }
}

/** make_qx_quants with rmse_type 1 and no importance weights: symmetric scale for n values in -nmax..nmax-1. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) { amax = ax; max = x[xo + i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
    L[lo + i] = l + nmax;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(0.1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xo + i]!))));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

function quantizeQ6_K(x: Float32Array, y: Uint8Array): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 210) {
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, o + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) { maxAbsScale = Math.abs(scale); maxScale = scale; }
    }
    y.fill(0, p, p + 210);
    if (maxAbsScale < GROUP_MAX_EPS) continue; // all-zero block: d = 0
    const iscale = fr(-128 / maxScale);
    const dBits = f32ToF16(fr(1 / iscale));
    writeU16(y, p + 208, dBits);
    const d0 = f16ToF32(dBits);
    const sc = p + 192;
    for (let ib = 0; ib < 16; ib++) y[sc + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const d = fr(d0 * ((y[sc + j]! << 24) >> 24));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(fr(x[o + 16 * j + ii]! / d)))) + 32;
      }
    }
    let ql = p, qh = p + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]! & 0xf, q2 = L[j + l + 32]! & 0xf, q3 = L[j + l + 64]! & 0xf, q4 = L[j + l + 96]! & 0xf;
        y[ql + l] = q1 | (q3 << 4);
        y[ql + l + 32] = q2 | (q4 << 4);
        y[qh + l] = (L[j + l]! >> 4) | ((L[j + l + 32]! >> 4) << 2) | ((L[j + l + 64]! >> 4) << 4) | ((L[j + l + 96]! >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
}
