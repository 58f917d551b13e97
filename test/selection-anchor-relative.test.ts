// Candidate-independent attention scores (src/engine/star/selection/anchorRelative.ts, measured by `bench rank`):
// the log masses equal blockLogMasses' (the two-stage ranking's), the max logits a direct scan's, and a block's
// order among others does not depend on which others are scored (unlike a softmax across candidates); reciprocal
// rank fusion from its definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockAttentionStats, fuseRanks, independentScores, type BlockAttentionStats } from '../src/engine/star/selection/anchorRelative';
import { blockLogMasses } from '../src/engine/star/selection/exactAttention';
import type { BlockKv } from '../src/engine/star/types';

const shape = { nHeads: 4, nKvHeads: 2, headDim: 8 };
const layers = 3;
const rows = 3;

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

function block(index: number, length: number, seed: number): BlockKv {
  const r = rand(seed);
  const width = shape.nKvHeads * shape.headDim;
  const t = () => Float32Array.from({ length: length * width }, r);
  return { index, start: 5, length, width, k: Array.from({ length: layers }, t), v: Array.from({ length: layers }, t) };
}

const r = rand(99);
const queries = { rows, q: Array.from({ length: layers }, () => Float32Array.from({ length: rows * shape.nHeads * shape.headDim }, r)) };

test('log masses equal blockLogMasses and a direct log-sum-exp; max logits equal a direct scan', () => {
  const kv = block(1, 7, 3);
  const stats = blockAttentionStats(kv, queries, shape, 1);
  assert.equal(stats.lse[0], undefined);
  assert.deepEqual(stats.lse.slice(1), blockLogMasses(kv, queries, shape, 1).slice(1));
  const [l, h, row] = [2, 3, 1];
  const kvHead = Math.floor(h / (shape.nHeads / shape.nKvHeads));
  let max = -Infinity;
  const logits: number[] = [];
  for (let t = 0; t < kv.length; t++) {
    let dot = 0;
    for (let i = 0; i < shape.headDim; i++) dot += queries.q[l]![row * shape.nHeads * shape.headDim + h * shape.headDim + i]! * kv.k[l]![t * kv.width + kvHead * shape.headDim + i]!;
    logits.push(dot / Math.sqrt(shape.headDim));
    max = Math.max(max, dot / Math.sqrt(shape.headDim));
  }
  assert.ok(Math.abs(stats.max[l]![h * rows + row]! - max) < 1e-12);
  // One implementation serves both (blockLogMasses is blockAttentionStats' lse), so the log mass is checked directly.
  const lse = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
  assert.ok(Math.abs(stats.lse[l]![h * rows + row]! - lse) < 1e-12);
});

test('a block\'s place among others does not depend on which others are scored', () => {
  const anchor = blockAttentionStats(block(0, 9, 1), queries, shape, 1);
  const all = new Map<number, BlockAttentionStats>();
  for (let i = 1; i <= 6; i++) all.set(i, blockAttentionStats(block(i, 4 + i, 10 + i), queries, shape, 1));
  const lengths = [9, 5, 6, 7, 8, 9, 10];
  const full = independentScores(all, anchor, lengths);
  const some = independentScores(new Map([...all].filter(([i]) => i % 2 === 0)), anchor, lengths);
  for (const kind of Object.keys(full) as (keyof typeof full)[]) {
    assert.deepEqual(some[kind], full[kind].filter((i) => i % 2 === 0), kind);
    assert.equal(new Set(full[kind]).size, 6);
  }
});

test('reciprocal rank fusion: 1/(60 + rank) summed; ties keep the first order', () => {
  assert.deepEqual(fuseRanks([[1, 2, 3], [3, 2, 1]]), [1, 2, 3].sort((a, b) => {
    const s = (i: number) => 1 / (61 + [1, 2, 3].indexOf(i)) + 1 / (61 + [3, 2, 1].indexOf(i));
    return s(b) - s(a) || [1, 2, 3].indexOf(a) - [1, 2, 3].indexOf(b);
  }));
  assert.deepEqual(fuseRanks([[4, 5, 6], [5, 6, 4]]), [5, 4, 6]);
});
