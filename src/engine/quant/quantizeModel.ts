// Re-encodes a GGUF model's weight matrices to one target type, as llama.cpp's llama-quantize does:
// 2-D weights take the target type (or its fallback when the row length does not fit its blocks);
// 1-D tensors (norms, biases, rope_freqs) stay as stored. No importance matrix, no per-layer mixes.
import type { ByteSource } from '../io/byteSource';
import type { TensorInfo, TensorType } from '../model/types';
import type { GgufHeader } from '../model/gguf';
import { ValueType } from '../model/gguf';
import type { GgufToWrite } from './ggufWriter';
import { dequantize } from './dequantize';
import { quantize, fallbackType } from './quantize';

export interface QuantizedTensorPlan {
  readonly name: string;
  readonly from: TensorType;
  readonly to: TensorType;
  /** Set when `to` differs from the requested type because rows do not fit its blocks. */
  readonly fallbackFrom?: TensorType;
}

/**
 * llama.cpp's `enum llama_ftype` value for a file that is mostly `type` (general.file_type). A single-type
 * K-quant file has no exact ftype; like Q4_K (Q4_K_M), Q3_K and Q5_K take their _M mix's value.
 */
const FILE_TYPE: Record<TensorType, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 12, Q4_K: 15, Q5_K: 17, Q6_K: 18, BF16: 32,
};

export function planQuantization(tensors: readonly TensorInfo[], target: TensorType): QuantizedTensorPlan[] {
  return tensors.map((t) => {
    const isMatrix = t.shape.filter((d) => d > 1).length >= 2;
    if (!isMatrix) return { name: t.name, from: t.type, to: t.type };
    const to = fallbackType(target, t.shape[0]!);
    return to === target ? { name: t.name, from: t.type, to } : { name: t.name, from: t.type, to, fallbackFrom: target };
  });
}

/** What to hand to writeGguf: the same metadata (plus file type) and tensors re-encoded per the plan. */
export function quantizedGguf(source: ByteSource, header: GgufHeader, target: TensorType): { spec: GgufToWrite; plan: QuantizedTensorPlan[] } {
  const plan = planQuantization(header.tensors, target);
  const metadata = { ...header.metadata, 'general.file_type': FILE_TYPE[target] };
  const metadataTypes = { ...header.metadataTypes, 'general.file_type': { type: ValueType.U32 } };
  const quantized = target !== 'F32' && target !== 'F16' && target !== 'BF16';
  if (quantized) {
    Object.assign(metadata, { 'general.quantization_version': 2 });
    Object.assign(metadataTypes, { 'general.quantization_version': { type: ValueType.U32 } });
  }
  const tensors = header.tensors.map((t, i) => ({
    name: t.name,
    type: plan[i]!.to,
    shape: t.shape,
    data: async (): Promise<Uint8Array> => {
      const stored = await source.read(t.offset, t.byteLength);
      if (plan[i]!.to === t.type) return stored;
      const count = t.shape.reduce((a, b) => a * b, 1);
      return quantize(plan[i]!.to, dequantize(t.type, stored, count));
    },
  }));
  return { spec: { metadata, metadataTypes, tensors, alignment: header.alignment }, plan };
}
