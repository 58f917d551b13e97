// The `cpu` backend's WebAssembly kernels against the JS reference (`cpu-ref`), on every weight type, with sizes
// that leave tails (blocks per row odd, float rows not a multiple of the SIMD width, weight rows not divisible by
// the thread count) and split over several threads against one.
//
// Bound: the kernels quantize each activation block to 8 bits (round(x / d), d = max|x| / 127 per block), so an
// element moves by at most d / 2 and a product by at most Σ_blocks d_b / 2 · Σ_{i in b} |w_i|, computed here per
// output from the dequantized weights, plus f32 summation slack (1e-5 · Σ |w_i x_i|). Float weights take f32
// activations: slack only. A broken block layout, a dropped tail block or a row no thread computed all land far
// outside it (random data: one block's share of a product is several times its bound).
//
// The kernels come in two builds, relaxed SIMD (8-bit activations, the 8-bit dot product) and SIMD128 alone (16-bit
// activations); every test here runs the relaxed one (the product's default where it runs), and one test requires
// the two to agree bit for bit on every quantized type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { WasmBackend } from '../src/engine/backend/wasm/wasmBackend';
import type { TensorInfo, TensorType } from '../src/engine/model/types';
import { createRandom } from '../src/engine/runtime/random';
import { dequantize } from '../src/engine/quant/dequantize';
import { quantize } from '../src/engine/quant/quantize';
import { bytesFor, TENSOR_FORMATS, TENSOR_TYPES } from '../src/engine/quant/formats';
import { spawnKernelWorker } from '../src/node/cpuKernelWorkers';
import { relaxedKernelsBuilt } from '../src/engine/backend/wasm/cpuKernels';
import { enableRelaxedSimd } from '../src/node/relaxedSimd';

enableRelaxedSimd();

const rand = createRandom(4321);
const randn = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

/** Row length for `type`: an odd number of blocks, or for floats a length that is not a multiple of 8. */
function colsFor(type: TensorType): number {
  const b = TENSOR_FORMATS[type].blockSize;
  return b === 1 ? 77 : b * (b === 256 ? 3 : 7);
}

function info(name: string, type: TensorType, cols: number, rows: number): TensorInfo {
  return { name, type, shape: rows === 1 ? [cols] : [cols, rows], offset: 0, byteLength: bytesFor(type, cols * rows) };
}

/** Per-output bound (see the header) for x [n, k] against weights w [rows, k] (dequantized). */
function bounds(type: TensorType, x: Float32Array, n: number, w: Float32Array, rows: number, k: number): Float64Array {
  const block = TENSOR_FORMATS[type].blockSize;
  const out = new Float64Array(n * rows);
  for (let r = 0; r < n; r++) for (let j = 0; j < rows; j++) {
    let quant = 0, mag = 0;
    for (let b0 = 0; b0 < k; b0 += block === 1 ? k : block) {
      const len = block === 1 ? k : block;
      let amax = 0, wsum = 0;
      for (let i = b0; i < b0 + len; i++) {
        amax = Math.max(amax, Math.abs(x[r * k + i]!));
        wsum += Math.abs(w[j * k + i]!);
        mag += Math.abs(w[j * k + i]! * x[r * k + i]!);
      }
      if (block > 1) quant += (amax / 127 / 2) * wsum;
    }
    out[r * rows + j] = quant * 1.0001 + 1e-5 * mag + 1e-6;
  }
  return out;
}

function assertWithin(actual: Float32Array, expected: Float32Array, bound: Float64Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    assert.ok(err <= bound[i]!, `${what}[${i}]: ${actual[i]} vs reference ${expected[i]} (error ${err}, bound ${bound[i]})`);
  }
}

test('wasm matmul matches cpu-ref on every weight type, odd sizes, 4 threads and 1, with bias', async () => {
  const wasm = await WasmBackend.create({ threads: 4, spawn: spawnKernelWorker });
  const ref = new CpuBackend();
  try {
    assert.equal(wasm.threads, 4);
    const rows = 37; // not divisible by 2, 3 or 4
    for (const type of TENSOR_TYPES) {
      const k = colsFor(type);
      const wValues = randn(rows * k);
      const stored = quantize(type, wValues);
      const wDeq = dequantize(type, stored, rows * k);
      const bias = randn(rows);
      const biasBytes = new Uint8Array(bias.buffer);
      const wW = await wasm.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      const wR = await ref.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      const bW = await wasm.uploadWeight(info('b', 'F32', rows, 1), biasBytes);
      const bR = await ref.uploadWeight(info('b', 'F32', rows, 1), biasBytes);
      for (const n of [1, 5, 70]) { // 70: past one 64-row chunk of the backend, and a tail of 2 past 4-row passes
        const x = randn(n * k);
        for (let i = 0; i < x.length; i += 9) x[i] = x[i]! * 4; // uneven magnitudes inside blocks
        const xW = wasm.createAct(n, k), xR = ref.createAct(n, k);
        wasm.writeAct(xW, x);
        ref.writeAct(xR, x);
        const oR = ref.createAct(n, rows);
        ref.matmul(xR, wR, oR, bR);
        const expected = await ref.readAct(oR);
        const bound = bounds(type, x, n, wDeq, rows, k);
        // Threads first, into fresh scratch: a row no thread wrote reads as zero, not as a earlier run's result.
        const o4 = wasm.createAct(n, rows);
        wasm.matmulOn(4, xW, wW, o4, bW);
        const threaded = await wasm.readAct(o4);
        assertWithin(threaded, expected, bound, `${type} n=${n} 4 threads`);
        const o1 = wasm.createAct(n, rows);
        wasm.matmulOn(1, xW, wW, o1, bW);
        const single = await wasm.readAct(o1);
        assertWithin(single, expected, bound, `${type} n=${n} 1 thread`);
        assert.deepEqual(threaded, single, `${type} n=${n}: the thread split changed a result`);
      }
    }
  } finally {
    wasm.destroy();
    ref.destroy();
  }
});

// matmulShared quantizes x once for the products whose weights take it in one form (Q4_K with Q6_K: Q8_K; Q4_0 with
// Q4_1: Q8_0 at 8 bits in the relaxed build), and runs the others alone. Either way each output must be the bits of
// its own matmul: a wrong type per product, a product reading another's quantization or a bias on the wrong output
// moves them.
test('matmulShared equals one matmul per product, bit for bit: shared and mixed forms, biases, past a 64-row chunk', async () => {
  const wasm = await WasmBackend.create({ threads: 2, spawn: spawnKernelWorker });
  try {
    const k = 512;
    const sets: TensorType[][] = [['Q4_K', 'Q6_K', 'Q4_K'], ['Q4_0', 'Q4_1'], ['Q8_0', 'Q4_K', 'F32', 'Q5_0']];
    for (const types of sets) {
      const rowsOf = types.map((_, i) => 24 + 8 * i);
      const weights = await Promise.all(types.map((t, i) => wasm.uploadWeight(info(`w${i}.${t}`, t, k, rowsOf[i]!), quantize(t, randn(rowsOf[i]! * k)))));
      const biases = await Promise.all(rowsOf.map((r, i) => wasm.uploadWeight(info(`b${i}`, 'F32', r, 1), new Uint8Array(randn(r).buffer))));
      for (const n of [1, 70]) {
        const x = wasm.createAct(n, k);
        wasm.writeAct(x, randn(n * k));
        const shared = rowsOf.map((r) => wasm.createAct(n, r));
        wasm.matmulShared(x, weights.map((w, i) => (i % 2 === 0 ? { w, out: shared[i]!, bias: biases[i]! } : { w, out: shared[i]! })));
        for (let i = 0; i < types.length; i++) {
          const alone = wasm.createAct(n, rowsOf[i]!);
          wasm.matmul(x, weights[i]!, alone, i % 2 === 0 ? biases[i] : undefined);
          assert.deepEqual(await wasm.readAct(shared[i]!), await wasm.readAct(alone), `${types.join('+')} n=${n}: product ${i} (${types[i]})`);
        }
      }
    }
  } finally {
    wasm.destroy();
  }
});

// The products' loop orders (kernels/cpu/matmul.c ROWS_N): weight rows in slices of 256 KB with 4 activation rows
// outermost inside a slice, or one weight row at a time where 4 activation rows pass 32 KB (rows past ~4K values).
// Shapes for both, on one thread (two slices: 248 + 52 rows) and four (75 rows each, one slice), with tails.
test('wasm matmul matches cpu-ref past one weight slice and on rows too wide for 4 activation rows in L1', async () => {
  const wasm = await WasmBackend.create({ threads: 4, spawn: spawnKernelWorker });
  const ref = new CpuBackend();
  try {
    for (const [type, k, rows] of [['Q8_0', 32 * 31, 300], ['Q8_0', 32 * 131, 37], ['Q4_K', 256 * 17, 37], ['Q6_K', 256 * 17, 21]] as const) {
      const stored = quantize(type, randn(rows * k));
      const wDeq = dequantize(type, stored, rows * k);
      const wW = await wasm.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      const wR = await ref.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      for (const n of [6, 70]) {
        const x = randn(n * k);
        const xW = wasm.createAct(n, k), xR = ref.createAct(n, k);
        wasm.writeAct(xW, x);
        ref.writeAct(xR, x);
        const oR = ref.createAct(n, rows);
        ref.matmul(xR, wR, oR);
        const expected = await ref.readAct(oR);
        const bound = bounds(type, x, n, wDeq, rows, k);
        const results = [];
        for (const t of [4, 1]) {
          const o = wasm.createAct(n, rows);
          wasm.matmulOn(t, xW, wW, o);
          results.push(await wasm.readAct(o));
          assertWithin(results[results.length - 1]!, expected, bound, `${type} ${rows}x${k} n=${n} ${t} threads`);
        }
        assert.deepEqual(results[0], results[1], `${type} ${rows}x${k} n=${n}: the thread split changed a result`);
      }
    }
  } finally {
    wasm.destroy();
    ref.destroy();
  }
});

/** Byte offsets of each block's f16 scales (ggml-common.h), set to finite values in random blocks. */
const F16_FIELDS: Partial<Record<TensorType, readonly number[]>> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

// Where no clang 16+ could be had (ensure-wasm-toolchain.sh installs one with apt), only the SIMD128 build exists:
// the test says so and skips, as the tests that need a fetched model do without PyPI.
const noRelaxed = relaxedKernelsBuilt() ? false : 'the relaxed-SIMD kernels were not built: no clang 16 or newer (scripts/ensure-wasm-toolchain.sh)';

test('the relaxed-SIMD and SIMD128 kernels agree bit for bit on every quantized type (random blocks, tails, 4 threads), and a row alone equals it in a batch', { skip: noRelaxed }, async () => {
  const relaxed = await WasmBackend.create({ threads: 4, spawn: spawnKernelWorker });
  const plain = await WasmBackend.create({ threads: 4, spawn: spawnKernelWorker, relaxedSimd: false });
  try {
    assert.match(relaxed.deviceName, /relaxed/, 'this Node does not run the relaxed-SIMD kernels even with the flag');
    assert.doesNotMatch(plain.deviceName, /relaxed/);
    const rows = 37;
    for (const type of TENSOR_TYPES) {
      const fields = F16_FIELDS[type];
      if (!fields) continue; // float weights: one code path in both builds
      const blockBytes = TENSOR_FORMATS[type].bytesPerBlock;
      const k = colsFor(type);
      // Every bit pattern of the quants, signs and sub-block scales (extremes included: Q6_K's -32 times scale
      // -128, Q8_0's -128), with finite scales of either sign.
      const stored = new Uint8Array(bytesFor(type, rows * k));
      for (let i = 0; i < stored.length; i++) stored[i] = Math.floor(rand() * 256);
      const view = new DataView(stored.buffer);
      for (let b = 0; b < stored.length / blockBytes; b++) {
        for (const f of fields) view.setUint16(b * blockBytes + f, (rand() < 0.5 ? 0x8000 : 0) | (0x2c00 + Math.floor(rand() * 0x1000)), true);
      }
      const wA = await relaxed.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      const wB = await plain.uploadWeight(info(`w.${type}`, type, k, rows), stored);
      for (const n of [1, 7, 70]) {
        const x = randn(n * k);
        for (let i = 0; i < x.length; i += 7) x[i] = x[i]! * 30; // one large value per block: activations reach +-127
        const xA = relaxed.createAct(n, k), xB = plain.createAct(n, k);
        relaxed.writeAct(xA, x);
        plain.writeAct(xB, x);
        const oA = relaxed.createAct(n, rows), oB = plain.createAct(n, rows);
        relaxed.matmul(xA, wA, oA);
        plain.matmul(xB, wB, oB);
        const a = await relaxed.readAct(oA), b = await plain.readAct(oB);
        assert.ok(a.some((v) => v !== 0), `${type} n=${n}: all zero`);
        const d = a.findIndex((v, i) => !Object.is(v, b[i]));
        assert.equal(d, -1, `${type} n=${n}: the builds differ at ${d}: ${a[d]} vs ${b[d]}`);
        if (n === 7) {
          // Row 5 of 7 (a 1-row tail after one 4-row pass) and row 2 (inside the pass), each alone: the same bits.
          for (const r of [2, 5]) {
            const x1 = relaxed.createAct(1, k), o1 = relaxed.createAct(1, rows);
            relaxed.writeAct(x1, x.subarray(r * k, (r + 1) * k));
            relaxed.matmul(x1, wA, o1);
            const alone = await relaxed.readAct(o1);
            const e = alone.findIndex((v, j) => !Object.is(v, a[r * rows + j]));
            assert.equal(e, -1, `${type}: row ${r} alone differs from the same row in a batch of 7 at ${e}`);
          }
        }
      }
    }
  } finally {
    relaxed.destroy();
    plain.destroy();
  }
});

test('the bound is tight enough to see one dropped tail block', async () => {
  // The same check as above on a Q8_0 product whose last block is zeroed in the weights handed to the kernels:
  // outputs must leave the bound (else the test above could not catch a kernel that skips the tail).
  const wasm = await WasmBackend.create({});
  try {
    const [rows, k, n] = [37, 32 * 7, 5];
    const wValues = randn(rows * k);
    const stored = quantize('Q8_0', wValues);
    const dropped = stored.slice();
    for (let j = 0; j < rows; j++) dropped.fill(0, (j + 1) * 34 * 7 - 34, (j + 1) * 34 * 7);
    const x = randn(n * k);
    const xa = wasm.createAct(n, k);
    wasm.writeAct(xa, x);
    const out = wasm.createAct(n, rows);
    wasm.matmul(xa, await wasm.uploadWeight(info('w', 'Q8_0', k, rows), dropped), out);
    const got = await wasm.readAct(out);
    const wDeq = dequantize('Q8_0', stored, rows * k);
    const expected = new Float32Array(n * rows);
    for (let r = 0; r < n; r++) for (let j = 0; j < rows; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += wDeq[j * k + i]! * x[r * k + i]!;
      expected[r * rows + j] = s;
    }
    const bound = bounds('Q8_0', x, n, wDeq, rows, k);
    let outside = 0;
    for (let i = 0; i < got.length; i++) if (Math.abs(got[i]! - expected[i]!) > bound[i]!) outside++;
    assert.ok(outside > got.length / 2, `only ${outside} of ${got.length} outputs left the bound`);
  } finally {
    wasm.destroy();
  }
});

test('embed from a weight held in wasm memory equals the dequantized rows', async () => {
  const wasm = await WasmBackend.create({});
  try {
    for (const type of ['Q4_K', 'Q8_0', 'F16'] as const) {
      const k = colsFor(type) + (type === 'F16' ? 3 : 0), rows = 11;
      const stored = quantize(type, randn(rows * k));
      const table = await wasm.uploadWeight(info('t', type, k, rows), stored);
      const ids = Int32Array.from([3, 0, 10, 3]);
      const out = wasm.createAct(ids.length, k);
      wasm.embed(table, ids, out);
      const all = dequantize(type, stored, rows * k);
      const expected = new Float32Array(ids.length * k);
      ids.forEach((id, r) => expected.set(all.subarray(id * k, (id + 1) * k), r * k));
      assert.deepEqual(await wasm.readAct(out), expected, type);
    }
  } finally {
    wasm.destroy();
  }
});

// Attention: the kernels compute in f32 (the reference in f64 from the same f32 inputs), so the error is rounding
// alone. With u = 2^-24, scores carry at most headDim·u·S (S = max over the visible keys of scale·Σ|q_i k_i|),
// each softmax weight that plus 2^-21 (the exp polynomial and the subtraction of the max), and the weighted sum
// (n + 4)·u of max|v| (n visible keys): |out - ref| <= 2 · (2·(headDim·u·S + 2^-21) + (n + 4)·u) · max|v|, and
// |lse - ref| <= 2 · (headDim·u·S + (n + 4)·u + 2^-21) + u·|lse|. A dropped key moves an output by about its
// weight (≈ 1/n of |v|), far outside.
const U = 2 ** -24;

interface AttnCase {
  readonly headDim: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly rows: number;
  /** Per source: entries, causal offset (or none), query rows that see it (or all). */
  readonly sources: readonly { length: number; causalOffset?: number; rows?: { start: number; count: number } }[];
}

function visibleOf(s: AttnCase['sources'][number], r: number): number {
  if (s.rows && (r < s.rows.start || r >= s.rows.start + s.rows.count)) return 0;
  return s.causalOffset === undefined ? s.length : Math.max(0, Math.min(s.length, s.causalOffset + r + 1));
}

async function runAttention(c: AttnCase, threadsList: readonly number[], dropLastKey = false) {
  const wasm = await WasmBackend.create({ threads: 4, spawn: spawnKernelWorker });
  const ref = new CpuBackend();
  try {
    const width = c.nKvHeads * c.headDim, qCols = c.nHeads * c.headDim;
    const kv = c.sources.map((s) => ({ k: randn(s.length * width).map((x) => x * 3), v: randn(s.length * width) }));
    const q = randn(c.rows * qCols).map((x) => x * 3); // peaked softmaxes as well as flat ones
    const make = (b: CpuBackend) => c.sources.map((s, i) => {
      // Capacity past the length: entries beyond it hold values that must not be read.
      const k = b.createKv(s.length + 5, width), v = b.createKv(s.length + 5, width);
      b.writeKv(k, 0, kv[i]!.k);
      b.writeKv(v, 0, kv[i]!.v);
      b.writeKv(k, s.length, randn(5 * width).map((x) => x * 100));
      b.writeKv(v, s.length, randn(5 * width).map((x) => x * 100));
      return { k, v, length: s.length, causalOffset: s.causalOffset, rows: s.rows };
    });
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const refSrc = make(ref);
    const qR = ref.createAct(c.rows, qCols);
    ref.writeAct(qR, q);
    const oR = ref.createAct(c.rows, qCols), lR = ref.createAct(c.rows, c.nHeads);
    ref.attention(qR, refSrc, shape, oR, lR);
    const wSrc = make(wasm).map((s) => (dropLastKey && s.length > 0 ? { ...s, length: s.length - 1 } : s));
    const qW = wasm.createAct(c.rows, qCols);
    wasm.writeAct(qW, q);
    const results = [];
    for (const t of threadsList) {
      const oW = wasm.createAct(c.rows, qCols), lW = wasm.createAct(c.rows, c.nHeads);
      wasm.attentionOn(t, qW, wSrc, shape, oW, lW);
      results.push({ out: await wasm.readAct(oW), lse: await wasm.readAct(lW) });
    }
    // Bounds per (row, head).
    const group = c.nHeads / c.nKvHeads, scale = 1 / Math.sqrt(c.headDim);
    const outBound = new Float64Array(c.rows * qCols), lseBound = new Float64Array(c.rows * c.nHeads);
    const expectedLse = await ref.readAct(lR);
    for (let r = 0; r < c.rows; r++) for (let h = 0; h < c.nHeads; h++) {
      let S = 0, maxV = 0, n = 0;
      const kvh = Math.floor(h / group);
      c.sources.forEach((s, si) => {
        const vis = visibleOf(s, r);
        n += vis;
        for (let j = 0; j < vis; j++) {
          let a = 0;
          for (let d = 0; d < c.headDim; d++) {
            a += Math.abs(q[r * qCols + h * c.headDim + d]! * kv[si]!.k[j * width + kvh * c.headDim + d]!);
            maxV = Math.max(maxV, Math.abs(kv[si]!.v[j * width + kvh * c.headDim + d]!));
          }
          S = Math.max(S, a * scale);
        }
      });
      const sErr = c.headDim * U * S;
      outBound.fill(2 * (2 * (sErr + 2 ** -21) + (n + 4) * U) * maxV, r * qCols + h * c.headDim, r * qCols + (h + 1) * c.headDim);
      const l = expectedLse[r * c.nHeads + h]!;
      lseBound[r * c.nHeads + h] = Number.isFinite(l) ? 2 * (sErr + (n + 4) * U + 2 ** -21) + U * Math.abs(l) : 0;
    }
    return { expected: { out: await ref.readAct(oR), lse: expectedLse }, results, outBound, lseBound };
  } finally {
    wasm.destroy();
    ref.destroy();
  }
}

const attnCases: AttnCase[] = [];
for (const headDim of [16, 64]) for (const [nHeads, nKvHeads] of [[2, 2], [6, 2]] as const) {
  // One decode row over three sources (a block's tail of 1, a 67-key tile tail, 130 keys: two tiles and a 2-key rest).
  attnCases.push({ headDim, nHeads, nKvHeads, rows: 1, sources: [{ length: 1 }, { length: 67 }, { length: 130, causalOffset: 129 }] });
  // Causal prefill of 7 rows after 61 cached entries (7 · nHeads items: not divisible by 4 threads), with an
  // anchor every row sees and a second sequence batched in rows [4, 7) (Star phase 1's block-diagonal mask).
  attnCases.push({ headDim, nHeads, nKvHeads, rows: 7, sources: [
    { length: 9 }, { length: 65, causalOffset: 61 - 3, rows: { start: 0, count: 4 } }, { length: 3, causalOffset: -4, rows: { start: 4, count: 3 } },
  ] });
  // 5 rows over whole tiles: two rows of a head run together over the tiles both see (3 of 200 keys; 2 of the
  // causal 136-140), then each its rest; 4 threads start some ranges on an odd row, so pairs differ from 1 thread's.
  attnCases.push({ headDim, nHeads, nKvHeads, rows: 5, sources: [{ length: 200 }, { length: 140, causalOffset: 135 }] });
}

test('wasm attention matches cpu-ref within f32 rounding: head sizes 16 and 64, GQA 1 and 3, causal, row ranges, 4 threads and 1', async () => {
  for (const c of attnCases) {
    const what = `hd=${c.headDim} heads=${c.nHeads}/${c.nKvHeads} rows=${c.rows}`;
    const { expected, results, outBound, lseBound } = await runAttention(c, [4, 1]);
    for (const [i, got] of results.entries()) {
      assertWithin(got.out, expected.out, outBound, `${what} out (${i ? 1 : 4} threads)`);
      for (let j = 0; j < got.lse.length; j++) {
        const e = expected.lse[j]!, a = got.lse[j]!;
        if (e === -Infinity) assert.equal(a, -Infinity, `${what} lse[${j}]: a row that sees nothing`);
        else assert.ok(Math.abs(a - e) <= lseBound[j]!, `${what} lse[${j}]: ${a} vs reference ${e} (bound ${lseBound[j]})`);
      }
    }
    assert.deepEqual(results[0], results[1], `${what}: the thread split changed a result`);
  }
});

test('the attention bound sees one dropped last key', async () => {
  const c = attnCases.find((a) => a.headDim === 16 && a.nHeads === 6 && a.rows === 1)!; // one row over 1 + 67 + 130 keys
  const { expected, results, outBound } = await runAttention(c, [4], true);
  const got = results[0]!.out;
  let outside = 0;
  for (let i = 0; i < got.length; i++) if (Math.abs(got[i]! - expected.out[i]!) > outBound[i]!) outside++;
  assert.ok(outside > got.length / 2, `only ${outside} of ${got.length} outputs left the bound`);
});

// RMSNorm in f32 against the reference in f64: the sum of squares carries cols·u, so an output |ref|·2(cols + 8)·u.
// Sizes leave SIMD tails and span two of the backend's passes.
test('wasm rmsNorm matches cpu-ref within f32 rounding', async () => {
  const wasm = await WasmBackend.create({});
  const ref = new CpuBackend();
  try {
    const [rows, cols] = [900, 77];
    const x = randn(rows * cols).map((v, i) => (i % 13 === 0 ? v * 50 : v));
    const w = randn(cols);
    const wBytes = new Uint8Array(w.buffer);
    const run = async (b: CpuBackend) => {
      const xa = b.createAct(rows, cols), out = b.createAct(rows, cols);
      b.writeAct(xa, x);
      b.rmsNorm(xa, await b.uploadWeight(info('norm', 'F32', cols, 1), wBytes), 1e-6, out);
      return b.readAct(out);
    };
    const expected = await run(ref);
    assertWithin(await run(wasm), expected, Float64Array.from(expected, (e) => Math.abs(e) * 2 * (cols + 8) * U + 1e-30), 'rmsNorm');
  } finally {
    wasm.destroy();
    ref.destroy();
  }
});

// SwiGLU runs in f64 in the kernels as in the reference, so each output is the reference's f32 rounding or, where
// the two f64 values straddle an f32 rounding boundary (about 1e-16 relative apart), the neighbouring float: at
// most 1 ulp, and almost every output identical. Values span silu's regimes (large negative, around 0, large
// positive, past exp's clamp at +-708); the length leaves a lane tail and spans two of the backend's passes.
test('wasm swiglu equals cpu-ref to the f32 rounding (f64 like the reference)', async () => {
  const wasm = await WasmBackend.create({});
  const ref = new CpuBackend();
  try {
    const [rows, cols] = [3, 21_847]; // 65,541 values: one pass of 65,536 and a tail of 5
    const n = rows * cols;
    const g = randn(n).map((v, i) => (i % 97 === 0 ? v * 800 : i % 7 === 0 ? v * 30 : v * 4));
    const u = randn(n).map((v) => v * 3);
    const run = async (b: CpuBackend) => {
      const ga = b.createAct(rows, cols), ua = b.createAct(rows, cols), out = b.createAct(rows, cols);
      b.writeAct(ga, g);
      b.writeAct(ua, u);
      b.swiglu(ga, ua, out);
      return b.readAct(out);
    };
    const expected = await run(ref);
    const got = await run(wasm);
    let same = 0;
    const ulp = new Float32Array(1), bits = new Uint32Array(ulp.buffer);
    for (let i = 0; i < n; i++) {
      if (Object.is(got[i], expected[i])) { same++; continue; }
      ulp[0] = Math.abs(expected[i]!);
      bits[0]++;
      const oneUlp = ulp[0] - Math.abs(expected[i]!);
      assert.ok(Math.abs(got[i]! - expected[i]!) <= oneUlp, `swiglu[${i}] (g ${g[i]}, u ${u[i]}): ${got[i]} vs reference ${expected[i]}`);
    }
    assert.ok(same >= n * 0.999, `only ${same} of ${n} outputs equal the reference's`);
  } finally {
    wasm.destroy();
    ref.destroy();
  }
});
