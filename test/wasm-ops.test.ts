// The `cpu` backend's WebAssembly kernels against the JS reference (`cpu-ref`), on every weight type, with sizes
// that leave tails (blocks per row odd, float rows not a multiple of the SIMD width, weight rows not divisible by
// the thread count) and split over several threads against one.
//
// Bound: the kernels quantize each activation block to 8 bits (round(x / d), d = max|x| / 127 per block), so an
// element moves by at most d / 2 and a product by at most Σ_blocks d_b / 2 · Σ_{i in b} |w_i|, computed here per
// output from the dequantized weights, plus f32 summation slack (1e-5 · Σ |w_i x_i|). Float weights take f32
// activations: slack only. A broken block layout, a dropped tail block or a row no thread computed all land far
// outside it (random data: one block's share of a product is several times its bound).
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
