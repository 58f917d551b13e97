// The key bounds (the attention ranking's order beyond BM25's candidates) and the query probe on a real model
// (stories260K, CPU): Quest bounds summarised from the KV a host
// returns (src/engine/star/selection/keySummary.ts) and the question's queries from a probe over the anchor
// (queryProbe.ts). Checked against attention computed here in float64 from the blocks' own keys: every bound is
// above the block's true log-sum-exp, pages of one token make it exact (so the scores equal exact attention
// shares), and the probe's layer-0 queries equal a plain forward's (they depend on tokens and positions only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../src/node/createBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { LocalStarHost } from '../src/engine/star/localHost';
import { blockLogMassBound, keySummaryBytes, scoreSummaries, summarizeKeys, type QuestionQueries } from '../src/engine/star/selection/keySummary';
import { probeQuestionQueries } from '../src/engine/star/selection/queryProbe';
import type { BlockKv } from '../src/engine/star/types';
import { modelOpener } from './support/models';
import { readGolden } from './support/paths';

const openShared = modelOpener();
const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;

/** log-sum-exp over the block's keys of q . k / sqrt(headDim), per query head and row, in float64. */
function exactLogMass(kv: BlockKv, layer: number, queries: QuestionQueries, nHeads: number, nKvHeads: number, headDim: number): Float64Array {
  const out = new Float64Array(nHeads * queries.rows);
  const q = queries.q[layer]!;
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor((h * nKvHeads) / nHeads);
    for (let r = 0; r < queries.rows; r++) {
      const s: number[] = [];
      for (let t = 0; t < kv.length; t++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[r * nHeads * headDim + h * headDim + i]! * kv.k[layer]![t * kv.width + g * headDim + i]!;
        s.push(dot / Math.sqrt(headDim));
      }
      const m = Math.max(...s);
      out[h * queries.rows + r] = m + Math.log(s.reduce((a, x) => a + Math.exp(x - m), 0));
    }
  }
  return out;
}

test('key bounds hold against exact attention, are exact for one-token pages, and the probe matches a plain forward at layer 0 (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  const backend = await createBackend('cpu');
  const transformer = await Transformer.create(model, backend);
  const c = transformer.config;
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  const host = new LocalStarHost(transformer);
  try {
    const anchor = ids.slice(0, 32);
    const lengths = [40, 64, 23, 70];
    let at = 32;
    // Every block at the same local positions, right after the anchor: the frame the summaries are compared in.
    const specs = lengths.map((n, i) => {
      const spec = { index: i + 1, tokens: ids.slice(at, at + n), start: anchor.length };
      at += n;
      return spec;
    });
    const [anchorKv] = await host.encode(anchor, [{ index: 0, tokens: anchor, start: 0 }]);
    const kvs = await host.encode(anchor, specs);
    const question = ids.slice(400, 412);
    const position = anchor.length + 96;
    const queries = await probeQuestionQueries(transformer, [anchorKv!], question, { position });
    assert.equal(queries.q.length, c.nLayers);

    // Layer 0 depends on nothing but the tokens and positions: a forward without any context agrees.
    const cache = transformer.newCache(question.length);
    const plain: Float32Array[] = [];
    await transformer.forward(Int32Array.from(question), Int32Array.from(question, (_, i) => position + i), cache, {
      logits: 'none', observeQuery: (l, q) => { plain[l] = q.slice(); },
    });
    transformer.releaseCache(cache);
    assert.deepEqual(queries.q[0], plain[0]);
    // Later layers read the anchor: they must differ from a context-free forward (the probe's context is used).
    assert.notDeepEqual(queries.q[c.nLayers - 1], plain[c.nLayers - 1]);
    assert.equal(queries.rows, question.length);

    for (const pageSize of [1, 16, 256]) {
      const summaries = kvs.map((kv) => summarizeKeys(kv, pageSize));
      summaries.forEach((s, b) => assert.equal(s.bounds[0]!.length * 4 * c.nLayers, keySummaryBytes({ ...c }, lengths[b]!, pageSize)));
      let worst = 0;
      for (let l = 0; l < c.nLayers; l++) {
        kvs.forEach((kv, b) => {
          const exact = exactLogMass(kv, l, queries, c.nHeads, c.nKvHeads, c.headDim);
          const bound = blockLogMassBound(summaries[b]!, l, queries.q[l]!, queries.rows, shape);
          for (let v = 0; v < exact.length; v++) {
            assert.ok(bound[v]! >= exact[v]! - 1e-4, `page ${pageSize}, layer ${l}, block ${b + 1}: bound ${bound[v]} below exact ${exact[v]}`);
            if (pageSize === 1) worst = Math.max(worst, Math.abs(bound[v]! - exact[v]!));
          }
        });
      }
      if (pageSize === 1) assert.ok(worst < 1e-4, `one-token pages are exact: worst ${worst}`);
    }

    // Scores from one-token pages are exact attention shares: per (layer, head, row) a softmax over the blocks,
    // then averaged ('mean') or, per block, the best (layer, head)'s mean over rows above an even share ('head').
    const shares: number[][][] = []; // [layer][head][block], mean over rows
    for (let l = 0; l < c.nLayers; l++) {
      const masses = kvs.map((kv) => exactLogMass(kv, l, queries, c.nHeads, c.nKvHeads, c.headDim));
      shares.push(Array.from({ length: c.nHeads }, (_, h) => {
        const perBlock = new Array<number>(kvs.length).fill(0);
        for (let r = 0; r < queries.rows; r++) {
          const v = h * queries.rows + r;
          const m = Math.max(...masses.map((x) => x[v]!));
          const sum = masses.reduce((a, x) => a + Math.exp(x[v]! - m), 0);
          masses.forEach((x, b) => { perBlock[b]! += Math.exp(x[v]! - m) / sum / queries.rows; });
        }
        return perBlock;
      }));
    }
    const exactMean = kvs.map((_, b) => shares.reduce((a, layer) => a + layer.reduce((s, head) => s + head[b]!, 0), 0) / (c.nLayers * c.nHeads));
    const exactHead = kvs.map((_, b) => Math.max(...shares.flatMap((layer) => layer.map((head) => head[b]! - 1 / kvs.length))));
    const oneTokenPages = kvs.map((kv) => summarizeKeys(kv, 1));
    const mean = scoreSummaries(oneTokenPages, queries, shape, { firstLayer: 0, aggregate: 'mean' });
    for (const s of mean) assert.ok(Math.abs(s.score - exactMean[s.index - 1]!) < 1e-5, `block ${s.index}: ${s.score} vs ${exactMean[s.index - 1]}`);
    assert.ok(Math.abs(mean.reduce((a, s) => a + s.score, 0) - 1) < 1e-9);
    const head = scoreSummaries(oneTokenPages, queries, shape, { firstLayer: 0 });
    for (const s of head) assert.ok(Math.abs(s.score - exactHead[s.index - 1]!) < 1e-5, `block ${s.index}: ${s.score} vs ${exactHead[s.index - 1]}`);
    for (const scored of [mean, head]) for (let i = 1; i < scored.length; i++) assert.ok(scored[i - 1]!.score >= scored[i]!.score);
  } finally {
    await host.dispose();
  }
});
