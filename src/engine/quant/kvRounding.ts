import type { KvDtype } from '../runtime/kvBytes';
import { roundToF16 } from './half';
import { roundToQ8 } from './q8Kv';

/*
 * The one place KV is rounded to what the disk cache keeps: hosts round freshly encoded blocks with it, phase 1
 * rounds re-rotated blocks with it, so a block attended to cold equals the same block read back warm. Both roundings
 * are idempotent (a rounded value rounds to itself: f16 trivially; q8 because a group's largest value becomes exactly
 * 127 x its f16 scale, which gives the same scale again), so rounding twice is harmless.
 */

/** Rounds a block's K and V ([length, width] per layer) in place to `dtype`; f32 leaves them as they are. */
export function roundKvAs(dtype: KvDtype | undefined, kv: { readonly k: readonly Float32Array[]; readonly v: readonly Float32Array[]; readonly length: number; readonly width: number }): void {
  if (dtype === undefined || dtype === 'f32') return;
  if (dtype === 'f16') {
    roundToF16(...kv.k, ...kv.v);
    return;
  }
  for (const a of [...kv.k, ...kv.v]) roundToQ8(a, kv.length, kv.width);
}

/** Whether `dtype` changes values (anything but f32): such KV is kept as a loaded block is, host-side. */
export function isRounded(dtype: KvDtype | undefined): boolean {
  return dtype !== undefined && dtype !== 'f32';
}
