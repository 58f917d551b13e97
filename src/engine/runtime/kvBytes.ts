// The size of a KV cache, written once: the transformer's caches, the Star hosts' memory budgets, the
// piece-keys budget, the disk cache's entries and `bench memory` all count bytes with these functions.
// Every layer holds a K and a V row of nKvHeads * headDim values per token.

/** How K and V values are stored: f32 on the backends, f32 or f16 in the disk cache. */
export type KvDtype = 'f32' | 'f16';

/**
 * The disk cache's default: f16, half the disk of f32 for a measured fidelity cost far below Star Attention's own
 * (test/kv-cache-model.test.ts, stories260K golden case: next-token KL 6e-8 against f32 entries, where Star differs
 * from global attention by 8e-5). Hosts keep freshly encoded KV rounded the same way, so warm equals cold.
 */
export const DEFAULT_KV_DTYPE: KvDtype = 'f16';

export function kvDtypeBytes(dtype: KvDtype): number {
  return dtype === 'f32' ? 4 : 2;
}

/** Bytes of K and V for `tokens` tokens in `layers` layers of rows `width` (nKvHeads * headDim) values wide. */
export function kvBytes(layers: number, tokens: number, width: number, dtype: KvDtype = 'f32'): number {
  return layers * 2 * tokens * width * kvDtypeBytes(dtype);
}

/** Bytes one token's K and V take at a model's shape: nLayers x 2 x nKvHeads x headDim x bytes per value. */
export function kvBytesPerToken(shape: { readonly nLayers: number; readonly nKvHeads: number; readonly headDim: number }, dtype: KvDtype = 'f32'): number {
  return kvBytes(shape.nLayers, 1, shape.nKvHeads * shape.headDim, dtype);
}
