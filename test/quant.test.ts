// Quantization: F16/BF16 conversions, quantize -> dequantize error bounds per type on seeded random data,
// hand-built K-quant blocks decoded by the ggml layout, Q8_0 against the shared story_llama_q8_0.gguf,
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
import { bytesForRow, TENSOR_FORMATS } from '../src/engine/quant/formats';
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
  // Bounds: F16 |e| <= |x| 2^-11 + 2^-25 (subnormals), BF16 |e| <= |x| 2^-8 (round to nearest); Q8_0 per block |e| <= d (1/2 + 127 2^-11),
  // d = amax/127; Q4_0 per block |e| <= |d| (1 + 8 2^-11), d = max/-8 (the far end clamps at +7);
  // Q4_K / Q6_K: relative RMS error below the stated values (measured 0.071/0.054/0.024 and 0.018/0.013/0.011).
  const rmsBound: Partial<Record<TensorType, Record<string, number>>> = {
    Q4_K: { gauss: 0.075, uniform: 0.06, offset: 0.03 },
    Q6_K: { gauss: 0.02, uniform: 0.015, offset: 0.012 },
  };
  for (const kind of ['gauss', 'uniform', 'offset'] as const) {
    const x = randomData(kind, 256 * 24, kind.length);
    const errors: Partial<Record<TensorType, number>> = {};
    for (const type of ['F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K'] as const) {
      const q = quantize(type, x);
      assert.equal(q.byteLength, bytesForRow(type, 256) * 24, `${type} size`);
      const y = dequantize(type, q, x.length);
      errors[type] = relRms(x, y);
      const block = TENSOR_FORMATS[type].blockSize;
      for (let b = 0; b < x.length; b += block) {
        let amax = 0, max = 0;
        for (let j = 0; j < block; j++) if (Math.abs(x[b + j]!) > amax) { amax = Math.abs(x[b + j]!); max = x[b + j]!; }
        for (let j = 0; j < block; j++) {
          const e = Math.abs(x[b + j]! - y[b + j]!);
          const v = Math.abs(x[b + j]!);
          const bound = type === 'F16' ? v * 2 ** -11 + 2 ** -25 : type === 'BF16' ? v * 2 ** -8
            : type === 'Q8_0' ? (amax / 127) * (0.5 + 127 / 2048) * (1 + 1e-6)
            : type === 'Q4_0' ? (Math.abs(max) / 8) * (1 + 8 / 2048) * (1 + 1e-6) : Infinity;
          assert.ok(e <= bound, `${kind} ${type}[${b + j}]: ${y[b + j]} vs ${x[b + j]}, error ${e} > ${bound}`);
        }
      }
      const limit = rmsBound[type]?.[kind];
      if (limit !== undefined) assert.ok(errors[type]! < limit, `${kind} ${type}: relative RMS ${errors[type]} >= ${limit}`);
    }
    assert.ok(errors.Q6_K! < errors.Q4_K! && errors.Q4_K! < errors.Q4_0!, `${kind}: Q6_K < Q4_K < Q4_0 in error ${JSON.stringify(errors)}`);
  }
});

test('all-zero and constant blocks quantize without NaN', () => {
  for (const type of ['Q8_0', 'Q4_0', 'Q4_K', 'Q6_K'] as const) {
    for (const fill of [0, 0.25, -3]) {
      const x = new Float32Array(256).fill(fill);
      const y = dequantize(type, quantize(type, x), 256);
      for (let i = 0; i < 256; i++) assert.ok(Math.abs(y[i]! - fill) <= Math.abs(fill) * 0.07, `${type} fill ${fill}: ${y[i]}`);
    }
  }
});

test('Q4_K and Q6_K blocks built by hand from the ggml struct layout decode to the intended values', () => {
  // block_q4_K: d, dmin (f16), scales[12]: sub-blocks 0-3 scale/min in the low 6 bits of bytes 0-3 / 4-7;
  // sub-blocks 4-7 low 4 bits in the nibbles of bytes 8-11, high 2 bits in the top bits of bytes 0-3 / 4-7.
  // qs[128]: 32 bytes per pair of sub-blocks, low nibbles the even sub-block, high nibbles the odd one.
  const q4 = new Uint8Array(144);
  const dv = new DataView(q4.buffer);
  dv.setUint16(0, f32ToF16(0.5), true);
  dv.setUint16(2, f32ToF16(0.25), true);
  const sc = [1, 5, 17, 33, 40, 47, 60, 63];
  const mn = [0, 2, 9, 31, 36, 50, 61, 63];
  for (let j = 0; j < 8; j++) {
    if (j < 4) { q4[4 + j] = sc[j]!; q4[8 + j] = mn[j]!; }
    else {
      q4[4 + j + 4] = (sc[j]! & 15) | ((mn[j]! & 15) << 4);
      q4[4 + j - 4]! |= (sc[j]! >> 4) << 6;
      q4[4 + j]! |= (mn[j]! >> 4) << 6;
    }
  }
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

test('K-quant fallback: rows that are not a multiple of 256 take Q4_0 / Q8_0, 1-D tensors stay as stored', () => {
  assert.equal(fallbackType('Q4_K', 256), 'Q4_K');
  assert.equal(fallbackType('Q4_K', 128), 'Q4_0');
  assert.equal(fallbackType('Q6_K', 384), 'Q8_0');
  assert.equal(fallbackType('Q8_0', 100), 'F16');
  const t = (name: string, shape: number[]) => ({ name, type: 'F32' as const, shape, offset: 0, byteLength: 0 });
  const plan = planQuantization([t('a.weight', [256, 8]), t('b.weight', [128, 8]), t('norm.weight', [128]), t('c.weight', [512, 1])], 'Q4_K');
  assert.deepEqual(plan.map((p) => [p.to, p.fallbackFrom]), [['Q4_K', undefined], ['Q4_0', 'Q4_K'], ['F32', undefined], ['F32', undefined]]);
});

test('writer type inference: llama.cpp float keys stay f32 even when whole numbers', () => {
  assert.deepEqual(inferType('llama.rope.freq_base', 10000), { type: ValueType.F32 });
  assert.deepEqual(inferType('qwen2.attention.layer_norm_rms_epsilon', 1e-6), { type: ValueType.F32 });
  assert.deepEqual(inferType('llama.block_count', 2), { type: ValueType.U32 });
  assert.deepEqual(inferType('x.offset', -3), { type: ValueType.I32 });
  assert.deepEqual(inferType('tokenizer.ggml.tokens', ['a', 'b']), { type: ValueType.ARRAY, itemType: ValueType.STRING });
  assert.deepEqual(inferType('tokenizer.ggml.scores', [0.5, -1]), { type: ValueType.ARRAY, itemType: ValueType.F32 });
});
