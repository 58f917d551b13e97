// Safetensors header parsing and Hugging Face -> canonical (GGUF) tensor names.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then data;
// offsets are relative to the end of the header. Shapes are row-major [out, in]; ours are GGML order [in, out].
import type { ByteSource } from '../io/byteSource';
import type { TensorInfo, TensorType } from './types';
import { FormatError, UnsupportedError } from '../errors';
import { bytesFor } from '../quant/formats';

export interface SafetensorsHeader {
  /** Tensors by their stored (HF) names, offsets absolute in the source. */
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  /** The 8 length bytes + JSON header, for identity hashing. */
  readonly headerBytes: Uint8Array;
}

const DTYPES: Record<string, TensorType> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };
const MAX_HEADER = 100 * 1024 * 1024;

/** Reads the header of one .safetensors file; `base` is added to every offset (for shards concatenated into one source). */
export async function parseSafetensors(source: ByteSource, base = 0, size = source.size, name = source.name): Promise<SafetensorsHeader> {
  if (size < 8) throw new FormatError(`not a safetensors file: only ${size} bytes`, name);
  const lenBytes = await source.read(base, 8);
  const headerLength = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER || 8 + headerLength > size) {
    throw new FormatError(`not a safetensors file or truncated: header length ${headerLength} does not fit in ${size} bytes`, name);
  }
  const jsonBytes = await source.read(base + 8, headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(jsonBytes)) as Record<string, unknown>;
  } catch (err) {
    throw new FormatError(`safetensors header is not valid JSON (${(err as Error).message})`, name);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new FormatError('safetensors header is not a JSON object', name);
  const dataStart = base + 8 + headerLength;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') { metadata = value as Record<string, string>; continue; }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof v.dtype === 'string' ? v.dtype : String(v.dtype);
    const type = DTYPES[dtype];
    if (!type) throw new UnsupportedError(`tensor "${key}" has dtype ${dtype}, which this engine cannot read (supported: F32, F16, BF16)`, name);
    const shape = v.shape;
    const offsets = v.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw new FormatError(`tensor "${key}" has a malformed shape or data_offsets`, name);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const byteLength = bytesFor(type, count);
    if (end - begin !== byteLength) throw new FormatError(`tensor "${key}" spans ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${byteLength}`, name);
    if (dataStart + end > base + size) {
      throw new FormatError(`truncated file: tensor "${key}" ends at byte ${8 + headerLength + end} but the file has ${size} bytes`, name);
    }
    const ggmlShape = shape.length ? [...(shape as number[])].reverse() : [1];
    tensors.set(key, { name: key, type, shape: ggmlShape, offset: dataStart + begin, byteLength });
  }
  const headerBytes = new Uint8Array(8 + headerLength);
  headerBytes.set(lenBytes);
  headerBytes.set(jsonBytes, 8);
  return { tensors, metadata, headerBytes };
}

const LAYER_NAMES: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** Canonical name of an HF Llama/Qwen2 tensor, or undefined for tensors the engine does not use (e.g. rotary inv_freq). */
export function canonicalTensorName(hfName: string): string | undefined {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return undefined;
  const rest = LAYER_NAMES[m[2]!];
  return rest ? `blk.${m[1]}.${rest}` : undefined;
}

/**
 * Renames HF tensors to canonical names. With tied embeddings, the one stored matrix (HF may keep either
 * `model.embed_tokens.weight` or only `lm_head.weight`, as story_hf does) becomes token_embd.weight and
 * no output.weight is exposed.
 */
export function canonicalTensors(hf: ReadonlyMap<string, TensorInfo>, tied: boolean, file: string): Map<string, TensorInfo> {
  const out = new Map<string, TensorInfo>();
  for (const [hfName, info] of hf) {
    const name = canonicalTensorName(hfName);
    if (!name) continue;
    if (out.has(name)) throw new FormatError(`two tensors map to "${name}" (one is "${hfName}")`, file);
    out.set(name, { ...info, name });
  }
  if (tied) {
    const lmHead = out.get('output.weight');
    out.delete('output.weight');
    if (!out.has('token_embd.weight') && lmHead) out.set('token_embd.weight', { ...lmHead, name: 'token_embd.weight' });
  }
  return out;
}
