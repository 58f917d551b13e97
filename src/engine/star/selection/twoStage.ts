import type { PlanBlock } from './plan';

/*
 * The attention ranking in two stages. BM25 (lexical.ts) names the candidates: the blocks sharing the question's
 * terms, best first, then the others in a fallback order (the key bounds' ranking where every block has a summary,
 * repository order otherwise), taken while their tokens stay within CANDIDATE_FACTOR times the selection's budget.
 * Then the question's probe queries attend exactly to each candidate's keys (exactAttention.ts) and the candidates
 * are ordered by that score: the model picks among the blocks the words point at, so a block that repeats the
 * question's words without answering it (a decoy) no longer wins on the words alone.
 *
 * Cost: the candidates' keys are read (from the disk cache, or encoded where missing) and scored in JS: per
 * candidate token, nLayers x nHeads x question rows dot products of headDim. The factor trades that against the
 * chance that the answer's block is not a candidate at all.
 */

/** Candidates' tokens, in multiples of the selection's budget (what fits beside the anchor, question and answer). */
export const CANDIDATE_FACTOR = 3;

/**
 * The candidates, in `order` (block indices, best first; duplicates and unknown indices ignored), then the blocks
 * it leaves out in repository order, taken while their tokens fit `maxTokens` (a block too large for what is left
 * is passed over; the first block is always taken so that there is something to rank).
 */
export function pickCandidates(blocks: readonly PlanBlock[], order: readonly number[], maxTokens: number): number[] {
  const length = new Map(blocks.map((b) => [b.index, b.length]));
  const seen = new Set<number>();
  const out: number[] = [];
  let left = maxTokens;
  for (const index of [...order, ...blocks.map((b) => b.index)]) {
    const n = length.get(index);
    if (n === undefined || seen.has(index)) continue;
    seen.add(index);
    if (n <= left || out.length === 0) {
      out.push(index);
      left -= n;
    }
  }
  return out;
}

/** The final ranking: the candidates as the exact attention ordered them, then the rest of `order`. */
export function rerank(byAttention: readonly number[], order: readonly number[]): number[] {
  const ranked = new Set(byAttention);
  return [...byAttention, ...order.filter((i) => !ranked.has(i))];
}
