import { EngineError } from '../../errors';

/*
 * Which blocks a question attends to, and where they sit. Pure arithmetic, computed before anything is
 * encoded, so the size of a repository against the model's context is known up front (no refusal after an encode).
 *
 * The model's context holds: the anchor, the attended blocks, the question, and the answer. Where every block fits
 * beside the question and the answer reserve, every block is attended at its own place (today's Star Attention,
 * exactly). Otherwise the ranking's best blocks are taken while they fit the focus (a block too large for what is
 * left is passed over, and a smaller lower-ranked one may still fit) and placed contiguous after the anchor, the
 * best-ranked last, nearest the question.
 *
 * Why a focus smaller than the room, and why best last (bench needle beyond the context, SmolLM2-135M, 8K context,
 * chunk 512, BM25): filling all ~7.7K tokens of room with the ranking's tail, in repository order, answered 0 of 2
 * needles at 1x; the best 4 blocks with the best nearest the question answered 10 of 12 at 1x-2x, read 25 MiB
 * instead of 176 per question and halved the time to first token. A small model's attention is diluted by weakly
 * related blocks and favours what is near the question (the issue-14 grid: Star found end needles, lost start ones).
 */

/** A context block (never the anchor) in repository order. */
export interface PlanBlock {
  /** Its context index (1..M; 0 is the anchor). */
  readonly index: number;
  readonly length: number;
}

export interface SelectionBudget {
  /** Tokens of the anchor (context block 0, always attended). */
  readonly anchorLength: number;
  /** The model's context length. */
  readonly contextLength: number;
  /** Tokens of the chat-formatted question. */
  readonly questionLength: number;
  /** Tokens kept free for the answer (at least 1). */
  readonly answerReserve: number;
  /**
   * The most block tokens a selection attends (blockSelection.ts's selectionFocus); absent: the whole room, and
   * blocks the ranking leaves out fill what the ranked ones leave.
   */
  readonly focusTokens?: number;
}

export interface PlacedBlock {
  readonly index: number;
  readonly length: number;
  /** Global position of its first token in the question's context. */
  readonly start: number;
}

export interface SelectionPlan {
  /** True when every block is attended (nothing was selected away). */
  readonly all: boolean;
  /** The attended blocks in placement order (every block, in repository order; a selection, the best last). */
  readonly blocks: readonly PlacedBlock[];
  /** Tokens the question's context has: anchor + attended blocks; the question starts at this position. */
  readonly contextTokens: number;
  /** Tokens available for blocks: contextLength - anchor - question - answer reserve. */
  readonly budget: number;
  /** Tokens of every block (not the anchor). */
  readonly totalBlockTokens: number;
  /** Tokens of the attended blocks. */
  readonly selectedTokens: number;
  /** Blocks in the ranking that did not fit, best first. */
  readonly passedOver: readonly number[];
}

/**
 * Plans the question's context. `ranking` lists block indices best first; blocks it leaves out follow in
 * repository order (a lexical ranking leaves out the blocks sharing no term with the question: they still fill
 * room that would otherwise stay empty). An anchor, question and reserve that alone overflow the context are an
 * EngineError naming the numbers; a block larger than the whole budget is never attended.
 */
export function planSelection(blocks: readonly PlanBlock[], budget: SelectionBudget, ranking: readonly number[]): SelectionPlan {
  const { anchorLength, contextLength, questionLength, answerReserve } = budget;
  if (answerReserve < 1) throw new EngineError(`the answer reserve must be at least 1 token, got ${answerReserve}`);
  const room = contextLength - anchorLength - questionLength - answerReserve;
  if (room < 0) {
    throw new EngineError(`the anchor (${anchorLength} tokens), the question (${questionLength}) and the answer's ${answerReserve} tokens ` +
      `exceed the model's context of ${contextLength} tokens`);
  }
  const byIndex = new Map<number, PlanBlock>();
  let total = 0;
  for (const b of blocks) {
    if (b.index < 1) throw new EngineError(`block index ${b.index}: the anchor (0) is not a selectable block`);
    if (byIndex.has(b.index)) throw new EngineError(`block index ${b.index} appears twice`);
    byIndex.set(b.index, b);
    total += b.length;
  }
  for (const index of ranking) if (!byIndex.has(index)) throw new EngineError(`the ranking names block ${index}, which the repository does not have`);
  if (total <= room) return place(blocks, anchorLength, room, total, true, []);

  const chosen = new Set<number>();
  const passedOver: number[] = [];
  const focused = budget.focusTokens !== undefined;
  let left = Math.min(room, Math.max(0, budget.focusTokens ?? room));
  const consider = (index: number): void => {
    const b = byIndex.get(index);
    if (!b || chosen.has(index)) return;
    if (b.length <= left) {
      chosen.add(index);
      left -= b.length;
    } else passedOver.push(index);
  };
  const ranked = new Set<number>();
  for (const index of ranking) {
    if (ranked.has(index)) continue;
    ranked.add(index);
    consider(index);
  }
  if (!focused) for (const b of blocks) if (!ranked.has(b.index)) consider(b.index);
  // Unranked fill first (farthest from the question), then the ranked blocks worst to best.
  const selected = blocks.filter((b) => chosen.has(b.index) && !ranked.has(b.index))
    .concat([...ranked].filter((i) => chosen.has(i)).reverse().map((i) => byIndex.get(i)!));
  return place(selected, anchorLength, room, total, false, passedOver.filter((i) => ranked.has(i)));
}

function place(selected: readonly PlanBlock[], anchorLength: number, room: number, total: number, all: boolean, passedOver: number[]): SelectionPlan {
  const placed: PlacedBlock[] = [];
  let at = anchorLength;
  for (const b of selected) {
    placed.push({ index: b.index, length: b.length, start: at });
    at += b.length;
  }
  return { all, blocks: placed, contextTokens: at, budget: room, totalBlockTokens: total, selectedTokens: at - anchorLength, passedOver };
}
