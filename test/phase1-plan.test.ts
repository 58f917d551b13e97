// The pure halves of phase 1: planPoolUpdate (what a session's hosts keep, drop, move and are sent for a new
// layout) and planEncode (each block's key, host and key owner). RepoSession and encodeContext apply them; these
// tests drive the plans alone, edge by edge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planEncode } from '../src/engine/star/context';
import { heldAfter, isUnchanged, planPoolUpdate, type PoolState } from '../src/engine/star/poolPlan';
import type { BlockSpec } from '../src/engine/star/types';

/** Blocks with the given keys (tokens stand for them) and lengths, packed one after another after a 4-token anchor. */
function layout(keys: string[], lengths = keys.map(() => 4)): { blocks: BlockSpec[]; keys: string[] } {
  let start = 0;
  const blocks = keys.map((k, index) => {
    const spec = { index, start, tokens: Array.from({ length: lengths[index]! }, () => k.charCodeAt(0)) };
    start += lengths[index]!;
    return spec;
  });
  return { blocks, keys };
}

function known(keys: string[], hosts: number[], lengths = keys.map(() => 4)): PoolState {
  const { blocks } = layout(keys, lengths);
  return { kind: 'known', held: new Map(blocks.map((b) => [b.index, { key: keys[b.index]!, start: b.start, host: hosts[b.index]! }])) };
}

test('an empty pool is sent everything; an unknown one is cleared first', () => {
  const { blocks, keys } = layout(['A', 'b', 'c']);
  const empty = planPoolUpdate({ kind: 'empty' }, blocks, keys, true);
  assert.equal(empty.clear, false);
  assert.deepEqual(empty.needed.map((b) => b.index), [0, 1, 2]);
  const unknown = planPoolUpdate({ kind: 'unknown' }, blocks, keys, true);
  assert.equal(unknown.clear, true);
  assert.equal(unknown.needed.length, 3);
});

test('the same layout is unchanged; an edit keeps the unchanged blocks, drops the stale one, sends the new one', () => {
  const before = layout(['A', 'b', 'c', 'd']);
  const state = known(before.keys, [0, 1, 0, 1]);
  assert.ok(isUnchanged(planPoolUpdate(state, before.blocks, before.keys, true)));
  // Block 1 changed and grew by 2 tokens: 2 and 3 keep their keys but start 2 later.
  const after = layout(['A', 'B', 'c', 'd'], [4, 6, 4, 4]);
  const u = planPoolUpdate(state, after.blocks, after.keys, true);
  assert.equal(u.clear, false);
  assert.deepEqual(u.stale, [{ index: 1, host: 1 }]);
  assert.deepEqual(u.needed.map((b) => b.index), [1]);
  assert.deepEqual(u.moved, [{ from: 2, to: 2, start: 10, host: 0 }, { from: 3, to: 3, start: 14, host: 1 }]);
  const held = heldAfter(u, after.blocks, after.keys, () => 1);
  assert.equal(held.kind, 'known');
  if (held.kind === 'known') assert.deepEqual([...held.held].map(([i, h]) => [i, h.key, h.start, h.host]), [[0, 'A', 0, 0], [2, 'c', 10, 0], [3, 'd', 14, 1], [1, 'B', 4, 1]]);
});

test('a removed block renumbers the later ones; hosts that cannot rearrange are cleared instead', () => {
  const before = layout(['A', 'b', 'c']);
  const state = known(before.keys, [0, 0, 0]);
  const after = layout(['A', 'c']);
  const u = planPoolUpdate(state, after.blocks, after.keys, true);
  assert.deepEqual(u.stale, [{ index: 1, host: 0 }]);
  assert.deepEqual(u.moved, [{ from: 2, to: 1, start: 4, host: 0 }]);
  assert.equal(u.needed.length, 0);
  const rigid = planPoolUpdate(state, after.blocks, after.keys, false);
  assert.equal(rigid.clear, true);
  assert.equal(rigid.needed.length, 2);
});

test('duplicate keys: each held copy serves one block, its own index first', () => {
  const before = layout(['A', 'x', 'x']);
  const state = known(before.keys, [0, 0, 1]);
  const u = planPoolUpdate(state, before.blocks, before.keys, true);
  assert.ok(isUnchanged(u));
  const after = layout(['A', 'x', 'x', 'x']);
  const v = planPoolUpdate(state, after.blocks, after.keys, true);
  assert.deepEqual(v.needed.map((b) => b.index), [3]);
  assert.deepEqual([...v.kept].map(([to, h]) => [to, h.from]), [[0, 0], [1, 1], [2, 2]]);
});

test('planEncode: the first block with a key owns it, the others are its duplicates; every block has a host', () => {
  const { blocks, keys } = layout(['A', 'x', 'y', 'x', 'x'], [4, 8, 4, 8, 8]);
  const plan = planEncode(blocks, 2, (spec) => keys[spec.index]!);
  assert.deepEqual([...plan.sharedKeys], ['x']);
  const owned = plan.perHost.flatMap((h) => h.owned.map((b) => b.index)).sort();
  const duplicates = plan.perHost.flatMap((h) => h.duplicates.map((b) => b.index)).sort();
  assert.deepEqual(owned, [0, 1, 2]);
  assert.deepEqual(duplicates, [3, 4]);
  assert.deepEqual(plan.hostOfBlock.length, 5);
  for (const [h, { owned: o, duplicates: d }] of plan.perHost.entries()) for (const b of [...o, ...d]) assert.equal(plan.hostOfBlock[b.index], h);
  const tokens = plan.perHost.map((h) => [...h.owned, ...h.duplicates].reduce((s, b) => s + b.tokens.length, 0));
  assert.ok(Math.abs(tokens[0]! - tokens[1]!) <= 8, `balanced: ${tokens}`);
});
