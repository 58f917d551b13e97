// Quantization: F16/BF16 conversions, quantize -> dequantize error bounds per type on seeded random data,
// llama.cpp's own error thresholds, hand-built blocks of every block type decoded by the ggml layout, Q8_0 against the shared story_llama_q8_0.gguf,
// and the GGUF writer reproducing the shared files byte for byte.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { modelPath } from './support/paths';
import { FileByteSource } from '../src/node/fileByteSource';
import { parseGguf } from '../src/engine/model/gguf';
import { loadModel } from '../src/engine/model/loadModel';
import { MemoryByteSource } from '../src/engine/io/byteSource';
import { encodeGguf, inferType } from '../src/engine/quant/ggufWriter';
import { ValueType } from '../src/engine/model/gguf';
import { quantize, fallbackType } from '../src/engine/quant/quantize';
import { dequantize } from '../src/engine/quant/dequantize';
import { planQuantization, quantizedGguf } from '../src/engine/quant/quantizeModel';
import { bytesForRow, TENSOR_FORMATS, TENSOR_TYPES } from '../src/engine/quant/formats';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from '../src/engine/quant/half';
import type { TensorType } from '../src/engine/model/types';

const sources: FileByteSource[] = [];
async function openSource(name: string): Promise<FileByteSource> {
  const s = await FileByteSource.open(modelPath(name));
  sources.push(s);
  return s;
}
after(async () => { await Promise.all(sources.splice(0).map((s) => s.close())); });

/** mulberry32: a seeded PRNG so every run sees the same data. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomData(kind: 'gauss' | 'uniform' | 'offset', n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = kind === 'gauss' ? Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()) * 0.02
      : kind === 'uniform' ? r() * 2 - 1 : 0.5 + r();
  }
  return x;
}

function relRms(x: Float32Array, y: Float32Array): number {
  let se = 0, sx = 0;
  for (let i = 0; i < x.length; i++) { se += (x[i]! - y[i]!) ** 2; sx += x[i]! ** 2; }
  return Math.sqrt(se / sx);
}

test('F16: every half value round-trips; F32 -> F16 picks the nearest half (ties to even)', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(v))));
    else assert.equal(f32ToF16(v), h, `half 0x${h.toString(16)}`);
  }
  const r = rng(1);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((r() - 0.5) * 2 ** Math.floor(r() * 40 - 28));
    const h = f32ToF16(x);
    const got = f16ToF32(h);
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || n < 0 || ((n ^ h) & 0x8000)) continue;
      const other = f16ToF32(n);
      assert.ok(Math.abs(got - x) <= Math.abs(other - x), `${x}: ${got} is not nearer than ${other}`);
      if (Math.abs(got - x) === Math.abs(other - x)) assert.equal(h & 1, 0, 'tie goes to even');
    }
  }
  assert.equal(f32ToF16(65520), 0x7c00, 'rounds to infinity past the largest half');
  assert.equal(f32ToF16(2 ** -25), 0, 'half of the smallest subnormal ties to zero');
  assert.equal(f32ToF16(2 ** -25 * 1.5), 1);
});

test('BF16: round to nearest even, values exact when representable', () => {
  for (let b = 0; b < 65536; b++) {
    const v = bf16ToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToBf16(v), b);
  }
  assert.equal(f32ToBf16(1 + 2 ** -8), f32ToBf16(1), 'tie to even (down)');
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), f32ToBf16(1 + 2 ** -6), 'tie to even (up)');
});

test('quantize -> dequantize error within per-type bounds on seeded random data (rows of 256)', () => {
  // Per-value bounds (f16 rounding of a stored scale or min is at most 2^-11 of it):
  //   F16 |e| <= |x| 2^-11 + 2^-25 (subnormals), BF16 |e| <= |x| 2^-8 (round to nearest);
  //   Q8_0 |e| <= d (1/2 + 127 2^-11), d = amax/127; Q4_0 |e| <= |d| (1 + 8 2^-11), d = max/-8 (the far end clamps
  //   at +7); Q5_0 the same with 16; Q4_1 |e| <= d (1/2 + 15 2^-11) + |min| 2^-11, d = (max - min)/15; Q5_1 with 31.
  // K-quants (scales fitted by search): relative RMS error below the stated values, about 5% over the measured ones
  // (Q2_K .296/.235/.115, Q3_K .149/.127/.094, Q4_K .071/.056/.024, Q5_K .036/.028/.012, Q6_K .018/.013/.011),
  // and for the 32-value types too (Q4_1 .077/.061/.017, Q5_0 .042/.032/.025, Q5_1 .038/.030/.008).
  const rmsBound: Partial<Record<TensorType, Record<string, number>>> = {
    Q4_1: { gauss: 0.081, uniform: 0.064, offset: 0.018 },
    Q5_0: { gauss: 0.044, uniform: 0.034, offset: 0.027 },
    Q5_1: { gauss: 0.04, uniform: 0.032, offset: 0.0086 },
    Q2_K: { gauss: 0.31, uniform: 0.245, offset: 0.12 },
    Q3_K: { gauss: 0.156, uniform: 0.133, offset: 0.098 },
    Q4_K: { gauss: 0.075, uniform: 0.06, offset: 0.03 },
    Q5_K: { gauss: 0.038, uniform: 0.03, offset: 0.0126 },
    Q6_K: { gauss: 0.02, uniform: 0.015, offset: 0.012 },
  };
  const perValue = (type: TensorType, v: number, block: Float32Array): number => {
    let amax = 0, max = 0, lo = Infinity, hi = -Infinity;
    for (const b of block) {
      if (Math.abs(b) > amax) { amax = Math.abs(b); max = b; }
      lo = Math.min(lo, b); hi = Math.max(hi, b);
    }
    const slack = 1 + 1e-6;
    switch (type) {
      case 'F16': return v * 2 ** -11 + 2 ** -25;
      case 'BF16': return v * 2 ** -8;
      case 'Q8_0': return (amax / 127) * (0.5 + 127 / 2048) * slack;
      case 'Q4_0': return (Math.abs(max) / 8) * (1 + 8 / 2048) * slack;
      case 'Q5_0': return (Math.abs(max) / 16) * (1 + 16 / 2048) * slack;
      case 'Q4_1': return (((hi - lo) / 15) * (0.5 + 15 / 2048) + Math.abs(lo) / 2048) * slack;
      case 'Q5_1': return (((hi - lo) / 31) * (0.5 + 31 / 2048) + Math.abs(lo) / 2048) * slack;
      default: return Infinity;
    }
  };
  for (const kind of ['gauss', 'uniform', 'offset'] as const) {
    const x = randomData(kind, 256 * 24, kind.length);
    const errors: Partial<Record<TensorType, number>> = {};
    for (const type of TENSOR_TYPES.filter((t) => t !== 'F32')) {
      const q = quantize(type, x);
      assert.equal(q.byteLength, bytesForRow(type, 256) * 24, `${type} size`);
      const y = dequantize(type, q, x.length);
      errors[type] = relRms(x, y);
      const block = TENSOR_FORMATS[type].blockSize;
      for (let b = 0; b < x.length; b += block) {
        const values = x.subarray(b, b + block);
        for (let j = 0; j < block; j++) {
          const e = Math.abs(x[b + j]! - y[b + j]!);
          const bound = perValue(type, Math.abs(x[b + j]!), values);
          assert.ok(e <= bound, `${kind} ${type}[${b + j}]: ${y[b + j]} vs ${x[b + j]}, error ${e} > ${bound}`);
        }
      }
      const limit = rmsBound[type]?.[kind];
      if (limit !== undefined) assert.ok(errors[type]! < limit, `${kind} ${type}: relative RMS ${errors[type]} >= ${limit}`);
    }
    const e = errors as Record<TensorType, number>;
    assert.ok(e.Q6_K < e.Q5_K && e.Q5_K < e.Q4_K && e.Q4_K < e.Q3_K && e.Q3_K < e.Q2_K, `${kind}: Q6_K < Q5_K < Q4_K < Q3_K < Q2_K in error ${JSON.stringify(errors)}`);
    assert.ok(e.Q4_K < e.Q4_0 && e.Q5_0 < e.Q4_0 && e.Q5_1 < e.Q4_1 && e.Q8_0 < e.Q5_0, `${kind}: more bits, less error ${JSON.stringify(errors)}`);
  }
});

test("llama.cpp's own quantization error test (test-quantize-fns): every type under its threshold", (ctx) => {
  // tests/test-quantize-fns.cpp: data 0.1 + 2 cos(i) over 4096 values, error sqrt(sum (x - y)^2) / n, thresholds
  // MAX_QUANTIZATION_TOTAL_ERROR 0.002, _2BITS 0.0075 (Q2_K), _3BITS 0.004 (Q3_K).
  const n = 4096;
  const x = Float32Array.from({ length: n }, (_, i) => 0.1 + 2 * Math.fround(Math.cos(i)));
  const figures: string[] = [];
  for (const type of TENSOR_TYPES.filter((t) => TENSOR_FORMATS[t].blockSize > 1)) {
    const y = dequantize(type, quantize(type, x), n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (x[i]! - y[i]!) ** 2;
    const error = Math.sqrt(sum) / n;
    const limit = type === 'Q2_K' ? 0.0075 : type === 'Q3_K' ? 0.004 : 0.002;
    figures.push(`${type} ${error.toFixed(6)}`);
    assert.ok(error < limit, `${type}: ${error} >= ${limit}`);
  }
  ctx.diagnostic(figures.join(', '));
});

test('all-zero and constant blocks quantize without NaN', () => {
  for (const type of TENSOR_TYPES.filter((t) => TENSOR_FORMATS[t].blockSize > 1)) {
    for (const fill of [0, 0.25, -3]) {
      const x = new Float32Array(256).fill(fill);
      const y = dequantize(type, quantize(type, x), 256);
      for (let i = 0; i < 256; i++) assert.ok(Math.abs(y[i]! - fill) <= Math.abs(fill) * 0.07, `${type} fill ${fill}: ${y[i]}`);
    }
  }
});

/**
 * The 12 scale bytes of block_q4_K / block_q5_K at `at`: sub-blocks 0-3 scale/min in the low 6 bits of bytes 0-3 / 4-7;
 * sub-blocks 4-7 low 4 bits in the nibbles of bytes 8-11, high 2 bits in the top bits of bytes 0-3 / 4-7.
 */
function packScalesMinsK4(block: Uint8Array, at: number, sc: number[], mn: number[]): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) { block[at + j] = sc[j]!; block[at + 4 + j] = mn[j]!; }
    else {
      block[at + j + 4] = (sc[j]! & 15) | ((mn[j]! & 15) << 4);
      block[at + j - 4]! |= (sc[j]! >> 4) << 6;
      block[at + j]! |= (mn[j]! >> 4) << 6;
    }
  }
}

function setHalf(block: Uint8Array, at: number, v: number): void {
  new DataView(block.buffer, block.byteOffset).setUint16(at, f32ToF16(v), true);
}

test('Q4_K and Q6_K blocks built by hand from the ggml struct layout decode to the intended values', () => {
  // block_q4_K: d, dmin (f16), scales[12] (packScalesMinsK4), qs[128]: 32 bytes per pair of sub-blocks, low
  // nibbles the even sub-block, high nibbles the odd one.
  const q4 = new Uint8Array(144);
  setHalf(q4, 0, 0.5);
  setHalf(q4, 2, 0.25);
  const sc = [1, 5, 17, 33, 40, 47, 60, 63];
  const mn = [0, 2, 9, 31, 36, 50, 61, 63];
  packScalesMinsK4(q4, 4, sc, mn);
  const code = (i: number) => (i * 7 + 3) % 16;
  for (let i = 0; i < 256; i++) {
    const j = i >> 5, l = i & 31, byte = 16 + 32 * (j >> 1) + l;
    q4[byte]! |= j & 1 ? code(i) << 4 : code(i);
  }
  const y4 = dequantize('Q4_K', q4, 256);
  for (let i = 0; i < 256; i++) assert.equal(y4[i], 0.5 * sc[i >> 5]! * code(i) - 0.25 * mn[i >> 5]!, `Q4_K[${i}]`);

  // block_q6_K: ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8 (one per 16 values), d f16.
  // Per 128 values: ql[0..31] low/high nibbles -> values 0..31 / 64..95, ql[32..63] -> 32..63 / 96..127;
  // qh[l] bits 0-1, 2-3, 4-5, 6-7 -> values l, l+32, l+64, l+96. Stored codes are q + 32.
  const q6 = new Uint8Array(210);
  new DataView(q6.buffer).setUint16(208, f32ToF16(0.125), true);
  const s6 = Array.from({ length: 16 }, (_, k) => (k % 2 ? -1 : 1) * (k * 8 + 1));
  s6.forEach((s, k) => { q6[192 + k] = s & 0xff; });
  const code6 = (i: number) => (i * 13 + 5) % 64;
  for (let i = 0; i < 256; i++) {
    const half = i >> 7, r = i & 127, group = r >> 5, l = r & 31;
    const lowByte = 64 * half + l + (group & 1 ? 32 : 0);
    q6[lowByte]! |= group < 2 ? code6(i) & 15 : (code6(i) & 15) << 4;
    q6[128 + 32 * half + l]! |= (code6(i) >> 4) << (2 * group);
  }
  const y6 = dequantize('Q6_K', q6, 256);
  for (let i = 0; i < 256; i++) assert.equal(y6[i], 0.125 * s6[i >> 4]! * (code6(i) - 32), `Q6_K[${i}]`);
});

test('Q4_1, Q5_0, Q5_1, Q2_K, Q3_K and Q5_K blocks built by hand from the ggml struct layout decode to the intended values', () => {
  const check = (type: TensorType, block: Uint8Array, n: number, expected: (i: number) => number): void => {
    assert.equal(block.byteLength, TENSOR_FORMATS[type].bytesPerBlock, `${type} block size`);
    const y = dequantize(type, block, n);
    for (let i = 0; i < n; i++) assert.equal(y[i], Math.fround(expected(i)), `${type}[${i}]`);
  };
  // 32-value blocks: value i < 16 in the low nibble of qs[i], value i >= 16 in the high nibble of qs[i - 16];
  // Q5's fifth bit of value i is bit i of the little-endian u32 qh.
  const nibbles = (block: Uint8Array, qs: number, code: (i: number) => number): void => {
    for (let i = 0; i < 32; i++) block[qs + (i & 15)]! |= i < 16 ? code(i) & 15 : (code(i) & 15) << 4;
  };
  const fifthBits = (block: Uint8Array, qh: number, code: (i: number) => number): void => {
    let bits = 0;
    for (let i = 0; i < 32; i++) bits |= (code(i) >> 4) << i;
    new DataView(block.buffer, block.byteOffset).setUint32(qh, bits >>> 0, true);
  };

  // block_q4_1 { half d; half m; uint8 qs[16] }: y = d q + m.
  const c4 = (i: number) => (i * 5 + 3) % 16;
  const q41 = new Uint8Array(20);
  setHalf(q41, 0, 0.5); setHalf(q41, 2, -1.25);
  nibbles(q41, 4, c4);
  check('Q4_1', q41, 32, (i) => 0.5 * c4(i) - 1.25);

  // block_q5_0 { half d; uint8 qh[4]; uint8 qs[16] }: y = d (q - 16).
  const c5 = (i: number) => (i * 7 + 1) % 32;
  const q50 = new Uint8Array(22);
  setHalf(q50, 0, 0.25);
  fifthBits(q50, 2, c5);
  nibbles(q50, 6, c5);
  check('Q5_0', q50, 32, (i) => 0.25 * (c5(i) - 16));

  // block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16] }: y = d q + m.
  const q51 = new Uint8Array(24);
  setHalf(q51, 0, 0.125); setHalf(q51, 2, 0.5);
  fifthBits(q51, 4, c5);
  nibbles(q51, 8, c5);
  check('Q5_1', q51, 32, (i) => 0.125 * c5(i) + 0.5);

  // K-quants' 2-bit fields (Q2_K qs, Q3_K low bits): per 128 values 32 bytes; value i in bits 2g..2g+1 of byte l,
  // g = (i % 128) / 32, l = i % 32.
  const twoBits = (block: Uint8Array, qs: number, code: (i: number) => number): void => {
    for (let i = 0; i < 256; i++) block[qs + 32 * (i >> 7) + (i & 31)]! |= (code(i) & 3) << (2 * ((i & 127) >> 5));
  };

  // block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin }: scales[k] = scale | min << 4 for values
  // 16k..16k+15; y = d scale q - dmin min.
  const s2 = Array.from({ length: 16 }, (_, k) => (k * 3 + 1) % 16);
  const m2 = Array.from({ length: 16 }, (_, k) => (k * 5 + 2) % 16);
  const c2 = (i: number) => (i * 3 + 1) % 4;
  const q2 = new Uint8Array(84);
  s2.forEach((v, k) => { q2[k] = v | (m2[k]! << 4); });
  twoBits(q2, 16, c2);
  setHalf(q2, 80, 0.5); setHalf(q2, 82, 0.25);
  check('Q2_K', q2, 256, (i) => 0.5 * s2[i >> 4]! * c2(i) - 0.25 * m2[i >> 4]!);

  // block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d }: q = low 2 bits - (hmask bit ? 0 : 4)
  // with value i's hmask bit = bit i / 32 of hmask[i % 32]; 6-bit scale k (stored + 32): low 4 bits in the low
  // (k < 8) or high (k >= 8) nibble of scales[k % 8], top 2 bits at bit 2 (k / 4) of scales[8 + k % 4].
  const s3 = Array.from({ length: 16 }, (_, k) => (k * 23 + 5) % 64);
  const c3 = (i: number) => ((i * 5 + 2) % 8) - 4;
  const q3 = new Uint8Array(110);
  for (let i = 0; i < 256; i++) if (c3(i) >= 0) q3[i & 31]! |= 1 << (i >> 5);
  twoBits(q3, 32, (i) => (c3(i) + 4) & 3);
  s3.forEach((v, k) => {
    q3[96 + (k & 7)]! |= k < 8 ? v & 15 : (v & 15) << 4;
    q3[96 + 8 + (k & 3)]! |= (v >> 4) << (2 * (k >> 2));
  });
  setHalf(q3, 108, 0.125);
  check('Q3_K', q3, 256, (i) => 0.125 * (s3[i >> 4]! - 32) * c3(i));

  // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] }: Q4_K's scales and nibbles,
  // value i's fifth bit = bit i / 32 of qh[i % 32].
  const sc5 = [63, 2, 11, 30, 33, 48, 59, 7];
  const mn5 = [5, 63, 0, 17, 40, 22, 61, 34];
  const q5k = new Uint8Array(176);
  setHalf(q5k, 0, 0.5); setHalf(q5k, 2, 0.25);
  packScalesMinsK4(q5k, 4, sc5, mn5);
  for (let i = 0; i < 256; i++) {
    q5k[16 + (i & 31)]! |= (c5(i) >> 4) << (i >> 5);
    q5k[48 + 32 * (i >> 6) + (i & 31)]! |= (i & 63) < 32 ? c5(i) & 15 : (c5(i) & 15) << 4;
  }
  check('Q5_K', q5k, 256, (i) => 0.5 * sc5[i >> 5]! * c5(i) - 0.25 * mn5[i >> 5]!);
});

test('Q8_0 quantizer reproduces story_llama_q8_0.gguf from story_llama_f32.gguf, except exact .5 ties', async (ctx) => {
  // Every scale matches. ggml's quantize_row_q8_0_ref rounds x*id with roundf (half away from zero); the
  // shared file's converter rounded exact ties (x*id == k + 0.5 in float32) to even. Anything else must match.
  const f32 = await openSource('story_llama_f32.gguf');
  const q8 = await openSource('story_llama_q8_0.gguf');
  const hf = await parseGguf(f32);
  const hq = await parseGguf(q8);
  let blocks = 0, ties = 0, identical = 0;
  for (const t of hq.tensors) {
    const src = hf.tensors.find((s) => s.name === t.name)!;
    const x = dequantize(src.type, await f32.read(src.offset, src.byteLength), src.shape.reduce((a, b) => a * b, 1));
    const theirs = await q8.read(t.offset, t.byteLength);
    const mine = quantize(t.type, x);
    identical++;
    if (t.type !== 'Q8_0') { assert.deepEqual(mine, theirs, t.name); continue; }
    for (let b = 0, p = 0; b < x.length; b += 32, p += 34, blocks++) {
      assert.equal(mine[p], theirs[p], `${t.name} block ${b / 32} scale`);
      assert.equal(mine[p + 1], theirs[p + 1], `${t.name} block ${b / 32} scale`);
      const d = f16ToF32(mine[p]! | (mine[p + 1]! << 8));
      for (let j = 0; j < 32; j++) {
        if (mine[p + 2 + j] === theirs[p + 2 + j]) continue;
        let amax = 0;
        for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(x[b + k]!));
        const scaled = Math.fround(x[b + j]! * Math.fround(1 / Math.fround(amax / 127)));
        const m = (mine[p + 2 + j]! << 24) >> 24, o = (theirs[p + 2 + j]! << 24) >> 24;
        assert.equal(Math.abs(scaled % 1), 0.5, `${t.name}[${b + j}]: ${m} vs ${o} is not at a tie (x*id = ${scaled}, d ${d})`);
        assert.equal(m, scaled < 0 ? Math.floor(scaled) : Math.ceil(scaled), 'ours: away from zero');
        assert.equal(Math.abs(o % 2), 0, 'theirs: to even');
        ties++;
      }
    }
  }
  const q8Values = hq.tensors.filter((t) => t.type === 'Q8_0').reduce((n, t) => n + t.shape[0]! * t.shape[1]!, 0);
  assert.equal(blocks * 32, q8Values, 'every Q8_0 block compared');
  assert.equal(identical, hq.tensors.length);
  ctx.diagnostic(`${ties} exact ties of ${blocks * 32} values differ (rounded half away from zero, as ggml does)`);
  assert.ok(ties < blocks * 32 * 0.005, `${ties} ties among ${blocks * 32} values`);
});

test('the GGUF writer reproduces each shared GGUF byte for byte from its parsed header and tensors', async () => {
  for (const name of ['stories260K.gguf', 'story_llama_f32.gguf', 'story_llama_q8_0.gguf', 'story_qwen2.gguf']) {
    const s = await openSource(name);
    const h = await parseGguf(s);
    const out = await encodeGguf({
      metadata: h.metadata, metadataTypes: h.metadataTypes, alignment: h.alignment,
      tensors: h.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => s.read(t.offset, t.byteLength) })),
    });
    assert.ok(Buffer.from(out).equals(readFileSync(modelPath(name))), `${name} rewritten identically`);
  }
});

test('a model quantized in memory re-loads with the same config and the quantized bytes', async () => {
  const s = await openSource('story_llama_f32.gguf');
  const h = await parseGguf(s);
  const original = await loadModel(s);
  for (const target of ['Q4_0', 'Q6_K', 'BF16'] as const) {
    const { spec, plan } = quantizedGguf(s, h, target);
    const bytes = await encodeGguf(spec);
    const m = await loadModel(new MemoryByteSource(`story_${target}.gguf`, bytes));
    assert.deepEqual(m.config, original.config);
    assert.equal(m.metadata['general.file_type'], { Q4_0: 2, Q6_K: 18, BF16: 32 }[target]);
    for (const p of plan) {
      const t = m.weights.tensors.get(p.name)!;
      assert.equal(t.type, p.to);
      const src = h.tensors.find((x) => x.name === p.name)!;
      const n = src.shape.reduce((a, b) => a * b, 1);
      const expected = p.to === src.type ? await s.read(src.offset, src.byteLength) : quantize(p.to, dequantize(src.type, await s.read(src.offset, src.byteLength), n));
      assert.deepEqual(await m.weights.read(p.name), expected, p.name);
    }
  }
});

test("K-quant fallback: rows that are not a multiple of 256 take llama.cpp's 32-value types, 1-D tensors stay as stored", () => {
  // llama.cpp src/llama-quant.cpp tensor_type_fallback: Q2_K, Q3_K -> Q4_0; Q4_K -> Q5_0; Q5_K -> Q5_1; Q6_K -> Q8_0;
  // F16 where even 32 does not divide the row.
  assert.equal(fallbackType('Q4_K', 256), 'Q4_K');
  assert.equal(fallbackType('Q4_K', 896), 'Q5_0', 'Qwen2.5-0.5B rows');
  assert.equal(fallbackType('Q5_K', 896), 'Q5_1');
  assert.equal(fallbackType('Q6_K', 384), 'Q8_0');
  assert.equal(fallbackType('Q3_K', 128), 'Q4_0');
  assert.equal(fallbackType('Q2_K', 4864 + 32), 'Q4_0');
  assert.equal(fallbackType('Q4_K', 172), 'F16');
  assert.equal(fallbackType('Q5_1', 64), 'Q5_1');
  assert.equal(fallbackType('Q8_0', 100), 'F16');
  const t = (name: string, shape: number[]) => ({ name, type: 'F32' as const, shape, offset: 0, byteLength: 0 });
  const plan = planQuantization([t('a.weight', [256, 8]), t('b.weight', [128, 8]), t('norm.weight', [128]), t('c.weight', [512, 1])], 'Q4_K');
  assert.deepEqual(plan.map((p) => [p.to, p.fallbackFrom]), [['Q4_K', undefined], ['Q5_0', 'Q4_K'], ['F32', undefined], ['F32', undefined]]);
});

test('writer type inference: llama.cpp float keys stay f32 even when whole numbers', () => {
  assert.deepEqual(inferType('llama.rope.freq_base', 10000), { type: ValueType.F32 });
  assert.deepEqual(inferType('qwen2.attention.layer_norm_rms_epsilon', 1e-6), { type: ValueType.F32 });
  assert.deepEqual(inferType('llama.block_count', 2), { type: ValueType.U32 });
  assert.deepEqual(inferType('x.offset', -3), { type: ValueType.I32 });
  assert.deepEqual(inferType('tokenizer.ggml.tokens', ['a', 'b']), { type: ValueType.ARRAY, itemType: ValueType.STRING });
  assert.deepEqual(inferType('tokenizer.ggml.scores', [0.5, -1]), { type: ValueType.ARRAY, itemType: ValueType.F32 });
});
