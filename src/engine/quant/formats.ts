// Storage layout of each tensor type the engine reads, and GGML's numeric type ids.
// Block sizes/bytes follow ggml-common.h (block_q8_0, block_q4_0, block_q4_1, block_q5_0, block_q5_1,
// block_q2_K, block_q3_K, block_q4_K, block_q5_K, block_q6_K; QK_K = 256).
import type { TensorType } from '../model/types';

export interface TensorFormat {
  readonly type: TensorType;
  /** GGML type id as stored in GGUF tensor infos. */
  readonly ggmlId: number;
  /** Values per block (1 for plain floats). */
  readonly blockSize: number;
  readonly bytesPerBlock: number;
}

/** Super-block size of the K-quants. */
export const QK_K = 256;

export const TENSOR_FORMATS: Readonly<Record<TensorType, TensorFormat>> = {
  F32: { type: 'F32', ggmlId: 0, blockSize: 1, bytesPerBlock: 4 },
  F16: { type: 'F16', ggmlId: 1, blockSize: 1, bytesPerBlock: 2 },
  Q4_0: { type: 'Q4_0', ggmlId: 2, blockSize: 32, bytesPerBlock: 2 + 16 }, // f16 d, 32 nibbles
  Q4_1: { type: 'Q4_1', ggmlId: 3, blockSize: 32, bytesPerBlock: 2 + 2 + 16 }, // f16 d, f16 m, 32 nibbles
  Q5_0: { type: 'Q5_0', ggmlId: 6, blockSize: 32, bytesPerBlock: 2 + 4 + 16 }, // f16 d, 32 high bits, 32 nibbles
  Q5_1: { type: 'Q5_1', ggmlId: 7, blockSize: 32, bytesPerBlock: 2 + 2 + 4 + 16 }, // f16 d, f16 m, 32 high bits, 32 nibbles
  Q8_0: { type: 'Q8_0', ggmlId: 8, blockSize: 32, bytesPerBlock: 2 + 32 }, // f16 d, 32 int8
  Q2_K: { type: 'Q2_K', ggmlId: 10, blockSize: QK_K, bytesPerBlock: 16 + 64 + 2 + 2 }, // 4-bit scale|min pairs, 2-bit quants, d, dmin
  Q3_K: { type: 'Q3_K', ggmlId: 11, blockSize: QK_K, bytesPerBlock: 32 + 64 + 12 + 2 }, // hmask, 2-bit quants, 6-bit scales, d
  Q4_K: { type: 'Q4_K', ggmlId: 12, blockSize: QK_K, bytesPerBlock: 2 + 2 + 12 + 128 }, // d, dmin, 6-bit scales/mins, nibbles
  Q5_K: { type: 'Q5_K', ggmlId: 13, blockSize: QK_K, bytesPerBlock: 2 + 2 + 12 + 32 + 128 }, // d, dmin, 6-bit scales/mins, high bits, nibbles
  Q6_K: { type: 'Q6_K', ggmlId: 14, blockSize: QK_K, bytesPerBlock: 128 + 64 + 16 + 2 }, // ql, qh, int8 scales, d
  BF16: { type: 'BF16', ggmlId: 30, blockSize: 1, bytesPerBlock: 2 },
};

export const TENSOR_TYPES = Object.keys(TENSOR_FORMATS) as TensorType[];

/** Names of every GGML type id (ggml.h `enum ggml_type`), so errors can name types we do not read. */
const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64',
  29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

const BY_GGML_ID = new Map(Object.values(TENSOR_FORMATS).map((f) => [f.ggmlId, f] as const));

/** Our format for a GGML id, or undefined when the engine cannot read that type. */
export function formatForGgmlId(id: number): TensorFormat | undefined {
  return BY_GGML_ID.get(id);
}

/** "Q5_K (type 13)" or "unknown type 99": for error messages. */
export function describeGgmlType(id: number): string {
  const name = GGML_TYPE_NAMES[id];
  return name ? `${name} (type ${id})` : `unknown type ${id}`;
}

/** Whether `type` is stored in multi-value blocks (kept quantized in memory, dequantized by the kernels). */
export function isBlockQuantized(type: TensorType): boolean {
  return TENSOR_FORMATS[type].blockSize > 1;
}

export function isTensorType(name: string): name is TensorType {
  return Object.prototype.hasOwnProperty.call(TENSOR_FORMATS, name);
}

/** Bytes of `count` values stored as `type`; `count` must be a whole number of blocks. */
export function bytesFor(type: TensorType, count: number): number {
  const f = TENSOR_FORMATS[type];
  if (count % f.blockSize !== 0) throw new RangeError(`${type}: ${count} values is not a whole number of ${f.blockSize}-value blocks`);
  return (count / f.blockSize) * f.bytesPerBlock;
}

/** Bytes of one row of `cols` values (quantization blocks run along rows). */
export function bytesForRow(type: TensorType, cols: number): number {
  return bytesFor(type, cols);
}
