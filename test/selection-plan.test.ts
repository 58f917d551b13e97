// The question's context plan (src/engine/star/selection/plan.ts) at its budget edges: everything fits exactly,
// one token over, an empty repository, a block larger than the whole budget, and the ranking's order against the
// placement's (repository order, contiguous after the anchor).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSelection, type PlanBlock } from '../src/engine/star/selection/plan';
import { EngineError } from '../src/engine/errors';

const blocks = (...lengths: number[]): PlanBlock[] => lengths.map((length, i) => ({ index: i + 1, length }));
// 100-token context: anchor 10 + question 5 + reserve 5 leaves 80 for blocks.
const budget = { anchorLength: 10, contextLength: 100, questionLength: 5, answerReserve: 5 };

test('everything fits exactly: every block, at its own place after the anchor, whatever the ranking', () => {
  const plan = planSelection(blocks(30, 30, 20), budget, [3, 1]);
  assert.equal(plan.all, true);
  assert.equal(plan.budget, 80);
  assert.deepEqual(plan.blocks, [{ index: 1, length: 30, start: 10 }, { index: 2, length: 30, start: 40 }, { index: 3, length: 20, start: 70 }]);
  assert.equal(plan.contextTokens, 90);
  assert.equal(plan.selectedTokens, 80);
  assert.equal(plan.totalBlockTokens, 80);
});

test('one token over: the worst-ranked block is left out, the rest placed in repository order, contiguous', () => {
  const plan = planSelection(blocks(30, 30, 21), budget, [3, 1, 2]);
  assert.equal(plan.all, false);
  assert.deepEqual(plan.blocks, [{ index: 1, length: 30, start: 10 }, { index: 3, length: 21, start: 40 }]);
  assert.equal(plan.contextTokens, 61);
  assert.deepEqual(plan.passedOver, [2]);
  assert.equal(plan.totalBlockTokens, 81);
});

test('a block passed over for its size lets a smaller, lower-ranked one in; unranked blocks fill in repository order', () => {
  const plan = planSelection(blocks(50, 40, 20, 10, 10), budget, [1, 2, 3]);
  // 1 (50) taken, 2 (40) does not fit in 30, 3 (20) does, then unranked 4 (10) fills; 5 finds no room.
  assert.deepEqual(plan.blocks.map((b) => b.index), [1, 3, 4]);
  assert.deepEqual(plan.blocks.map((b) => b.start), [10, 60, 80]);
  assert.deepEqual(plan.passedOver, [2]);
  assert.equal(plan.selectedTokens, 80);
});

test('an empty repository: nothing to attend but the anchor', () => {
  const plan = planSelection([], budget, []);
  assert.equal(plan.all, true);
  assert.deepEqual(plan.blocks, []);
  assert.equal(plan.contextTokens, 10);
});

test('a block larger than the whole budget is never attended; alone, the question reads the anchor only', () => {
  const alone = planSelection(blocks(81), budget, [1]);
  assert.equal(alone.all, false);
  assert.deepEqual(alone.blocks, []);
  assert.equal(alone.contextTokens, 10);
  assert.deepEqual(alone.passedOver, [1]);
  const beside = planSelection(blocks(200, 5), budget, [1, 2]);
  assert.deepEqual(beside.blocks, [{ index: 2, length: 5, start: 10 }]);
});

test('an anchor, question and reserve that overflow the context alone, and bad rankings, are errors naming the numbers', () => {
  assert.throws(() => planSelection(blocks(1), { ...budget, questionLength: 86 }, []), (e: unknown) => e instanceof EngineError && /question \(86\)/.test(e.message));
  // Exactly full with no block tokens left is still a plan.
  assert.equal(planSelection(blocks(1), { ...budget, questionLength: 85 }, [1]).blocks.length, 0);
  assert.throws(() => planSelection(blocks(1), budget, [7]), /block 7/);
  assert.throws(() => planSelection(blocks(1), { ...budget, answerReserve: 0 }, []), /reserve/);
  assert.throws(() => planSelection([{ index: 0, length: 3 }], budget, []), /anchor/);
});

test('thousands of blocks plan in a few milliseconds and never exceed the budget', () => {
  const many = blocks(...Array.from({ length: 5000 }, (_, i) => 50 + ((i * 37) % 200)));
  const ranking = many.map((b) => b.index).reverse();
  const plan = planSelection(many, { anchorLength: 300, contextLength: 8192, questionLength: 40, answerReserve: 512 }, ranking);
  assert.ok(plan.selectedTokens <= plan.budget && plan.selectedTokens > plan.budget - 250, `${plan.selectedTokens} of ${plan.budget}`);
  for (let i = 1; i < plan.blocks.length; i++) {
    const [a, b] = [plan.blocks[i - 1]!, plan.blocks[i]!];
    assert.ok(a.index < b.index && b.start === a.start + a.length);
  }
});
