import { EngineError } from '../../errors';
import type { BlockKv } from '../types';
import { blockAttentionStats } from './anchorRelative';
import { scoreLogMasses, type AttentionShape, type QuestionQueries } from './keySummary';

/*
 * The second stage of the attention ranking: the question's probe queries attend exactly to a candidate block's keys
 * (as stored: every block right after the anchor, one frame for all), and the block's log attention mass per
 * (layer, query head, question row) is kept: nLayers x nHeads x rows numbers, so a block's KV can be dropped as soon
 * as it is read. The scores then come from scoreLogMasses (keySummary.ts), the scorer the key bounds use too:
 * measured on SmolLM2-135M (8 blocks, 6 questions), exact masses scored by their best (layer, head) put the block
 * holding the answer first 6 of 6 times, the bounds 2 of 6.
 */

/** Per layer from `firstLayer` on (earlier layers undefined), the block's exact log-sum-exp of q . k / sqrt(headDim), [nHeads * rows]. */
export function blockLogMasses(kv: BlockKv, queries: QuestionQueries, shape: AttentionShape, firstLayer: number): (Float64Array | undefined)[] {
  const width = shape.nKvHeads * shape.headDim;
  kv.k.forEach((k, layer) => {
    if (layer >= firstLayer && k.length !== kv.length * width) throw new EngineError(`block ${kv.index} layer ${layer}: K has ${k.length} values, expected ${kv.length} x ${width}`);
  });
  return blockAttentionStats(kv, queries, shape, firstLayer).lse;
}

/** The candidates best first by their exact log masses (blockLogMasses of each, by block index), scored by scoreLogMasses. */
export function rankByExactAttention(candidates: readonly number[], masses: ReadonlyMap<number, readonly (Float64Array | undefined)[]>, shape: AttentionShape & { readonly nLayers: number }, rows: number): { index: number; score: number }[] {
  for (const index of candidates) if (!masses.has(index)) throw new EngineError(`candidate block ${index} was not read`);
  return scoreLogMasses(candidates, shape.nLayers, shape.nHeads, rows, (b, layer, out) => {
    const m = masses.get(candidates[b]!)![layer];
    if (!m) throw new EngineError(`candidate block ${candidates[b]}'s attention was not taken at layer ${layer}`);
    out.set(m);
  });
}
