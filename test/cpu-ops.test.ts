// CpuBackend ops against straightforward float64 implementations written here from the math
// (the CPU backend is the oracle for every GPU kernel, so it gets its own independent check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import type { AttnSource } from '../src/engine/backend/types';
import type { RopeParams, TensorInfo } from '../src/engine/model/types';
import { createRandom } from '../src/engine/runtime/random';
import { quantize } from '../src/engine/quant/quantize';
import { isBlockQuantized, TENSOR_TYPES } from '../src/engine/quant/formats';

const rand = createRandom(1234);
const randn = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (a === e) continue; // also covers -Infinity
    assert.ok(Math.abs(a - e) <= tol, `${what}[${i}]: ${a} vs ${e}`);
  }
}

function f32Info(name: string, shape: number[]): TensorInfo {
  return { name, type: 'F32', shape, offset: 0, byteLength: shape.reduce((a, b) => a * b, 1) * 4 };
}
const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

test('matmul with bias equals a naive dot product (4-row blocks and remainder)', async () => {
  const b = new CpuBackend();
  const [n, inDim, outDim] = [6, 13, 7];
  const x = randn(n * inDim), w = randn(outDim * inDim), bias = randn(outDim);
  const xa = b.createAct(n, inDim), out = b.createAct(n, outDim);
  b.writeAct(xa, x);
  b.matmul(xa, await b.uploadWeight(f32Info('w', [inDim, outDim]), bytes(w)), out, await b.uploadWeight(f32Info('b', [outDim]), bytes(bias)));
  const expected = new Float64Array(n * outDim);
  for (let r = 0; r < n; r++) for (let o = 0; o < outDim; o++) {
    let s = bias[o]!;
    for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w[o * inDim + i]!;
    expected[r * outDim + o] = s;
  }
  close(await b.readAct(out), expected, 1e-5, 'matmul');
});

/** Softmax attention in float64, one row and head at a time, with GQA and per-source causal masks. */
function naiveAttention(q: Float32Array, rows: number,
  srcs: { k: Float32Array; v: Float32Array; length: number; causalOffset?: number; rows?: { start: number; count: number } }[],
  nHeads: number, nKv: number, hd: number): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(rows * nHeads * hd), lse = new Float64Array(rows * nHeads);
  for (let r = 0; r < rows; r++) for (let h = 0; h < nHeads; h++) {
    const kvh = Math.floor((h * nKv) / nHeads);
    const scores: number[] = [], values: Float32Array[] = [];
    for (const s of srcs) for (let j = 0; j < s.length; j++) {
      if (s.rows && (r < s.rows.start || r >= s.rows.start + s.rows.count)) continue;
      if (s.causalOffset !== undefined && j > s.causalOffset + r) continue;
      let dot = 0;
      for (let d = 0; d < hd; d++) dot += q[r * nHeads * hd + h * hd + d]! * s.k[j * nKv * hd + kvh * hd + d]!;
      scores.push(dot / Math.sqrt(hd));
      values.push(s.v.subarray(j * nKv * hd + kvh * hd, j * nKv * hd + (kvh + 1) * hd));
    }
    const sum = scores.reduce((a, s) => a + Math.exp(s), 0);
    lse[r * nHeads + h] = scores.length ? Math.log(sum) : -Infinity;
    scores.forEach((s, i) => {
      for (let d = 0; d < hd; d++) out[r * nHeads * hd + h * hd + d] += (Math.exp(s) / sum) * values[i]![d]!;
    });
  }
  return { out, lse };
}

test('attention over several sources (GQA, causal offsets, empty rows) equals float64 softmax; merge is exact', async () => {
  const b = new CpuBackend();
  const [rows, nHeads, nKv, hd] = [3, 4, 2, 8];
  const shape = { nHeads, nKvHeads: nKv, headDim: hd };
  const width = nKv * hd;
  const specs = [{ length: 5 }, { length: 4, causalOffset: 1 }, { length: 3, causalOffset: -1 }];
  const host = specs.map((s) => ({ ...s, k: randn(8 * width), v: randn(8 * width) }));
  const sources: AttnSource[] = host.map((s) => {
    const k = b.createKv(8, width), v = b.createKv(8, width);
    b.writeKv(k, 0, s.k); b.writeKv(v, 0, s.v);
    return { k, v, length: s.length, causalOffset: s.causalOffset };
  });
  const q = randn(rows * nHeads * hd);
  const qa = b.createAct(rows, nHeads * hd);
  b.writeAct(qa, q);
  const out = b.createAct(rows, nHeads * hd), lse = b.createAct(rows, nHeads);

  b.attention(qa, sources, shape, out, lse);
  const ref = naiveAttention(q, rows, host, nHeads, nKv, hd);
  close(await b.readAct(out), ref.out, 1e-5, 'out');
  close(await b.readAct(lse), ref.lse, 1e-5, 'lse');

  // Row 0 of the third source sees nothing (causalOffset -1): lse -Infinity, output 0.
  b.attention(qa, [sources[2]!], shape, out, lse);
  const l3 = await b.readAct(lse);
  assert.equal(l3[0], -Infinity);
  assert.deepEqual(Array.from((await b.readAct(out)).subarray(0, nHeads * hd)), new Array(nHeads * hd).fill(0));

  // Merging per-source partials (one of them partly empty) gives the joint attention.
  const parts = sources.map((s) => {
    const o = b.createAct(rows, nHeads * hd), l = b.createAct(rows, nHeads);
    b.attention(qa, [s], shape, o, l);
    return { out: o, lse: l };
  });
  const merged = b.createAct(rows, nHeads * hd), mergedLse = b.createAct(rows, nHeads);
  b.mergeAttention(parts, hd, merged, mergedLse);
  close(await b.readAct(merged), ref.out, 1e-5, 'merged out');
  close(await b.readAct(mergedLse), ref.lse, 1e-5, 'merged lse');
});

test('row-restricted sources (block-diagonal batch) equal float64 softmax and per-block attention', async () => {
  const b = new CpuBackend();
  const [nHeads, nKv, hd] = [4, 2, 8];
  const shape = { nHeads, nKvHeads: nKv, headDim: hd };
  const width = nKv * hd;
  // Rows 0..2 are block A, rows 3..6 block B, row 7 belongs to no block (sees only the anchor).
  const blocks = [{ row: 0, rows: 3 }, { row: 3, rows: 4 }];
  const rows = 8;
  const kvOf = (len: number) => {
    const kd = randn(len * width), vd = randn(len * width);
    const k = b.createKv(len, width), v = b.createKv(len, width);
    b.writeKv(k, 0, kd); b.writeKv(v, 0, vd);
    return { kd, vd, k, v, length: len };
  };
  const anchor = kvOf(5);
  const own = blocks.map((blk) => kvOf(blk.rows));
  const q = randn(rows * nHeads * hd);
  const qa = b.createAct(rows, nHeads * hd);
  b.writeAct(qa, q);
  const sources: AttnSource[] = [{ k: anchor.k, v: anchor.v, length: anchor.length }];
  blocks.forEach((blk, i) => sources.push({ k: own[i]!.k, v: own[i]!.v, length: blk.rows, causalOffset: -blk.row, rows: { start: blk.row, count: blk.rows } }));
  const out = b.createAct(rows, nHeads * hd), lse = b.createAct(rows, nHeads);
  b.attention(qa, sources, shape, out, lse);
  const ref = naiveAttention(q, rows, [
    { k: anchor.kd, v: anchor.vd, length: anchor.length },
    ...blocks.map((blk, i) => ({ k: own[i]!.kd, v: own[i]!.vd, length: blk.rows, causalOffset: -blk.row, rows: { start: blk.row, count: blk.rows } })),
  ], nHeads, nKv, hd);
  close(await b.readAct(out), ref.out, 1e-5, 'batched out');
  close(await b.readAct(lse), ref.lse, 1e-5, 'batched lse');

  // Each block alone (its own q rows, anchor + its own KV causally) gives the same rows.
  const batchedOut = await b.readAct(out), batchedLse = await b.readAct(lse);
  for (const [i, blk] of blocks.entries()) {
    const qb = b.createAct(blk.rows, nHeads * hd);
    b.writeAct(qb, q.subarray(blk.row * nHeads * hd, (blk.row + blk.rows) * nHeads * hd));
    const ob = b.createAct(blk.rows, nHeads * hd), lb = b.createAct(blk.rows, nHeads);
    b.attention(qb, [sources[0]!, { k: own[i]!.k, v: own[i]!.v, length: blk.rows, causalOffset: 0 }], shape, ob, lb);
    close(batchedOut.subarray(blk.row * nHeads * hd, (blk.row + blk.rows) * nHeads * hd), await b.readAct(ob), 1e-6, `block ${i} out`);
    close(batchedLse.subarray(blk.row * nHeads, (blk.row + blk.rows) * nHeads), await b.readAct(lb), 1e-6, `block ${i} lse`);
  }
  // A source no row may see: every row empty.
  b.attention(qa, [{ ...sources[1]!, rows: { start: rows, count: 2 } }], shape, out, lse);
  assert.ok(Array.from(await b.readAct(lse)).every((x) => x === -Infinity));
});

/** Hugging Face `_compute_llama3_parameters`, transcribed with its torch.where structure. */
function hfLlama3InvFreq(hd: number, theta: number, s: NonNullable<RopeParams['scaling']>): number[] {
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  return Array.from({ length: hd / 2 }, (_, i) => {
    const f = 1 / theta ** ((2 * i) / hd);
    const wavelen = (2 * Math.PI) / f;
    let g = wavelen > lowWavelen ? f / s.factor : f;
    const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    const smoothed = ((1 - smooth) * g) / s.factor + smooth * g;
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (medium) g = smoothed;
    return g;
  });
}

function naiveRope(x: Float32Array, cols: number, positions: number[], hd: number, inv: number[], layout: RopeParams['layout']): Float64Array {
  const out = Float64Array.from(x);
  positions.forEach((p, r) => {
    for (let h = 0; h < cols; h += hd) for (let i = 0; i < hd / 2; i++) {
      const [a, c] = layout === 'adjacent' ? [h + 2 * i, h + 2 * i + 1] : [h + i, h + i + hd / 2];
      const x0 = x[r * cols + a]!, x1 = x[r * cols + c]!, ang = p * inv[i]!;
      out[r * cols + a] = x0 * Math.cos(ang) - x1 * Math.sin(ang);
      out[r * cols + c] = x0 * Math.sin(ang) + x1 * Math.cos(ang);
    }
  });
  return out;
}

test('RoPE in both layouts with llama3 scaling matches Hugging Face\'s formula; ropeShiftKv composes', async () => {
  const b = new CpuBackend();
  const hd = 16, cols = 32;
  const positions = [0, 7, 300, 9000];
  const scaling = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 };
  const cases: RopeParams[] = [
    { theta: 10000, layout: 'adjacent' }, { theta: 10000, layout: 'halves' },
    { theta: 500000, layout: 'halves', scaling }, { theta: 500000, layout: 'adjacent', scaling },
  ];
  for (const rope of cases) {
    const inv = rope.scaling ? hfLlama3InvFreq(hd, rope.theta, rope.scaling) : Array.from({ length: hd / 2 }, (_, i) => 1 / rope.theta ** ((2 * i) / hd));
    if (rope.scaling) {
      // The test band must cover all three regimes (kept, interpolated, divided).
      const plain = Array.from({ length: hd / 2 }, (_, i) => 1 / rope.theta ** ((2 * i) / hd));
      const ratios = inv.map((g, i) => plain[i]! / g);
      assert.ok(ratios.some((r) => r === 1) && ratios.some((r) => Math.abs(r - 8) < 1e-12) && ratios.some((r) => r > 1.01 && r < 7.99));
    }
    const x = randn(positions.length * cols);
    const a = b.createAct(positions.length, cols);
    b.writeAct(a, x);
    b.rope(a, Int32Array.from(positions), hd, rope);
    close(await b.readAct(a), naiveRope(x, cols, positions, hd, inv, rope.layout), 1e-4, `rope ${rope.layout} ${rope.scaling ? 'llama3' : ''}`);

    // Keys at positions p, shifted by 25, equal keys encoded at p + 25.
    const k = b.createKv(positions.length, cols);
    b.storeKv(a, k, 0);
    b.ropeShiftKv(k, 1, 3, 25, hd, rope);
    const shifted = await b.readKv(k, 1, 3);
    close(shifted, naiveRope(x.subarray(cols), cols, positions.slice(1).map((p) => p + 25), hd, inv, rope.layout), 1e-3, 'shifted');
    close(await b.readKv(k, 0, 1), naiveRope(x.subarray(0, cols), cols, [0], hd, inv, rope.layout), 1e-6, 'row outside the shift');
  }
});

test('rmsNorm, swiglu, add, embed, argmax against direct formulas', async () => {
  const b = new CpuBackend();
  const x = randn(2 * 5), w = randn(5);
  const xa = b.createAct(2, 5), out = b.createAct(2, 5);
  b.writeAct(xa, x);
  b.rmsNorm(xa, await b.uploadWeight(f32Info('n', [5]), bytes(w)), 1e-5, out);
  const ref = Array.from(x, (v, i) => {
    const row = x.subarray(Math.floor(i / 5) * 5, Math.floor(i / 5) * 5 + 5);
    return (v / Math.sqrt(row.reduce((s, y) => s + y * y, 0) / 5 + 1e-5)) * w[i % 5]!;
  });
  close(await b.readAct(out), ref, 1e-6, 'rmsNorm');

  const g = b.createAct(2, 5);
  b.writeAct(g, Float32Array.from([...w, ...w]));
  b.swiglu(g, xa, out);
  close(await b.readAct(out), Array.from(x, (v, i) => (w[i % 5]! / (1 + Math.exp(-w[i % 5]!))) * v), 1e-6, 'swiglu');
  b.add(out, xa);
  close(await b.readAct(out), Array.from(x, (v, i) => (w[i % 5]! / (1 + Math.exp(-w[i % 5]!))) * v + v), 1e-6, 'add');

  const table = randn(4 * 5);
  const e = b.createAct(3, 5);
  b.embed(await b.uploadWeight(f32Info('t', [5, 4]), bytes(table)), Int32Array.of(3, 0, 3), e);
  close(await b.readAct(e), [...table.subarray(15), ...table.subarray(0, 5), ...table.subarray(15)], 0, 'embed');
  b.writeAct(e, Float32Array.of(0, 1, 5, 5, 2, /**/ -1, -2, -3, -4, -5, /**/ 0, 0, 0, 0, 9));
  assert.deepEqual(Array.from(await b.argmax(e)), [2, 0, 4]);
});

test('sampleTopP draws from the nucleus in probability order', async () => {
  const b = new CpuBackend();
  const logits = b.createAct(1, 4);
  b.writeAct(logits, Float32Array.from([0.1, 0.2, 0.3, 0.4], Math.log)); // probs 0.1 .. 0.4
  // topP 0.65: nucleus {3 (0.4), 2 (0.3)}, mass 0.7.
  assert.equal(await b.sampleTopP(logits, 1, 0.65, 0.5), 3); // target 0.35 < 0.4
  assert.equal(await b.sampleTopP(logits, 1, 0.65, 0.6), 2); // target 0.42
  assert.equal(await b.sampleTopP(logits, 1, 0.65, 0.999), 2); // never leaves the nucleus
  assert.equal(await b.sampleTopP(logits, 1, 1, 0.95), 0); // full distribution: 0.4+0.3+0.2 = 0.9 < 0.95
  // A very low temperature concentrates everything on the argmax.
  assert.equal(await b.sampleTopP(logits, 1e-3, 1, 0.999), 3);
});

test('quantized matrices kept in stored bytes give exactly the values of dequantize-at-upload (matmul, embed)', async () => {
  const kept = new CpuBackend({ keepQuantized: true });
  const flat = new CpuBackend({ keepQuantized: false });
  const [rows, cols] = [21, 256]; // 21: one full 16-row panel and a partial one
  for (const type of TENSOR_TYPES.filter(isBlockQuantized)) {
    const stored = quantize(type, randn(rows * cols));
    const info: TensorInfo = { name: `w.${type}`, type, shape: [cols, rows], offset: 0, byteLength: stored.byteLength };
    const results = await Promise.all([kept, flat].map(async (b) => {
      const w = await b.uploadWeight(info, stored);
      const outs: Float32Array[] = [];
      for (const n of [1, 6]) {
        const x = b.createAct(n, cols), out = b.createAct(n, rows);
        b.writeAct(x, randnSeeded(n * cols, n));
        b.matmul(x, w, out);
        outs.push(await b.readAct(out));
      }
      const e = b.createAct(2, cols);
      b.embed(w, Int32Array.of(20, 3), e);
      outs.push(await b.readAct(e));
      return outs;
    }));
    results[0]!.forEach((r, i) => assert.deepEqual(r, results[1]![i], `${type} result ${i}`));
  }
});

function randnSeeded(n: number, seed: number): Float32Array {
  const r = createRandom(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}
