// Every WebGPU op against the CPU reference backend on the same inputs (SwiftShader where there is no
// GPU, so shapes are tiny). Quantized weights: the GPU gets the stored ggml bytes from quantize(), the
// CPU the float32 values dequantize() reads from those same bytes, so only the GPU's dequantization
// and arithmetic are under test. Tolerances (absolute, values are O(1)):
//   1e-5  elementwise ops and norms; 1e-4 attention (f32 sums over a few hundred terms)
//   1e-3  matmul over 512-value rows (f32 accumulation order differs from the CPU's)
//   rope: 2e-5 for positions < 100; 5e-4 up to 5000 (the GPU forms the angle in f32, the CPU in f64)
// A second GPU backend with 'gpu' tuning (cooperative GEMV reduced by subgroups where the adapter has them,
// register-tiled matmul, many attention splits) and a 4 KiB weight part limit checks the other kernel shapes
// and weights split across buffers; a third, 'gpu' tuning without subgroups, the tree-reduced GEMV and the
// tiled matmul over several tiles.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import type { Act, AttnSource, Backend, Weight } from '../src/engine/backend/types';
import type { RopeParams, TensorType } from '../src/engine/model/types';
import { TENSOR_TYPES } from '../src/engine/quant/formats';
import { dequantize } from '../src/engine/quant/dequantize';
import { quantize } from '../src/engine/quant/quantize';
import { createRandom } from '../src/engine/runtime/random';
import { WebGpuBackend } from '../src/engine/backend/webgpu/webgpuBackend';
import { DeviceError } from '../src/engine/errors';
import { createBackend } from '../src/node/createBackend';

const rand = createRandom(20261126);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);

let gpu: Backend;
let gpuSplit: Backend;
let gpuTree: Backend;
const cpu = new CpuBackend();

before(async () => {
  gpu = await createBackend('webgpu');
  gpuSplit = await createBackend('webgpu', { maxWeightPartBytes: 4096, tuning: 'gpu' });
  gpuTree = await createBackend('webgpu', { tuning: 'gpu', subgroups: false });
});
after(() => {
  gpu?.destroy();
  gpuSplit?.destroy();
  gpuTree?.destroy();
});

/** Asserts |actual - expected| <= tol elementwise; returns the largest difference. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (a === e) continue; // also -Infinity
    const err = Math.abs(a - e);
    assert.ok(err <= tol, `${what}[${i}]: ${a} vs ${e} (tolerance ${tol})`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** Uploads a [rows, cols] weight: `type` bytes to the GPU backend, their dequantized f32 values to the CPU. */
async function weightPair(g: Backend, type: TensorType, rows: number, cols: number, scale = 1): Promise<[Weight, Weight]> {
  const stored = quantize(type, randn(rows * cols, scale));
  const shape = rows === 1 ? [cols] : [cols, rows];
  const gw = await g.uploadWeight({ name: `w_${type}`, type, shape, offset: 0, byteLength: stored.byteLength }, stored);
  const values = dequantize(type, stored, rows * cols);
  const cw = await cpu.uploadWeight({ name: `w_${type}`, type: 'F32', shape, offset: 0, byteLength: values.byteLength },
    new Uint8Array(values.buffer));
  return [gw, cw];
}

function actPair(g: Backend, rows: number, cols: number, data?: Float32Array): [Act, Act, Float32Array] {
  const d = data ?? randn(rows * cols);
  const ga = g.createAct(rows, cols), ca = cpu.createAct(rows, cols);
  g.writeAct(ga, d);
  cpu.writeAct(ca, d);
  return [ga, ca, d];
}

const TYPES: readonly TensorType[] = TENSOR_TYPES;

test('embed: every tensor type, repeated ids, table split across buffers', async () => {
  for (const g of [gpu, gpuSplit]) {
    for (const type of TYPES) {
      const [gw, cw] = await weightPair(g, type, 24, 256);
      const ids = Int32Array.of(3, 0, 23, 3, 17);
      const go = g.createAct(5, 256), co = cpu.createAct(5, 256);
      g.embed(gw, ids, go);
      cpu.embed(cw, ids, co);
      close(await g.readAct(go), await cpu.readAct(co), 0, `embed ${type}`);
    }
  }
});

test('matmul: GEMV (n = 1, 3) and tiled (n = 37, 70) for every type, bias, split weights, all three GEMV kernels', async (ctx) => {
  const worst = new Map<string, number>();
  const subgroupGemv = (gpuSplit as WebGpuBackend).subgroups;
  ctx.diagnostic(`gpu-tuned GEMV reduction: ${subgroupGemv ? 'subgroupAdd' : 'tree (the adapter has no usable subgroups)'}`);
  // SwiftShader (CI) has subgroups of 4: there the subgroup kernel must be the one under test.
  if (/swiftshader/i.test(gpuSplit.deviceName)) assert.ok(subgroupGemv, `${gpuSplit.deviceName}: subgroups not used`);
  assert.equal((gpuTree as WebGpuBackend).subgroups, false);
  for (const g of [gpu, gpuSplit, gpuTree]) {
    const types = g === gpu ? TYPES : g === gpuSplit ? (['F32', 'Q8_0', 'Q4_K', 'Q5_0', 'Q3_K'] as const) : (['F16', 'Q4_0', 'Q6_K'] as const);
    for (const type of types) {
      // Rows of 512: two K-quant super-blocks, sixteen 32-value blocks, so block strides within a row are read.
      // 130 outputs on gpuTree: three 64-wide tiles of the tiled kernel, the last partial.
      const [outDim, inDim] = [g === gpuTree ? 130 : 40, 512];
      const [gw, cw] = await weightPair(g, type, outDim, inDim, 0.5);
      const [gb, cb] = await weightPair(g, 'F32', 1, outDim);
      for (const n of g === gpu ? [1, 3, 37] : g === gpuSplit ? [1, 37] : [3, 70]) {
        const [gx, cx] = actPair(g, n, inDim);
        const go = g.createAct(n, outDim), co = cpu.createAct(n, outDim);
        const withBias = n !== 3;
        g.matmul(gx, gw, go, withBias ? gb : undefined);
        cpu.matmul(cx, cw, co, withBias ? cb : undefined);
        const d = close(await g.readAct(go), await cpu.readAct(co), 1e-3, `matmul ${type} n=${n}`);
        if (g === gpu) worst.set(type, Math.max(worst.get(type) ?? 0, d));
      }
    }
  }
  ctx.diagnostic(`max |GPU - CPU| per type: ${[...worst].map(([t, d]) => `${t} ${d.toExponential(1)}`).join(', ')}`);
  // Float rows whose length is not a multiple of 4 (F16 rows then start 2-byte aligned): per-thread, and the
  // tiled kernel's partial k step.
  for (const g of [gpu, gpuTree]) {
    for (const type of ['F32', 'F16'] as const) {
      const [gw, cw] = await weightPair(g, type, 7, 13);
      for (const n of [1, 33]) {
        const [gx, cx] = actPair(g, n, 13);
        const go = g.createAct(n, 7), co = cpu.createAct(n, 7);
        g.matmul(gx, gw, go);
        cpu.matmul(cx, cw, co);
        close(await g.readAct(go), await cpu.readAct(co), 1e-4, `matmul ${type} 13 cols n=${n}`);
      }
    }
  }
});

test('rmsNorm, swiglu, add (including outputs that alias inputs)', async () => {
  for (const g of [gpu, gpuSplit]) {
    const [gw, cw] = await weightPair(g, 'F32', 1, 72);
    const [gx, cx] = actPair(g, 3, 72);
    const go = g.createAct(3, 72), co = cpu.createAct(3, 72);
    g.rmsNorm(gx, gw, 1e-5, go);
    cpu.rmsNorm(cx, cw, 1e-5, co);
    close(await g.readAct(go), await cpu.readAct(co), 1e-5, 'rmsNorm');
    g.rmsNorm(gx, gw, 1e-5, gx);
    cpu.rmsNorm(cx, cw, 1e-5, cx);
    close(await g.readAct(gx), await cpu.readAct(cx), 1e-5, 'rmsNorm in place');
  }

  const [gg, cg] = actPair(gpu, 2, 50, randn(100, 6));
  const [gu, cu] = actPair(gpu, 2, 50);
  const gs = gpu.createAct(2, 50), cs = cpu.createAct(2, 50);
  gpu.swiglu(gg, gu, gs);
  cpu.swiglu(cg, cu, cs);
  close(await gpu.readAct(gs), await cpu.readAct(cs), 1e-5, 'swiglu');
  gpu.swiglu(gg, gu, gg);
  cpu.swiglu(cg, cu, cg);
  close(await gpu.readAct(gg), await cpu.readAct(cg), 1e-5, 'swiglu into gate');

  gpu.add(gs, gu);
  cpu.add(cs, cu);
  close(await gpu.readAct(gs), await cpu.readAct(cs), 1e-5, 'add');
  gpu.add(gs, gs);
  cpu.add(cs, cs);
  close(await gpu.readAct(gs), await cpu.readAct(cs), 1e-5, 'add to itself');
});

test('rope: adjacent and halves layouts, llama3 scaling, large positions, K-store shift', async () => {
  const llama3: RopeParams['scaling'] = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 };
  const cases: { rope: RopeParams; positions: number[]; tol: number }[] = [
    { rope: { theta: 10000, layout: 'adjacent' }, positions: [0, 1, 7, 63], tol: 2e-5 },
    { rope: { theta: 10000, layout: 'halves' }, positions: [5, 2, 99], tol: 2e-5 },
    { rope: { theta: 500000, layout: 'halves', scaling: llama3 }, positions: [3, 40, 90], tol: 2e-5 },
    { rope: { theta: 10000, layout: 'adjacent' }, positions: [1000, 4999], tol: 5e-4 },
  ];
  const hd = 16;
  for (const { rope, positions, tol } of cases) {
    const [gx, cx] = actPair(gpu, positions.length, 3 * hd);
    gpu.rope(gx, Int32Array.from(positions), hd, rope);
    cpu.rope(cx, Int32Array.from(positions), hd, rope);
    close(await gpu.readAct(gx), await cpu.readAct(cx), tol, `rope ${rope.layout} ${rope.scaling ? 'llama3' : ''} ${positions}`);
  }
  // Shift rows [2, 5) of a K store by +37 then -12.
  const width = 2 * hd;
  const data = randn(6 * width);
  const gk = gpu.createKv(6, width), ck = cpu.createKv(6, width);
  gpu.writeKv(gk, 0, data);
  cpu.writeKv(ck, 0, data);
  for (const delta of [37, -12]) {
    gpu.ropeShiftKv(gk, 2, 3, delta, hd, cases[2]!.rope);
    cpu.ropeShiftKv(ck, 2, 3, delta, hd, cases[2]!.rope);
  }
  close(await gpu.readKv(gk, 0, 6), await cpu.readKv(ck, 0, 6), 2e-5, 'ropeShiftKv');
});

test('storeKv, writeKv/readKv, copyRows', async () => {
  const [gx, cx] = actPair(gpu, 3, 8);
  const gk = gpu.createKv(10, 8), ck = cpu.createKv(10, 8);
  gpu.storeKv(gx, gk, 4);
  cpu.storeKv(cx, ck, 4);
  // A sub-range of the act's rows (a batched forward's one sequence) at another cache row.
  gpu.storeKv(gx, gk, 0, 1, 2);
  cpu.storeKv(cx, ck, 0, 1, 2);
  const extra = randn(8);
  gpu.writeKv(gk, 9, extra);
  cpu.writeKv(ck, 9, extra);
  close(await gpu.readKv(gk, 0, 10), await cpu.readKv(ck, 0, 10), 0, 'kv store');
  close(await gpu.readKv(gk, 5, 2), await cpu.readKv(ck, 5, 2), 0, 'kv rows 5..7');
  const gd = gpu.createAct(2, 8), cd = cpu.createAct(2, 8);
  gpu.copyRows!(gx, 1, 2, gd, 0);
  cpu.copyRows(cx, 1, 2, cd, 0);
  close(await gpu.readAct(gd), await cpu.readAct(cd), 0, 'copyRows');
});

test('attention: several sources, causal offsets, GQA, empty rows, lse; merge of partials', async () => {
  const [nHeads, nKv] = [4, 2];
  const cap = 160;
  // Lengths past one 64-entry tile and one split; source 2 hides everything from row 0.
  const specs = [{ length: 150 }, { length: 70, causalOffset: 66 }, { length: 5, causalOffset: -1 }, { length: 0 }];
  // gpu (emulated tuning): the per-thread kernel. gpuSplit ('gpu' tuning): 3 rows, the workgroup-per-split kernel;
  // 18 and 70 rows, the tiled kernel (70: two 64-row tiles, the second partial); head size 16 takes K/V tiles of
  // 64 entries, 128 of 16 entries (several tiles per split).
  for (const [g, rows, hd] of [[gpu, 3, 16], [gpu, 18, 16], [gpuSplit, 3, 16], [gpuSplit, 18, 16], [gpuSplit, 70, 16], [gpuSplit, 20, 128]] as const) {
    const shape = { nHeads, nKvHeads: nKv, headDim: hd };
    const width = nKv * hd;
    const make = (b: Backend, k: Float32Array, v: Float32Array) => {
      const kt = b.createKv(cap, width), vt = b.createKv(cap, width);
      b.writeKv(kt, 0, k);
      b.writeKv(vt, 0, v);
      return [kt, vt] as const;
    };
    const gs: AttnSource[] = [], cs: AttnSource[] = [];
    for (const s of specs) {
      const k = randn(cap * width), v = randn(cap * width);
      const [gk, gv] = make(g, k, v), [ck, cv] = make(cpu, k, v);
      gs.push({ k: gk, v: gv, length: s.length, causalOffset: s.causalOffset });
      cs.push({ k: ck, v: cv, length: s.length, causalOffset: s.causalOffset });
    }
    const [gq, cq] = actPair(g, rows, nHeads * hd, randn(rows * nHeads * hd, 0.7));
    const go = g.createAct(rows, nHeads * hd), co = cpu.createAct(rows, nHeads * hd);
    const gl = g.createAct(rows, nHeads), cl = cpu.createAct(rows, nHeads);
    g.attention(gq, gs, shape, go, gl);
    cpu.attention(cq, cs, shape, co, cl);
    close(await g.readAct(go), await cpu.readAct(co), 1e-4, 'attention out');
    close(await g.readAct(gl), await cpu.readAct(cl), 1e-4, 'attention lse');

    // Only the source row 0 cannot see: lse -Infinity and zero output there.
    g.attention(gq, [gs[2]!], shape, go, gl);
    cpu.attention(cq, [cs[2]!], shape, co, cl);
    const lse3 = await g.readAct(gl);
    assert.equal(lse3[0], -Infinity);
    close(lse3, await cpu.readAct(cl), 1e-4, 'empty-row lse');
    close(await g.readAct(go), await cpu.readAct(co), 1e-4, 'empty-row out');

    // Per-source partials merged (one partly empty, one fully empty) equal the joint attention.
    const gParts = gs.map((s) => {
      const o = g.createAct(rows, nHeads * hd), l = g.createAct(rows, nHeads);
      g.attention(gq, [s], shape, o, l);
      return { out: o, lse: l };
    });
    const cParts = cs.map((s) => {
      const o = cpu.createAct(rows, nHeads * hd), l = cpu.createAct(rows, nHeads);
      cpu.attention(cq, [s], shape, o, l);
      return { out: o, lse: l };
    });
    const gm = g.createAct(rows, nHeads * hd), gml = g.createAct(rows, nHeads);
    const cm = cpu.createAct(rows, nHeads * hd), cml = cpu.createAct(rows, nHeads);
    g.mergeAttention(gParts, hd, gm, gml);
    cpu.mergeAttention(cParts, hd, cm, cml);
    close(await g.readAct(gm), await cpu.readAct(cm), 1e-4, 'merged out');
    close(await g.readAct(gml), await cpu.readAct(cml), 1e-4, 'merged lse');
    g.attention(gq, gs, shape, go, gl);
    close(await g.readAct(gm), await g.readAct(go), 1e-4, 'merged vs joint');
  }
});

test('attention: row-restricted sources (block-diagonal batch of sequences) match the CPU and per-block calls', async () => {
  const [nHeads, nKv, hd] = [4, 2, 16];
  const shape = { nHeads, nKvHeads: nKv, headDim: hd };
  const width = nKv * hd;
  // Three sequences of 7, 70 (past one 64-entry tile) and 3 rows. With 80 rows they tile the batch
  // (shared split slots, each dispatched over its own rows); with 82 the last 2 rows belong to none
  // (every source dispatched over all rows, masked per row).
  const seqs = [{ row: 0, rows: 7 }, { row: 7, rows: 70 }, { row: 77, rows: 3 }];
  const anchorLen = 20;
  for (const [g, rows] of [[gpu, 80], [gpu, 82], [gpuSplit, 80], [gpuSplit, 82]] as const) {
    const pair = (len: number) => {
      const k = randn(len * width), v = randn(len * width);
      const gk = g.createKv(len, width), gv = g.createKv(len, width), ck = cpu.createKv(len, width), cv = cpu.createKv(len, width);
      g.writeKv(gk, 0, k); g.writeKv(gv, 0, v); cpu.writeKv(ck, 0, k); cpu.writeKv(cv, 0, v);
      return { g: { k: gk, v: gv }, c: { k: ck, v: cv } };
    };
    const anchor = pair(anchorLen);
    const own = seqs.map((s) => pair(s.rows));
    const mask = (s: { row: number; rows: number }) => ({ length: s.rows, causalOffset: -s.row, rows: { start: s.row, count: s.rows } });
    const gs: AttnSource[] = [{ ...anchor.g, length: anchorLen }, ...seqs.map((s, i) => ({ ...own[i]!.g, ...mask(s) }))];
    const cs: AttnSource[] = [{ ...anchor.c, length: anchorLen }, ...seqs.map((s, i) => ({ ...own[i]!.c, ...mask(s) }))];
    const q = randn(rows * nHeads * hd, 0.7);
    const [gq, cq] = actPair(g, rows, nHeads * hd, q);
    const go = g.createAct(rows, nHeads * hd), co = cpu.createAct(rows, nHeads * hd);
    const gl = g.createAct(rows, nHeads), cl = cpu.createAct(rows, nHeads);
    g.attention(gq, gs, shape, go, gl);
    cpu.attention(cq, cs, shape, co, cl);
    const out = await g.readAct(go), lse = await g.readAct(gl);
    close(out, await cpu.readAct(co), 1e-4, 'batched out');
    close(lse, await cpu.readAct(cl), 1e-4, 'batched lse');
    // Each sequence alone on the GPU (its q rows, the anchor and its own KV causally).
    for (const [i, s] of seqs.entries()) {
      const qb = g.createAct(s.rows, nHeads * hd);
      g.writeAct(qb, q.subarray(s.row * nHeads * hd, (s.row + s.rows) * nHeads * hd));
      const ob = g.createAct(s.rows, nHeads * hd), lb = g.createAct(s.rows, nHeads);
      g.attention(qb, [gs[0]!, { ...own[i]!.g, length: s.rows, causalOffset: 0 }], shape, ob, lb);
      close(out.subarray(s.row * nHeads * hd, (s.row + s.rows) * nHeads * hd), await g.readAct(ob), 1e-5, `sequence ${i} out`);
      close(lse.subarray(s.row * nHeads, (s.row + s.rows) * nHeads), await g.readAct(lb), 1e-5, `sequence ${i} lse`);
    }
  }
});

test('argmax (first index on ties) and top-p sampling draw what the CPU draws', async () => {
  const data = randn(3 * 300, 4);
  data[150] = 9; data[40] = 9; // tie in row 0: index 40 wins
  data[300 + 299] = 11;
  const [gl, cl] = actPair(gpu, 3, 300, data);
  assert.deepEqual(Array.from(await gpu.argmax(gl)), Array.from(await cpu.argmax(cl)));
  assert.equal((await gpu.argmax(gl))[0], 40);
  const [gs, cs] = actPair(gpu, 1, 300, randn(300, 3));
  for (const [temperature, topP] of [[1, 0.9], [0.7, 0.5], [1.3, 1]] as const) {
    for (const u of [0, 0.13, 0.5, 0.77, 0.999]) {
      const want = await cpu.sampleTopP(cs, temperature, topP, u);
      const got = await gpu.sampleTopP(gs, temperature, topP, u);
      assert.equal(got, want, `sampleTopP T=${temperature} p=${topP} u=${u}`);
    }
  }
});

test('a lost device surfaces as DeviceError naming the reason', async () => {
  const b = await createBackend('webgpu');
  const x = b.createAct(1, 4);
  (b as WebGpuBackend).device.destroy(); // what a driver reset looks like to the backend
  await (b as WebGpuBackend).lossRecorded;
  assert.throws(() => b.createAct(1, 4), (err: unknown) => err instanceof DeviceError && /device lost \(destroyed\)/.test(err.message));
  await assert.rejects(b.readAct(x), DeviceError);
  b.destroy();
});
