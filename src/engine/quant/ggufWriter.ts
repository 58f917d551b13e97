// Writes GGUF version 3: header (metadata + tensor infos), then each tensor's data at an aligned offset.
// Layout per ggml/docs/gguf.md; the inverse of model/gguf.ts. Streams through a sink so a large model
// never has to sit in memory at once.
import type { TensorType } from '../model/types';
import { ValueType, type GgufValue, type GgufValueType } from '../model/gguf';
import { bytesFor, TENSOR_FORMATS } from './formats';
import { PackedStrings } from '../util/packedStrings';

export interface GgufTensorToWrite {
  readonly name: string;
  readonly type: TensorType;
  /** GGML order: shape[0] is the row length. */
  readonly shape: readonly number[];
  /** Produces exactly bytesFor(type, product(shape)) bytes, called once, in order. */
  readonly data: () => Promise<Uint8Array>;
}

export interface GgufToWrite {
  readonly metadata: Readonly<Record<string, GgufValue>>;
  /** Types to store values with (e.g. from parseGguf); otherwise inferred (see inferType). */
  readonly metadataTypes?: Readonly<Record<string, GgufValueType>>;
  readonly tensors: readonly GgufTensorToWrite[];
  /** Data alignment (general.alignment); default 32. */
  readonly alignment?: number;
}

/** Writes the file through `sink` (called with consecutive chunks). Returns the total byte count. */
export async function writeGguf(spec: GgufToWrite, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
  const alignment = spec.alignment ?? 32;
  const metadata = { ...spec.metadata };
  if (alignment !== 32) metadata['general.alignment'] = alignment;
  const out = new ByteWriter();
  out.u32(0x46554747); // "GGUF"
  out.u32(3);
  out.u64(spec.tensors.length);
  out.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    const type = spec.metadataTypes?.[key] ?? (key === 'general.alignment' ? { type: ValueType.U32 } : inferType(key, value));
    out.string(key);
    out.u32(type.type);
    out.value(type, value, key);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of spec.tensors) {
    const size = bytesFor(t.type, t.shape.reduce((a, b) => a * b, 1));
    out.string(t.name);
    out.u32(t.shape.length);
    for (const d of t.shape) out.u64(d);
    out.u32(TENSOR_FORMATS[t.type].ggmlId);
    out.u64(offset);
    sizes.push(size);
    offset = align(offset + size, alignment);
  }
  out.pad(alignment);
  let written = out.length;
  await sink(out.finish());
  for (let i = 0; i < spec.tensors.length; i++) {
    const t = spec.tensors[i]!;
    const data = await t.data();
    if (data.byteLength !== sizes[i]) throw new Error(`GGUF writer: tensor "${t.name}" produced ${data.byteLength} bytes, expected ${sizes[i]}`);
    await sink(data);
    written += data.byteLength;
    const padding = align(written, alignment) - written; // gguf-py pads after every tensor, the last one too
    if (padding) {
      await sink(new Uint8Array(padding));
      written += padding;
    }
  }
  return written;
}

/** The whole file in memory (tests, small models). */
export async function encodeGguf(spec: GgufToWrite): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const total = await writeGguf(spec, async (c) => { chunks.push(c); });
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.byteLength; }
  return bytes;
}

/** Keys llama.cpp reads as f32 even when the value is a whole number (it rejects them stored as integers). */
const FLOAT_KEY_SUFFIXES = [
  '.rope.freq_base', '.rope.freq_scale', '.rope.scaling.factor', '.rope.scaling.attn_factor',
  '.attention.layer_norm_rms_epsilon', '.attention.layer_norm_epsilon', '.logit_scale', '.expert_weights_scale',
];

/**
 * Type for a value without a recorded type: strings, bools, f32 for llama.cpp's float keys,
 * u32/i32 integers (i64 when large), f32 otherwise.
 */
export function inferType(key: string, value: GgufValue): GgufValueType {
  if (typeof value === 'number' && FLOAT_KEY_SUFFIXES.some((s) => key.endsWith(s))) return { type: ValueType.F32 };
  if (value instanceof PackedStrings) return { type: ValueType.ARRAY, itemType: ValueType.STRING };
  if (Array.isArray(value)) {
    const items = value as GgufValue[];
    const first = items[0];
    if (first !== undefined && Array.isArray(first)) throw new Error(`GGUF writer: nested array in "${key}" needs an explicit type`);
    return { type: ValueType.ARRAY, itemType: items.length ? scalarType(items as (string | number | boolean)[]) : ValueType.U32 };
  }
  return { type: scalarType([value as string | number | boolean]) };
}

function scalarType(values: readonly (string | number | boolean)[]): number {
  if (values.every((v) => typeof v === 'string')) return ValueType.STRING;
  if (values.every((v) => typeof v === 'boolean')) return ValueType.BOOL;
  const nums = values as number[];
  if (nums.every((v) => Number.isInteger(v))) {
    if (nums.every((v) => v >= 0 && v <= 0xffffffff)) return ValueType.U32;
    if (nums.every((v) => v >= -0x80000000 && v <= 0x7fffffff)) return ValueType.I32;
    return ValueType.I64;
  }
  return ValueType.F32;
}

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private static readonly encoder = new TextEncoder();

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // reserve() may replace buf/view, so each call takes its offset before touching them.
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  u64(v: number): void { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  string(s: string): void {
    const bytes = ByteWriter.encoder.encode(s);
    this.u64(bytes.length);
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
  }
  pad(alignment: number): void { this.reserve(align(this.length, alignment) - this.length); }

  value(type: GgufValueType, value: GgufValue, key: string): void {
    if (type.type === ValueType.ARRAY && value instanceof PackedStrings) {
      if (type.itemType !== ValueType.STRING) throw new Error(`GGUF writer: "${key}" holds strings, not items of type ${type.itemType}`);
      this.u32(ValueType.STRING);
      this.u64(value.length);
      for (let i = 0; i < value.length; i++) {
        const item = value.bytes.subarray(value.offsets[i]!, value.offsets[i + 1]!);
        this.u64(item.length);
        const at = this.reserve(item.length);
        this.buf.set(item, at);
      }
      return;
    }
    if (type.type === ValueType.ARRAY) {
      if (!Array.isArray(value) || type.itemType === undefined) throw new Error(`GGUF writer: "${key}" is not an array`);
      this.u32(type.itemType);
      this.u64(value.length);
      for (const item of value as GgufValue[]) this.value({ type: type.itemType }, item, key);
      return;
    }
    this.scalar(type.type, value, key);
  }

  private scalar(type: number, v: GgufValue, key: string): void {
    const view = () => this.view;
    switch (type) {
      case ValueType.STRING: if (typeof v !== 'string') break; this.string(v); return;
      case ValueType.BOOL: { if (typeof v !== 'boolean') break; const at = this.reserve(1); view().setUint8(at, v ? 1 : 0); return; }
    }
    if (typeof v !== 'number') throw new Error(`GGUF writer: "${key}" value ${JSON.stringify(v)} does not fit type ${type}`);
    switch (type) {
      case ValueType.U8: { const at = this.reserve(1); view().setUint8(at, v); return; }
      case ValueType.I8: { const at = this.reserve(1); view().setInt8(at, v); return; }
      case ValueType.U16: { const at = this.reserve(2); view().setUint16(at, v, true); return; }
      case ValueType.I16: { const at = this.reserve(2); view().setInt16(at, v, true); return; }
      case ValueType.U32: { const at = this.reserve(4); view().setUint32(at, v, true); return; }
      case ValueType.I32: { const at = this.reserve(4); view().setInt32(at, v, true); return; }
      case ValueType.F32: { const at = this.reserve(4); view().setFloat32(at, v, true); return; }
      case ValueType.U64: { const at = this.reserve(8); view().setBigUint64(at, BigInt(v), true); return; }
      case ValueType.I64: { const at = this.reserve(8); view().setBigInt64(at, BigInt(v), true); return; }
      case ValueType.F64: { const at = this.reserve(8); view().setFloat64(at, v, true); return; }
    }
    throw new Error(`GGUF writer: "${key}" has unknown value type ${type}`);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
