// Shared shapes of the Star Attention engine. Everything here is plain data (numbers, arrays,
// typed arrays) so it can cross a worker/webview message boundary unchanged.
import type { KvDtype } from '../runtime/kvBytes';

/**
 * The position scheme every block's KV is computed under; part of every cache key.
 * - The anchor (the first `a` context tokens) sits at positions 0..a-1. Its KV is computed once
 *   per host and handed to every block's forward as `context` (seen in full, never stored with
 *   a block); it is also context block 0, which keeps its own KV.
 * - Block i > 0 is encoded as the causal sequence [anchor ; block i] with its tokens at their
 *   GLOBAL position ids (start .. start+len-1), leaving a gap after the anchor, as in the paper.
 * - Phase 2 query tokens continue after the whole context: n, n+1, ...
 */
export const POSITION_SCHEME = 'star-v1/anchor-0..a-1-as-context/block-global-ids';

/** One context block as phase 1 encodes it. Block 0 is the anchor itself (start 0). */
export interface BlockSpec {
  /** Index in the context (0 = the anchor). */
  readonly index: number;
  readonly tokens: readonly number[];
  /** Global position id of the block's first token. */
  readonly start: number;
  /**
   * The precision the block's KV is kept and returned in (default 'f32'): the disk cache's (f16, q8) when it rounds, so
   * a freshly encoded block answers exactly as it will when loaded from the cache (a warm run equals a cold one).
   */
  readonly kvDtype?: KvDtype;
}

/** One block's KV for every layer (K already rotated for positions start..start+length-1). */
export interface BlockKv {
  readonly index: number;
  readonly start: number;
  readonly length: number;
  /** nKvHeads * headDim. */
  readonly width: number;
  /** Per layer, [length, width] row-major. */
  readonly k: Float32Array[];
  readonly v: Float32Array[];
}

/** A host's attention over all of its blocks for some query rows. */
export interface HostAttention {
  /** [rows, nHeads*headDim] */
  readonly out: Float32Array;
  /** [rows, nHeads]; -Infinity for a row that saw nothing (a host with no blocks). */
  readonly lse: Float32Array;
  /** Per block, when asked for: its own log-sum-exp [rows, nHeads] (attention-mass reporting). */
  readonly blocks?: readonly { readonly index: number; readonly lse: Float32Array }[];
}
