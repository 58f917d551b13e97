import type { RopeParams } from '../../model/types';

/**
 * Inverse frequencies of one head: theta^(-2i/headDim) for i < headDim/2, with Llama 3.x scaling
 * applied exactly as Hugging Face's `_compute_llama3_parameters` does (wavelengths longer than
 * originalContextLength/lowFreqFactor are divided by `factor`, shorter than
 * originalContextLength/highFreqFactor kept, the band between interpolated smoothly).
 * Shared by every backend so the GPU tables are built from the same numbers.
 */
export function ropeInvFreq(headDim: number, rope: RopeParams): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(rope.theta, (2 * i) / headDim);
  const s = rope.scaling;
  if (!s) return inv;
  const lowFreqWavelen = s.originalContextLength / s.lowFreqFactor;
  const highFreqWavelen = s.originalContextLength / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) continue; // high frequency: unchanged
    if (wavelen > lowFreqWavelen) {
      inv[i] = f / s.factor; // low frequency: fully scaled
    } else {
      const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (f / s.factor) + smooth * f;
    }
  }
  return inv;
}

/**
 * Rotates every head of one row in place by angle `position * invFreq[i]` per pair.
 * 'adjacent' pairs (2i, 2i+1); 'halves' pairs (i, i + headDim/2).
 */
export function rotateRow(
  data: Float32Array,
  offset: number,
  width: number,
  headDim: number,
  position: number,
  invFreq: Float64Array,
  adjacent: boolean,
  cos: Float64Array,
  sin: Float64Array,
): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const a = position * invFreq[i]!;
    cos[i] = Math.cos(a);
    sin[i] = Math.sin(a);
  }
  for (let h = offset; h < offset + width; h += headDim) {
    for (let i = 0; i < half; i++) {
      const i0 = adjacent ? h + 2 * i : h + i;
      const i1 = adjacent ? i0 + 1 : i0 + half;
      const x0 = data[i0]!;
      const x1 = data[i1]!;
      const c = cos[i]!;
      const s = sin[i]!;
      data[i0] = x0 * c - x1 * s;
      data[i1] = x0 * s + x1 * c;
    }
  }
}
