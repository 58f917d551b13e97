// The forward pass's equivalences that generation and Star Attention rely on, on real weights
// (stories260K), parameterized by backend: batched prefill equals token-by-token decode; a prompt
// split into a context cache + own cache equals one causal prefill; attention over KV split
// across two hosts and merged by log-sum-exp equals one host; cancellation stops generation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../src/engine/backend/types';
import { CancelledError } from '../../src/engine/errors';
import { generate } from '../../src/engine/runtime/generate';
import type { Transformer } from '../../src/engine/runtime/transformer';
import type { KvCache, RemoteAttention } from '../../src/engine/runtime/types';
import { loadTransformer } from './goldenSuite';
import { readGolden } from './paths';

const MODEL = 'stories260K.gguf';
const tokens = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids.slice(0, 24);
const range = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, i) => from + i);

function assertClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}

/** One causal prefill of `ids` at positions 0.., returning every row's logits and the cache. */
async function prefillAll(t: Transformer, ids: number[]): Promise<{ logits: Float32Array; cache: KvCache }> {
  const cache = t.newCache(ids.length);
  const act = await t.forward(Int32Array.from(ids), range(0, ids.length), cache, { logits: 'all' });
  return { logits: await t.backend.readAct(act!), cache };
}

/** A cache on `t`'s backend holding rows [from, to) of `src` (read from `srcBackend`). */
async function sliceCache(t: Transformer, srcBackend: Backend, src: KvCache, from: number, to: number): Promise<KvCache> {
  const out = t.newCache(to - from);
  for (let l = 0; l < src.layers.length; l++) {
    t.backend.writeKv(out.layers[l]!.k, 0, await srcBackend.readKv(src.layers[l]!.k, from, to - from));
    t.backend.writeKv(out.layers[l]!.v, 0, await srcBackend.readKv(src.layers[l]!.v, from, to - from));
  }
  out.length = to - from;
  return out;
}

/** Another host: attention of the query over its own KV, returned as (out, lse). */
function remoteHost(t: Transformer, kv: KvCache): RemoteAttention {
  const c = t.config;
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  return {
    async attend(layer, q, rows) {
      const b = t.backend;
      const qAct = b.createAct(rows, c.nHeads * c.headDim);
      const out = b.createAct(rows, c.nHeads * c.headDim);
      const lse = b.createAct(rows, c.nHeads);
      b.writeAct(qAct, q);
      b.attention(qAct, [{ k: kv.layers[layer]!.k, v: kv.layers[layer]!.v, length: kv.length }], shape, out, lse);
      const result = { out: await b.readAct(out), lse: await b.readAct(lse) };
      for (const a of [qAct, out, lse]) b.release(a);
      return result;
    },
  };
}

/**
 * Registers the suite for one backend kind. Tolerances assume f32 arithmetic; a backend with f16
 * kernels should pass `tolerance` scaled for it.
 */
export function registerTransformerTests(label: string, createBackend: () => Promise<Backend>, tolerance = 1): void {
  const created: Backend[] = [];
  const makeBackend = async () => {
    const b = await createBackend();
    created.push(b);
    return b;
  };
  after(() => created.forEach((b) => b.destroy()));

  test(`${label}: prefill of all rows at once equals token-by-token decode (logits within 1e-4)`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const { logits } = await prefillAll(t, tokens);
    const vocab = t.config.vocabSize;
    const cache = t.newCache(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const step = await t.backend.readAct((await t.forward(Int32Array.of(tokens[i]!), Int32Array.of(i), cache, { logits: 'last' }))!);
      assertClose(step, logits.subarray(i * vocab, (i + 1) * vocab), 1e-4 * tolerance, `position ${i}`);
    }
  });

  test(`${label}: prompt split into a context cache + own cache equals one causal prefill`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const vocab = t.config.vocabSize;
    const split = 15;
    const { logits } = await prefillAll(t, tokens);
    const context = t.newCache(split);
    await t.forward(Int32Array.from(tokens.slice(0, split)), range(0, split), context, { logits: 'none' });
    const own = t.newCache(tokens.length - split);
    const act = await t.forward(Int32Array.from(tokens.slice(split)), range(split, tokens.length), own, { context: [context], logits: 'all' });
    assertClose(await t.backend.readAct(act!), logits.subarray(split * vocab), 1e-4 * tolerance, 'rows after the split');
  });

  test(`${label}: context KV split across two hosts and merged by log-sum-exp equals one host (1e-5)`, async () => {
    const hostA = await loadTransformer(MODEL, await makeBackend());
    const hostB = await loadTransformer(MODEL, await makeBackend());
    const split = 16;
    const { cache: full } = await prefillAll(hostA, tokens.slice(0, split));
    const query = Int32Array.from(tokens.slice(split));
    const positions = range(split, tokens.length);

    const single = hostA.newCache(query.length);
    const expected = await hostA.backend.readAct(
      (await hostA.forward(query, positions, single, { context: [full], logits: 'all' }))!);

    // Host A keeps context rows [0, 5), host B rows [5, 16); the query and its own KV live on A.
    const local = await sliceCache(hostA, hostA.backend, full, 0, 5);
    const remote = await sliceCache(hostB, hostA.backend, full, 5, split);
    const own = hostA.newCache(query.length);
    const merged = await hostA.backend.readAct((await hostA.forward(query, positions, own, {
      context: [local], remotes: [remoteHost(hostB, remote)], logits: 'all',
    }))!);
    assertClose(merged, expected, 1e-5 * tolerance, 'merged logits');

    // Own KV written by the two-host forward equals the single-host one.
    for (let l = 0; l < hostA.config.nLayers; l++) {
      assertClose(await hostA.backend.readKv(own.layers[l]!.v, 0, query.length),
        await hostA.backend.readKv(single.layers[l]!.v, 0, query.length), 1e-5 * tolerance, `layer ${l} V`);
    }
  });

  test(`${label}: observeContextLse reports per-source lse that merge to the lse over the union`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const split = 16;
    const { cache: full } = await prefillAll(t, tokens.slice(0, split));
    const parts = [await sliceCache(t, t.backend, full, 0, 6), await sliceCache(t, t.backend, full, 6, split)];
    const query = Int32Array.from(tokens.slice(split));
    const positions = range(split, tokens.length);
    const whole: Float32Array[] = [];
    const pieces: Float32Array[][] = [];
    await t.forward(query, positions, t.newCache(query.length), {
      context: [full], logits: 'none', observeContextLse: (_l, s) => whole.push(s[0]!),
    });
    await t.forward(query, positions, t.newCache(query.length), {
      context: parts, logits: 'none', observeContextLse: (_l, s) => pieces.push(s),
    });
    assert.equal(whole.length, t.config.nLayers);
    assert.equal(pieces.length, t.config.nLayers);
    for (let l = 0; l < whole.length; l++) {
      const [a, b] = pieces[l]!;
      const union = Float32Array.from(a!, (x, i) => Math.max(x, b![i]!) + Math.log1p(Math.exp(-Math.abs(x - b![i]!))));
      assertClose(union, whole[l]!, 1e-4 * tolerance, `layer ${l} lse`);
    }
  });

  test(`${label}: cancelling the signal stops generation with CancelledError`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const controller = new AbortController();
    const got: number[] = [];
    await assert.rejects(async () => {
      for await (const id of generate(t, [1], { maxTokens: 50, temperature: 0, stopIds: new Set(), signal: controller.signal })) {
        got.push(id);
        if (got.length === 3) controller.abort();
      }
    }, CancelledError);
    assert.equal(got.length, 3);
    await assert.rejects(() => t.forward(Int32Array.of(1), Int32Array.of(0), t.newCache(1), { logits: 'last', signal: controller.signal }), CancelledError);
  });

  test(`${label}: a stop id ends generation before it is yielded, and the result says 'stop'`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
    const stopAt = golden.indexOf(13); // the first newline of the greedy story
    const it = generate(t, [1], { maxTokens: 64, temperature: 0, stopIds: new Set([13]) });
    const ids: number[] = [];
    let next = await it.next();
    for (; !next.done; next = await it.next()) ids.push(next.value);
    assert.deepEqual(ids, golden.slice(1, stopAt));
    assert.equal(next.value, 'stop');
  });

  test(`${label}: sampling is reproducible by seed, and a tiny top-p is greedy`, async () => {
    const t = await loadTransformer(MODEL, await makeBackend());
    const run = async (opts: { temperature: number; topP: number; seed: number }) => {
      const ids: number[] = [];
      for await (const id of generate(t, [1], { maxTokens: 20, stopIds: new Set(), ...opts })) ids.push(id);
      return ids;
    };
    const a = await run({ temperature: 1, topP: 0.9, seed: 7 });
    assert.deepEqual(await run({ temperature: 1, topP: 0.9, seed: 7 }), a);
    assert.notDeepEqual(await run({ temperature: 1.5, topP: 1, seed: 8 }), a);
    assert.deepEqual(await run({ temperature: 1, topP: 1e-6, seed: 3 }), tokens.slice(1, 21));
  });
}
