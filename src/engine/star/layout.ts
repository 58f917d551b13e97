import { EngineError } from '../errors';
import type { BlockSpec } from './types';

/** A context cut into an anchor (block 0) and blocks, plus the query that follows it. */
export interface StarLayout {
  readonly anchor: readonly number[];
  /** Block 0 is the anchor (start 0); block i > 0 starts at its global position. */
  readonly blocks: readonly BlockSpec[];
  readonly contextLength: number;
  readonly query: readonly number[];
}

/**
 * The paper's (and the golden case's) layout of a flat token sequence: context = ids[0, contextTokens),
 * anchor = its first `anchorSize` tokens (default: one chunk), the rest cut into chunks of
 * `chunkSize` (the last may be shorter); query = everything after the context.
 */
export function fixedLayout(ids: readonly number[], contextTokens: number, chunkSize: number, anchorSize = chunkSize): StarLayout {
  if (chunkSize < 1 || anchorSize < 1) throw new EngineError(`chunk and anchor sizes must be positive (got ${chunkSize}, ${anchorSize})`);
  if (contextTokens < 1 || contextTokens > ids.length) {
    throw new EngineError(`context of ${contextTokens} tokens does not fit a sequence of ${ids.length}`);
  }
  const a = Math.min(anchorSize, contextTokens);
  const anchor = ids.slice(0, a);
  const blocks: BlockSpec[] = [{ index: 0, tokens: anchor, start: 0 }];
  for (let start = a; start < contextTokens; start += chunkSize) {
    blocks.push({ index: blocks.length, tokens: ids.slice(start, Math.min(contextTokens, start + chunkSize)), start });
  }
  return { anchor, blocks, contextLength: contextTokens, query: ids.slice(contextTokens) };
}
