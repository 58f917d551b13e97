// The tensor types llama.cpp's llama-quantize chooses for a Q4_K_M file (src/llama-quant.cpp,
// llama_tensor_get_type_impl + tensor_type_fallback), for the dense llama/qwen2 models this engine runs
// (no experts, not Falcon, no --imatrix, no overrides). Used to write real-shape test models.
import type { TensorType } from '../model/types';
import { fallbackType } from './quantize';

export interface MixTensor {
  readonly name: string;
  /** GGML order: shape[0] is the row length. */
  readonly shape: readonly number[];
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between take more bits. */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.trunc(layers / 8);
  return layer < eighth || layer >= Math.trunc((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  if (!m) throw new Error(`typeMix: ${name} has no layer number`);
  return Number(m[1]);
}

/**
 * Q4_K_M: Q4_K by default; attn_v and ffn_down Q6_K in the layers use_more_bits picks; the output matrix
 * (or, with tied embeddings, token_embd) Q6_K, or Q8_0 when its rows are not a multiple of 256; then the
 * K-quant fallbacks for rows that are not a multiple of 256 (Q4_K -> Q5_0, Q6_K -> Q8_0). Tensors of one
 * dimension (norms, biases, rope_freqs) keep `floatType`.
 */
export function q4KMType(t: MixTensor, nLayers: number, tiedEmbeddings: boolean, floatType: TensorType = 'F32'): TensorType {
  if (t.shape.filter((d) => d > 1).length < 2) return floatType;
  const cols = t.shape[0]!;
  let type: TensorType = 'Q4_K';
  if (t.name === 'output.weight' || (tiedEmbeddings && t.name === 'token_embd.weight')) {
    type = cols % 256 !== 0 ? 'Q8_0' : 'Q6_K';
  } else if (t.name.endsWith('.attn_v.weight') || t.name.endsWith('.ffn_down.weight')) {
    if (useMoreBits(layerOf(t.name), nLayers)) type = 'Q6_K';
  }
  return fallbackType(type, cols);
}
