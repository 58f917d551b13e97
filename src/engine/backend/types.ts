import type { RopeParams, TensorInfo, TensorType } from '../model/types';

/**
 * The compute interface every host implements: the CPU reference (the oracle and last-resort
 * host) and WebGPU (Dawn in Node, navigator.gpu in a browser worker). One transformer forward
 * (runtime/transformer.ts) is written once against it.
 *
 * Ops are recorded in call order. The CPU backend runs them at once; the WebGPU backend
 * records them into one command encoder and submits on flush() or on a read. Nothing an op
 * takes is read back until a read*() call, so a decode step costs one submit.
 */
export interface Backend {
  readonly kind: 'cpu' | 'webgpu';
  /** Adapter / CPU description for stats, e.g. "NVIDIA H100 (vulkan)" or "cpu (js f32)". */
  readonly deviceName: string;
  /** True when kernels use f16 arithmetic (adapter has shader-f16 and it was asked for). */
  readonly f16: boolean;
  /** Bytes of KV + activations this backend should hold at most (Star streams blocks in waves beyond it). */
  readonly memoryBudgetBytes: number;

  /** Keeps the stored (possibly quantized) bytes on the device; large tensors are split as needed. */
  uploadWeight(info: TensorInfo, bytes: Uint8Array): Promise<Weight>;
  /**
   * Optional: the same, with the backend handing `fill` the place the stored bytes go (its own memory), so a
   * tensor is read from the file once, into its final home. The transformer prefers it where the store can readInto.
   */
  uploadWeightFrom?(info: TensorInfo, fill: (dst: Uint8Array) => Promise<void>): Promise<Weight>;
  /** f32 matrix [rows, cols], row-major, zero-filled. */
  createAct(rows: number, cols: number): Act;
  /** One layer's K or V store: [capacity, width] f32 (width = nKvHeads * headDim). */
  createKv(capacity: number, width: number): KvTensor;
  release(t: Act | KvTensor | Weight): void;

  writeAct(dst: Act, data: Float32Array, rowOffset?: number): void;
  readAct(src: Act): Promise<Float32Array>;
  writeKv(dst: KvTensor, row: number, data: Float32Array): void;
  readKv(src: KvTensor, row: number, rows: number): Promise<Float32Array>;

  /** out[r] = table[ids[r]] (dequantized). */
  embed(table: Weight, ids: Int32Array, out: Act): void;
  /** out = x / rms(x) * weight, per row. */
  rmsNorm(x: Act, weight: Weight, eps: number, out: Act): void;
  /** out = x · Wᵀ (+ bias): x [n, in], W [out, in] (stored rows of `in`), out [n, out]. GEMV when n = 1. */
  matmul(x: Act, w: Weight, out: Act, bias?: Weight): void;
  /**
   * One matmul per product, all of the same x (a layer's Q, K and V; gate and up): the same results, and a backend
   * may prepare x once for all of them (the cpu kernels quantize it once).
   */
  matmulShared(x: Act, products: readonly Product[]): void;
  /** In place, per row r at position positions[r], every head of width headDim. */
  rope(x: Act, positions: Int32Array, headDim: number, rope: RopeParams): void;
  /** Rotates rows [row, row+rows) of a K store by `delta` positions (RoPE composes: R(p+d) = R(d)R(p)). */
  ropeShiftKv(k: KvTensor, row: number, rows: number, delta: number, headDim: number, rope: RopeParams): void;
  /** out = silu(gate) * up. */
  swiglu(gate: Act, up: Act, out: Act): void;
  /** a += b. */
  add(a: Act, b: Act): void;
  /**
   * Copies src rows [srcRow, srcRow + rows) (default: all of src) into dst rows [row, row + rows).
   * The sub-range lets one batched forward's K/V rows go to several sequences' caches.
   */
  storeKv(src: Act, dst: KvTensor, row: number, srcRow?: number, rows?: number): void;
  /**
   * Copies rows [srcRow, srcRow + rows) of src into dst from dstRow (same cols). Optional: the
   * transformer uses it to take the last row before the classifier and falls back to readAct +
   * writeAct (a sync) where a backend lacks it.
   */
  copyRows?(src: Act, srcRow: number, rows: number, dst: Act, dstRow: number): void;
  /**
   * Optional: rows [start, start + rows) of `a` as an Act of its own that shares a's storage (writes to either are
   * the other's). Where a backend has it, the transformer serves every row count from one scratch set and runs
   * the feed-forward in row chunks (runtime/transformer.ts); without it, one set per row count, whole.
   */
  viewRows?(a: Act, start: number, rows: number): Act;
  /**
   * Softmax attention of q [n, nHeads*headDim] over all sources together (one split-KV pass),
   * scale 1/sqrt(headDim), GQA (head h reads KV head floor(h * nKvHeads / nHeads)).
   * out [n, nHeads*headDim]; lse [n, nHeads] = natural log of the sum of exp(scaled scores),
   * -Infinity (and out = 0) for a row that sees no entry.
   */
  attention(q: Act, sources: readonly AttnSource[], shape: AttnShape, out: Act, lse?: Act): void;
  /**
   * Exact merge of partial attentions over disjoint KV sets (flash-decoding's rule):
   * lse = log Σ exp(lse_i), out = Σ exp(lse_i - lse) out_i.
   */
  mergeAttention(parts: readonly { out: Act; lse: Act }[], headDim: number, out: Act, lse?: Act): void;

  /** Index of the max of each row. */
  argmax(logits: Act): Promise<Int32Array>;
  /** Samples row 0: softmax(logits / temperature), nucleus of mass topP; `uniform` in [0,1) drives the draw. */
  sampleTopP(logits: Act, temperature: number, topP: number, uniform: number): Promise<number>;

  flush(): Promise<void>;
  destroy(): void;
}

/** One product of matmulShared: out = x · wᵀ (+ bias). */
export interface Product {
  w: Weight;
  out: Act;
  bias?: Weight;
}

export interface Weight {
  readonly name: string;
  readonly type: TensorType;
  /** Output rows (1 for vectors). */
  readonly rows: number;
  /** Values per row. */
  readonly cols: number;
}

export interface Act {
  readonly rows: number;
  readonly cols: number;
}

export interface KvTensor {
  readonly capacity: number;
  readonly width: number;
}

export interface AttnShape {
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

export interface AttnSource {
  readonly k: KvTensor;
  readonly v: KvTensor;
  /** Entries [0, length) are valid. */
  readonly length: number;
  /** If set, query row r sees only entries j <= causalOffset + r (may be negative); if not, every entry. */
  readonly causalOffset?: number;
  /**
   * If set, only query rows [start, start + count) see this source; every other row sees none of it.
   * With causalOffset this expresses a block-diagonal mask: several sequences batched as the rows
   * of one forward (Star Attention phase 1), each seeing its own KV causally and none of the others'.
   */
  readonly rows?: { readonly start: number; readonly count: number };
}
