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

test('one token over: the worst-ranked block is left out, the rest placed contiguous, the best last', () => {
  const plan = planSelection(blocks(30, 30, 21), budget, [3, 1, 2]);
  assert.equal(plan.all, false);
  assert.deepEqual(plan.blocks, [{ index: 1, length: 30, start: 10 }, { index: 3, length: 21, start: 40 }]);
  assert.equal(plan.contextTokens, 61);
  assert.deepEqual(plan.passedOver, [2]);
  assert.equal(plan.totalBlockTokens, 81);
});

test('a block passed over for its size lets a smaller, lower-ranked one in; unranked blocks fill, farthest from the question', () => {
  const plan = planSelection(blocks(50, 40, 20, 10, 10), budget, [1, 2, 3]);
  // 1 (50) taken, 2 (40) does not fit in 30, 3 (20) does, then unranked 4 (10) fills; 5 finds no room.
  // Placed: the fill first, then the ranked worst to best, so block 1 (the best) sits next to the question.
  assert.deepEqual(plan.blocks.map((b) => b.index), [4, 3, 1]);
  assert.deepEqual(plan.blocks.map((b) => b.start), [10, 20, 40]);
  assert.deepEqual(plan.passedOver, [2]);
  assert.equal(plan.selectedTokens, 80);
});

test('a focus: only the best-ranked blocks within it, no unranked fill, the best nearest the question', () => {
  // Room 80, focus 45: 2 (20) and 5 (10) fit, 1 (30) does not fit the 15 left, 4 (10) does; 3 is unranked.
  const plan = planSelection(blocks(30, 20, 25, 10, 10), { ...budget, focusTokens: 45 }, [2, 5, 1, 4]);
  assert.equal(plan.all, false);
  assert.deepEqual(plan.blocks.map((b) => b.index), [4, 5, 2]);
  assert.deepEqual(plan.blocks.map((b) => b.start), [10, 20, 30]);
  assert.equal(plan.selectedTokens, 40);
  assert.deepEqual(plan.passedOver, [1]);
  assert.equal(plan.budget, 80);
  // A repository that fits the room is attended whole, whatever the focus (today's Star Attention, exact).
  assert.equal(planSelection(blocks(30, 30, 20), { ...budget, focusTokens: 10 }, [1]).all, true);
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
