// The size of a KV cache, written once: the transformer's caches, the Star hosts' memory budgets, the
// piece-keys budget, the disk cache's entries and `bench memory` all count bytes with these functions.
// Every layer holds a K and a V row of nKvHeads * headDim values per token.
import { q8TensorBytes } from '../quant/q8Kv';

/**
 * How K and V values are stored: f32 on the backends; f32, f16 or q8 (llama.cpp's q8_0 layout, quant/q8Kv.ts) in
 * the disk cache.
 */
export type KvDtype = 'f32' | 'f16' | 'q8';

/** The disk cache's storage types, as settings and options name them. */
export const KV_DTYPES: readonly KvDtype[] = ['f32', 'f16', 'q8'];

/**
 * The disk cache's default: f16, half the disk of f32 for a measured fidelity cost far below Star Attention's own
 * (test/kv-cache-model.test.ts, stories260K golden case: next-token KL 6e-8 against f32 entries, where Star differs
 * from global attention by 8e-5). Hosts keep freshly encoded KV rounded the same way, so warm equals cold.
 */
export const DEFAULT_KV_DTYPE: KvDtype = 'f16';

/** A dtype, or 'auto': kvDtypeFor's choice from where the repository's blocks are encoded. */
export type KvDtypeSetting = KvDtype | 'auto';

/**
 * 'auto': f16 where the repository fits the model's context (every block attended, at its global position), q8
 * where it does not (blocks encoded at local positions, a question attends to a selection). Beyond the context the
 * disk is what limits (SmolLM2-135M: 23,040 bytes per token at f16, 12,240 at q8, so a 4 GiB cache holds 186K or
 * 351K tokens), and q8's cost is measured against local positions' own (README, "Disk"). The dtype is part of the
 * cache key: a repository that grows past the context encodes its blocks once more (its f16 entries are other keys).
 */
export function kvDtypeFor(setting: KvDtypeSetting | undefined, positions: 'global' | 'local'): KvDtype {
  if (setting !== undefined && setting !== 'auto') return setting;
  return positions === 'local' ? 'q8' : DEFAULT_KV_DTYPE;
}

/** Bytes of one [rows, width] K or V tensor stored as `dtype` (q8: a 2-byte scale per group of 32 values of a row). */
export function kvTensorBytes(rows: number, width: number, dtype: KvDtype): number {
  if (dtype === 'q8') return q8TensorBytes(rows, width);
  return rows * width * (dtype === 'f32' ? 4 : 2);
}

/** Bytes of K and V for `tokens` tokens in `layers` layers of rows `width` (nKvHeads * headDim) values wide. */
export function kvBytes(layers: number, tokens: number, width: number, dtype: KvDtype = 'f32'): number {
  return layers * 2 * kvTensorBytes(tokens, width, dtype);
}

/** Bytes one token's K and V take at a model's shape: nLayers x 2 x nKvHeads x headDim x bytes per value. */
export function kvBytesPerToken(shape: { readonly nLayers: number; readonly nKvHeads: number; readonly headDim: number }, dtype: KvDtype = 'f32'): number {
  return kvBytes(shape.nLayers, 1, shape.nKvHeads * shape.headDim, dtype);
}
