import type { Backend } from '../backend/types';
import type { RopeParams } from '../model/types';
import type { BlockKv } from './types';

/**
 * Moves a cached block to a new global start position by re-rotating its keys: RoPE composes,
 * R(p + d) = R(d) R(p), so K at p becomes K at p + d without re-running the model. V carries no
 * position. Not exact against a fresh encode: the block's hidden states were computed with the
 * anchor at the old distance (measured in test/star-cache.test.ts and `bench star`).
 * Runs on the backend (its ropeShiftKv), through one scratch tensor per layer.
 */
export async function shiftBlockKv(backend: Backend, kv: BlockKv, newStart: number, headDim: number, rope: RopeParams): Promise<BlockKv> {
  const delta = newStart - kv.start;
  if (delta === 0) return kv;
  const scratch = backend.createKv(kv.length, kv.width);
  try {
    const k: Float32Array[] = [];
    for (const layer of kv.k) {
      backend.writeKv(scratch, 0, layer);
      backend.ropeShiftKv(scratch, 0, kv.length, delta, headDim, rope);
      k.push(await backend.readKv(scratch, 0, kv.length));
    }
    return { ...kv, start: newStart, k };
  } finally {
    backend.release(scratch);
  }
}
