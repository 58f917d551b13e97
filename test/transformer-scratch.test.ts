// The transformer's activation memory on the CPU backends: layers run in row chunks (attention, then feed-forward)
// and one scratch set serving every row count must not change a single bit of a forward's result. On the WebAssembly `cpu` (8-bit activations;
// 4-row tiles and 1-row tails sum in different orders) and on `cpu-ref`, on story_llama_q8_0 (Q8_0 matrices: the
// tiled products) with odd row counts, against the feed-forward run whole in a fresh transformer per forward.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import type { Act, Backend } from '../src/engine/backend/types';
import { WasmBackend } from '../src/engine/backend/wasm/wasmBackend';
import { EngineError } from '../src/engine/errors';
import { Transformer, type TransformerOptions } from '../src/engine/runtime/transformer';
import { spawnKernelWorker } from '../src/node/cpuKernelWorkers';
import { openModel } from '../src/node/openModel';
import { modelPath } from './support/paths';

const MODEL = 'story_llama_q8_0.gguf';
const model = await openModel(modelPath(MODEL));
after(() => model.close());

/** Deterministic ids (an LCG), none of them special tokens. */
function ids(count: number, seed: number): Int32Array {
  const out = new Int32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = 3 + (s % (model.config.vocabSize - 3));
  }
  return out;
}

/** A forward of `n` rows at positions 0.. into a cache of its own: the logits read back, and every layer's K. */
async function forward(t: Transformer, n: number, seed: number, logits: 'all' | 'last'): Promise<{ logits: Float32Array; k: Float32Array[] }> {
  const cache = t.newCache(n);
  try {
    const out = await t.forward(ids(n, seed), Int32Array.from({ length: n }, (_, i) => i), cache, { logits });
    const k = await Promise.all(cache.layers.map((l) => t.backend.readKv(l.k, 0, n)));
    return { logits: await t.backend.readAct(out!), k };
  } finally {
    t.releaseCache(cache);
  }
}

function assertBitIdentical(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.fail(`${what}: value ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Records the shape of every act a backend creates (the scratch sets' allocations). */
function recording<B extends Backend>(backend: B): { backend: B; created: { rows: number; cols: number }[] } {
  const created: { rows: number; cols: number }[] = [];
  const createAct = backend.createAct.bind(backend);
  backend.createAct = (rows: number, cols: number): Act => {
    created.push({ rows, cols });
    return createAct(rows, cols);
  };
  return { backend, created };
}

const backends: [string, () => Promise<Backend>][] = [
  ['cpu', () => WasmBackend.create({ threads: 2, spawn: spawnKernelWorker })],
  ['cpu-ref', async () => new CpuBackend()],
];
const made: Backend[] = [];
after(() => made.forEach((b) => b.destroy()));
const create = async (make: () => Promise<Backend>) => {
  const b = await make();
  made.push(b);
  return b;
};

for (const [label, make] of backends) {
  test(`${label}: layers in chunks of 8, 20 and 64 rows give the whole forward's logits and KV bit for bit (203 rows)`, async () => {
    const backend = await create(make);
    const whole = await forward(await Transformer.create(model, backend, { chunkRows: Infinity }), 203, 1, 'all');
    for (const chunkRows of [8, 20, 64]) {
      const { backend: b, created } = recording(await create(make));
      const chunked = await forward(await Transformer.create(model, b, { chunkRows }), 203, 1, 'all');
      assertBitIdentical(chunked.logits, whole.logits, `chunks of ${chunkRows}: logits`);
      chunked.k.forEach((k, l) => assertBitIdentical(k, whole.k[l]!, `chunks of ${chunkRows}: layer ${l} K`));
      const ffnActs = created.filter((a) => a.cols === model.config.ffnDim);
      assert.deepEqual(ffnActs.map((a) => a.rows), [chunkRows, chunkRows, chunkRows], `chunks of ${chunkRows}: the [rows, ffnDim] acts`);
      assert.deepEqual(created.filter((a) => a.rows > chunkRows), [{ rows: 203, cols: model.config.dim }, { rows: 203, cols: model.config.vocabSize }], `chunks of ${chunkRows}: only the residual stream and the logits have every row`);
    }
  });

  test(`${label}: one scratch set serves every row count up to its own, and grows for a larger one, bit for bit`, async () => {
    const options: TransformerOptions = { chunkRows: 20 };
    const { backend, created } = recording(await create(make));
    const shared = await Transformer.create(model, backend, options);
    // A fresh transformer per forward: its own set of exactly that many rows, nothing left by an earlier forward.
    const fresh = async (n: number, seed: number, logits: 'all' | 'last') =>
      forward(await Transformer.create(model, await create(make), options), n, seed, logits);
    const plan: [number, 'all' | 'last'][] = [[203, 'all'], [37, 'last'], [120, 'all'], [61, 'all'], [1, 'last'], [250, 'all'], [203, 'last']];
    const setsAllocated: number[] = [];
    for (const [i, [n, logits]] of plan.entries()) {
      const got = await forward(shared, n, 10 + i, logits);
      const want = await fresh(n, 10 + i, logits);
      assertBitIdentical(got.logits, want.logits, `forward ${i} (${n} rows, ${logits}): logits`);
      got.k.forEach((k, l) => assertBitIdentical(k, want.k[l]!, `forward ${i} (${n} rows): layer ${l} K`));
      setsAllocated.push(created.filter((a) => a.cols === model.config.ffnDim).length / 3);
    }
    // Each set has its gate, up and hb: one set for 203 rows, none more until 250, then one for 250.
    assert.deepEqual(setsAllocated, [1, 1, 1, 1, 1, 2, 2]);
  });

  test(`${label}: a batch of three sequences after a context cache, in chunks of 20 rows across their bounds, stores the whole batch's KV bit for bit`, async () => {
    const lengths = [37, 90, 76];
    const run = async (chunkRows: number) => {
      const t = await Transformer.create(model, await create(make), { chunkRows });
      const anchor = t.newCache(30);
      await t.forward(ids(30, 5), Int32Array.from({ length: 30 }, (_, i) => i), anchor, { logits: 'none' });
      let at = 30;
      const seqs = lengths.map((n, j) => {
        const seq = { ids: ids(n, 6 + j), positions: Int32Array.from({ length: n }, (_, i) => at + i), cache: t.newCache(n) };
        at += n;
        return seq;
      });
      await t.forwardBatch(seqs, { context: [anchor] });
      return Promise.all(seqs.map(async (q) => Promise.all(q.cache.layers.map((l) => t.backend.readKv(l.v, 0, q.ids.length)))));
    };
    const whole = await run(Infinity);
    const chunked = await run(20);
    chunked.forEach((seq, j) => seq.forEach((v, l) => assertBitIdentical(v, whole[j]![l]!, `sequence ${j} layer ${l} V`)));
  });

  test(`${label}: with a query observer (a layer's rows at once) the attention runs whole and the feed-forward in chunks, bit for bit`, async () => {
    const observedForward = async (t: Transformer, n: number, seed: number) => {
      const cache = t.newCache(n);
      const observed: Float32Array[] = [];
      const out = await t.forward(ids(n, seed), Int32Array.from({ length: n }, (_, i) => i), cache, {
        logits: 'all', observeQuery: (_layer, q, rows) => { assert.equal(rows, n); observed.push(q.slice()); },
      });
      t.releaseCache(cache);
      return { logits: await t.backend.readAct(out!), observed };
    };
    // After a larger plain forward, so the observed ones run in the set's whole-pass acts (made for 120 rows, then 203).
    const chunked = await Transformer.create(model, await create(make), { chunkRows: 20 });
    await forward(chunked, 250, 3, 'last');
    for (const [n, seed] of [[120, 21], [203, 22]] as const) {
      const got = await observedForward(chunked, n, seed);
      const want = await observedForward(await Transformer.create(model, await create(make), { chunkRows: Infinity }), n, seed);
      assertBitIdentical(got.logits, want.logits, `${n} rows: logits`);
      assert.equal(got.observed.length, model.config.nLayers);
      got.observed.forEach((q, l) => assertBitIdentical(q, want.observed[l]!, `${n} rows: layer ${l} q`));
    }
  });
}

test('a row chunk that is not a multiple of the 4-row tile is refused', async () => {
  const backend = await create(async () => new CpuBackend());
  await assert.rejects(Transformer.create(model, backend, { chunkRows: 6 }), (e: Error) => e instanceof EngineError && /multiple of 4/.test(e.message));
});
