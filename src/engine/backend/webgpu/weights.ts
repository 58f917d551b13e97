import { UnsupportedError } from '../../errors';
import type { TensorType } from '../../model/types';
import { TENSOR_FORMATS } from '../../quant/formats';

/*
 * How a weight lives on the GPU: the stored ggml blocks, kept quantized, with quant blocks padded
 * to a whole number of u32 words so no field straddles a word (kernels/dequant.wgsl documents the
 * padded layouts). Float types keep their bytes as they are. A tensor larger than one storage
 * binding may hold is split by rows into parts, each its own buffer.
 */

/** Bytes of one block on the device (ggml's, padded to a multiple of 4). */
const DEVICE_BLOCK_BYTES: Readonly<Record<TensorType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  Q8_0: 36,
  Q4_0: 20,
  Q4_1: 20,
  Q5_0: 24,
  Q5_1: 24,
  Q2_K: 84,
  Q3_K: 112,
  Q4_K: 144,
  Q5_K: 176,
  Q6_K: 212,
};

/** Bytes of one row of `cols` values on the device. */
export function deviceRowBytes(type: TensorType, cols: number): number {
  const f = TENSOR_FORMATS[type];
  if (cols % f.blockSize !== 0) {
    throw new UnsupportedError(`${type} rows of ${cols} values are not a whole number of ${f.blockSize}-value blocks`);
  }
  return (cols / f.blockSize) * DEVICE_BLOCK_BYTES[type];
}

export interface WeightPartPlan {
  readonly rowStart: number;
  readonly rows: number;
}

/** Splits `rows` rows of `rowBytes` so that each part fits `maxBytes` (one storage binding). */
export function planParts(rows: number, rowBytes: number, maxBytes: number): WeightPartPlan[] {
  // Round each part's byte size up to a word: keep a margin of 4 bytes under the limit.
  const perPart = Math.floor((maxBytes - 4) / rowBytes);
  if (perPart < 1) {
    throw new UnsupportedError(`one weight row of ${rowBytes} bytes exceeds the GPU's storage binding limit of ${maxBytes} bytes`);
  }
  const parts: WeightPartPlan[] = [];
  for (let r = 0; r < rows; r += perPart) parts.push({ rowStart: r, rows: Math.min(perPart, rows - r) });
  return parts;
}

/**
 * The device bytes of rows [rowStart, rowStart + rows) of a stored tensor, padded to a multiple of 4.
 * `stored` holds the tensor's bytes exactly as ggml stores them.
 */
export function packRows(type: TensorType, cols: number, stored: Uint8Array, rowStart: number, rows: number): Uint8Array {
  const f = TENSOR_FORMATS[type];
  const srcRow = (cols / f.blockSize) * f.bytesPerBlock;
  const dstRow = deviceRowBytes(type, cols);
  const size = Math.max(4, Math.ceil((rows * dstRow) / 4) * 4);
  const src = stored.subarray(rowStart * srcRow, (rowStart + rows) * srcRow);
  if (f.bytesPerBlock === DEVICE_BLOCK_BYTES[type]) {
    const out = new Uint8Array(size);
    out.set(src);
    return out;
  }
  const out = new Uint8Array(size);
  const blocks = (rows * cols) / f.blockSize;
  const sb = f.bytesPerBlock;
  const db = DEVICE_BLOCK_BYTES[type];
  for (let b = 0; b < blocks; b++) {
    const s = b * sb;
    const d = b * db;
    switch (type) {
      case 'Q8_0':
      case 'Q4_0':
      case 'Q5_0':
        // [f16 d][data] -> [f16 d][2 pad][data]
        out[d] = src[s]!;
        out[d + 1] = src[s + 1]!;
        out.set(src.subarray(s + 2, s + sb), d + 4);
        break;
      case 'Q3_K':
      case 'Q6_K':
        // Q3_K hmask, qs, scales, d / Q6_K ql, qh, scales, d: only the trailing pad differs.
        out.set(src.subarray(s, s + sb), d);
        break;
      default:
        throw new UnsupportedError(`no device layout for ${type}`);
    }
  }
  return out;
}
