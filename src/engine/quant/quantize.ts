// float32 -> stored bytes, ports of ggml's reference ("_ref") quantizers in ggml/src/ggml-quants.c:
// quantize_row_q8_0_ref, quantize_row_q4_0_ref, quantize_row_q4_K_ref (with make_qkx2_quants),
// quantize_row_q6_K_ref (with make_qx_quants), read from the copy vendored in ollama/ollama
// (ml/backend/ggml/ggml/src/ggml-quants.c). Arithmetic is rounded to float32 (Math.fround) step by step
// as the C code does, so Q8_0/Q4_0 match ggml byte for byte; the K-quants follow the same algorithm
// but a C compiler may fuse multiply-adds, so their bytes can differ from llama.cpp's in rare blocks.
// No importance matrix (imatrix) support: these are the plain reference quantizers.
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
    case 'Q4_K': quantizeQ4_K(values, y); break;
    case 'Q6_K': quantizeQ6_K(values, y); break;
  }
  return y;
}

/** The type a row of `cols` values falls back to when `type` cannot hold it (llama.cpp-style, see README). */
export function fallbackType(type: TensorType, cols: number): TensorType {
  if (cols % TENSOR_FORMATS[type].blockSize === 0) return type;
  // llama.cpp falls back Q4_K -> Q5_0 and Q6_K -> Q8_0; we have no Q5_0, so Q4_K takes Q4_0 (same 32-value blocks).
  const next: TensorType = type === 'Q4_K' ? 'Q4_0' : type === 'Q6_K' ? 'Q8_0' : 'F16';
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
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    writeU16(y, p, f32ToF16(d));
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(15, Math.trunc(fr(fr(x[o + j]! * id) + 8.5)));
      const xi1 = Math.min(15, Math.trunc(fr(fr(x[o + 16 + j]! * id) + 8.5)));
      y[p + 2 + j] = xi0 | (xi1 << 4);
    }
  }
}

/** make_qkx2_quants: asymmetric (scale, min) fit of n values to 0..nmax, weighted least squares. Returns [scale, theMin]. */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number, laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number,
): [number, number] {
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
    bestError = fr(bestError + fr(w[i]! * fr(diff * diff)));
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
        curError = fr(curError + fr(w[i]! * fr(diff * diff)));
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

function quantizeQ4_K(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  const laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  for (let o = 0, p = 0; o < x.length; o += QK_K, p += 144) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[o + 32 * j + l]! * x[o + 32 * j + l]!));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[o + 32 * j + l]!));
      const [scale, min] = makeQkx2Quants(32, 15, x, o + 32 * j, weights, L, 32 * j, laux, -1, 0.1, 20);
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
    // Requantize against the rounded (stored) scales so the codes fit what dequantization will use.
    for (let j = 0; j < 8; j++) {
      const [sc, m] = j < 4
        ? [y[s + j]! & 63, y[s + j + 4]! & 63]
        : [(y[s + j + 4]! & 0x0f) | ((y[s + j - 4]! >> 6) << 4), (y[s + j + 4]! >> 4) | ((y[s + j]! >> 6) << 4)];
      const d = fr(d0 * sc);
      if (!d) continue;
      const dm = fr(dmin0 * m);
      for (let ii = 0; ii < 32; ii++) {
        L[32 * j + ii] = Math.max(0, Math.min(15, nearestInt(fr(fr(x[o + 32 * j + ii]! + dm) / d))));
      }
    }
    let q = p + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) y[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
      q += 32;
    }
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
