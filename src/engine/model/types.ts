import type { ByteSource } from '../io/byteSource';
import type { Tokenizer } from '../tokenizer/types';

export type Architecture = 'llama' | 'qwen2';

/** Tensor storage types the engine reads (GGML names). */
export type TensorType =
  | 'F32' | 'F16' | 'BF16'
  | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/**
 * How RoPE pairs dimensions inside a head:
 * - 'adjacent': (2i, 2i+1), GGUF `llama` (llama.cpp "normal").
 * - 'halves':   (i, i + headDim/2), Hugging Face safetensors and GGUF `qwen2` (NeoX).
 */
export type RopeLayout = 'adjacent' | 'halves';

/** Llama 3.x `rope_scaling` of type llama3: per-frequency scaling of the inverse frequencies. */
export interface Llama3RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContextLength: number;
}

export interface RopeParams {
  readonly theta: number;
  readonly layout: RopeLayout;
  readonly scaling?: Llama3RopeScaling;
}

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly dim: number; // hidden size
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly rmsEps: number;
  readonly rope: RopeParams;
  /** qwen2: q/k/v projections carry bias vectors. */
  readonly qkvBias: boolean;
  /** No separate output matrix: logits use the token embedding table. */
  readonly tiedEmbeddings: boolean;
}

/**
 * One stored tensor. `shape` is in GGML order: shape[0] is the innermost (contiguous) dimension.
 * A linear layer y = W x with W of [out, in] has shape [in, out]: `out` rows of `in` values,
 * quantization blocks running along the row. Safetensors [out, in] maps to the same layout.
 */
export interface TensorInfo {
  readonly name: string;
  readonly type: TensorType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in `source`. */
  readonly offset: number;
  readonly byteLength: number;
}

/**
 * Canonical tensor names (GGUF's), whatever the file format:
 *   token_embd.weight, output_norm.weight, output.weight (absent when tied),
 *   blk.N.attn_norm.weight, blk.N.attn_{q,k,v}.weight, blk.N.attn_{q,k,v}.bias (qwen2),
 *   blk.N.attn_output.weight, blk.N.ffn_norm.weight, blk.N.ffn_{gate,up,down}.weight
 * Q and K weights are stored so that `config.rope.layout` applies as is.
 */
export interface WeightStore {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Raw stored bytes of a tensor (still quantized). */
  read(name: string): Promise<Uint8Array>;
  /** Optional: the tensor's bytes written into `dst` (where the file's source can; see ByteSource.readInto). */
  readInto?(name: string, dst: Uint8Array): Promise<void>;
}

export interface LoadedModel {
  readonly config: ModelConfig;
  readonly weights: WeightStore;
  readonly tokenizer: Tokenizer;
  /** Jinja chat template from the file (`tokenizer.chat_template`), if any. */
  readonly chatTemplate?: string;
  /**
   * Stable identity of the weights for cache keys: format, size, a hash of the header (metadata + tensor table)
   * and a fingerprint of the tensor data (fingerprint.ts), so neither a different file of the same name nor a
   * fine-tune with the same header matches.
   */
  readonly identity: string;
  /** Display name (file or folder name). */
  readonly name: string;
  readonly format: 'gguf' | 'safetensors';
  /** Raw metadata for `star-ask info` (GGUF key-values or config.json), large arrays omitted. */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly source: ByteSource;
}
