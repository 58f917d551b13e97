import type { Act, KvTensor } from '../backend/types';

/** A sequence's KV for every layer, on one backend. Rows [0, length) are filled. */
export interface KvCache {
  readonly layers: readonly { readonly k: KvTensor; readonly v: KvTensor }[];
  readonly capacity: number;
  length: number;
}

/**
 * Attention computed on another host over its own KV (Star Attention phase 2).
 * q is the current rows' query after RoPE, [rows, nHeads*headDim]; the host returns its partial
 * output [rows, nHeads*headDim] and log-sum-exp [rows, nHeads], which the query host merges exactly.
 */
export interface RemoteAttention {
  attend(layer: number, q: Float32Array, rows: number): Promise<{ out: Float32Array; lse: Float32Array }>;
}

export interface ForwardOptions {
  /** KV every row sees in full, no causal mask (phase 1: the anchor; phase 2: this host's context blocks). */
  readonly context?: readonly KvCache[];
  /** Other hosts, merged by log-sum-exp in every layer. */
  readonly remotes?: readonly RemoteAttention[];
  /** Which rows' logits to compute. */
  readonly logits: 'none' | 'last' | 'all';
  readonly signal?: AbortSignal;
  /** Called per layer with each context cache's log-sum-exp [rows, nHeads] (attention-mass reporting). */
  readonly observeContextLse?: (layer: number, perContext: Float32Array[]) => void;
  /**
   * Called per layer with the rows' query after RoPE, [rows, nHeads*headDim] (splitting blocks into files needs it).
   * `q` is only valid during the call: copy what is kept.
   */
  readonly observeQuery?: (layer: number, q: Float32Array, rows: number) => void;
}

/** One sequence of a batched phase-1 forward (Transformer.forwardBatch). */
export interface BatchSequence {
  readonly ids: Int32Array;
  readonly positions: Int32Array;
  /** Its own cache: the rows' KV is appended at cache.length; no two sequences share one. */
  readonly cache: KvCache;
}

export interface BatchForwardOptions {
  /** KV every row of every sequence sees in full (phase 1: the anchor). */
  readonly context?: readonly KvCache[];
  readonly signal?: AbortSignal;
}
