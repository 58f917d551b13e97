// GGUF v2/v3 header parser: metadata key-values, tensor table, alignment. Reads only the header bytes from
// a ByteSource, growing its read window as needed; tensor data is never touched here.
// Spec: ggml/docs/gguf.md. Hand-written rather than @huggingface/gguf because that library reads through
// fetch()/Range requests in fixed 2 MB chunks and throws generic errors; here every error names the file
// and what is wrong (magic, version, truncation, tensor type, tensor extent).
import type { ByteSource } from '../io/byteSource';
import type { TensorInfo } from './types';
import { FormatError, UnsupportedError } from '../errors';
import { describeGgmlType, formatForGgmlId, bytesFor, TENSOR_TYPES } from '../quant/formats';
import { PackedStrings, PackedStringsBuilder } from '../util/packedStrings';

/** Arrays of more than PACKED_STRINGS_FROM strings (vocabularies, merges) come as PackedStrings, not JS strings. */
export type GgufValue = string | number | boolean | string[] | number[] | boolean[] | PackedStrings | GgufValue[];

export const PACKED_STRINGS_FROM = 65;

export interface GgufHeader {
  readonly version: number;
  /** Metadata as plain JS values; uint64/int64 become numbers (exact up to 2^53). */
  readonly metadata: Record<string, GgufValue>;
  /** Tensors in file order, offsets absolute in the source. */
  readonly tensors: TensorInfo[];
  readonly alignment: number;
  /** Absolute offset of the tensor data section (end of header, padded to alignment). */
  readonly dataOffset: number;
  /** Bytes 0..dataOffset: metadata + tensor table, for identity hashing. */
  readonly headerBytes: Uint8Array;
  /** The stored GGUF value type of each key, so a rewritten file keeps them (see ggufWriter). */
  readonly metadataTypes: Record<string, GgufValueType>;
}

/** A GGUF value type: scalar type id, or an array with its item type id. */
export type GgufValueType = { readonly type: number; readonly itemType?: number };

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT = 32;
const MAX_ARRAY_LENGTH = 16 * 1024 * 1024;
const MAX_DIMS = 4;

export enum ValueType { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

/** Sequential little-endian reader over a ByteSource with a window that grows on demand. */
class HeaderReader {
  private bytes = new Uint8Array(0);
  private view = new DataView(this.bytes.buffer);
  pos = 0;

  constructor(private readonly source: ByteSource, private chunk: number) {}

  /** Makes bytes [pos, pos + n) available; a read past the end of the file means a truncated header. */
  async need(n: number, what: string): Promise<void> {
    const end = this.pos + n;
    if (end <= this.bytes.length) return;
    if (end > this.source.size) {
      throw new FormatError(`truncated GGUF header: ${what} at byte ${this.pos} runs past the end of the file (${this.source.size} bytes)`, this.source.name);
    }
    // Grow geometrically so a 10 MB vocabulary takes a handful of reads, not thousands.
    while (this.chunk < end - this.bytes.length) this.chunk *= 2;
    const want = Math.min(this.source.size, Math.max(end, this.bytes.length + this.chunk));
    const more = await this.source.read(this.bytes.length, want - this.bytes.length);
    const grown = new Uint8Array(want);
    grown.set(this.bytes);
    grown.set(more, this.bytes.length);
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
    this.chunk *= 2;
  }

  /** A u32 already read (at < pos). */
  peekU32(at: number): number {
    return this.view.getUint32(at, true);
  }

  prefix(end: number): Uint8Array {
    return this.bytes.slice(0, end);
  }

  async u32(what: string): Promise<number> {
    await this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  async u64(what: string): Promise<number> {
    await this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError(`${what} is implausibly large (${v}) at byte ${this.pos - 8}`, this.source.name);
    }
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const length = await this.u64(`${what} length`);
    await this.need(length, what);
    const s = decoder.decode(this.bytes.subarray(this.pos, this.pos + length));
    this.pos += length;
    return s;
  }

  /**
   * The next scalar where its bytes are already in the window, else undefined (then the async path reads it). An
   * array's items go this way: a 150K-token vocabulary read item by item through await made some 300K promises,
   * garbage that grew the young generation by tens of MB, which stayed in RSS while the model ran.
   */
  scalarInWindow(type: ValueType): string | number | boolean | undefined {
    if (type === ValueType.STRING) {
      if (this.pos + 8 > this.bytes.length) return undefined;
      const length = this.view.getUint32(this.pos, true);
      if (this.view.getUint32(this.pos + 4, true) !== 0 || length > this.bytes.length - this.pos - 8) return undefined;
      const start = this.pos + 8;
      this.pos = start + length;
      return decoder.decode(this.bytes.subarray(start, this.pos));
    }
    const size = SCALAR_SIZE[type];
    if (size === undefined || this.pos + size > this.bytes.length) return undefined;
    return this.scalarAt(type, 'array item');
  }

  /** `count` strings into one buffer; awaits only where the window runs out. */
  private async packedStrings(count: number, what: string): Promise<PackedStrings> {
    const out = new PackedStringsBuilder(count, count * 8, decodeLoose);
    for (let i = 0; i < count; i++) {
      if (this.pos + 8 > this.bytes.length) await this.need(8, `${what} length`);
      const length = this.view.getUint32(this.pos, true) + this.view.getUint32(this.pos + 4, true) * 2 ** 32;
      if (length > Number.MAX_SAFE_INTEGER) throw new FormatError(`${what} length is implausibly large (${length}) at byte ${this.pos}`, this.source.name);
      this.pos += 8;
      if (this.pos + length > this.bytes.length) await this.need(length, what);
      out.add(this.bytes, this.pos, this.pos + length);
      this.pos += length;
    }
    return out.finish();
  }

  async scalar(type: ValueType, what: string): Promise<string | number | boolean> {
    const size = SCALAR_SIZE[type];
    if (type === ValueType.STRING) return this.string(what);
    if (size === undefined) throw new FormatError(`${what} has unknown value type ${type}`, this.source.name);
    await this.need(size, what);
    return this.scalarAt(type, what);
  }

  /** The scalar at pos, whose bytes are in the window. */
  private scalarAt(type: ValueType, what: string): number | boolean {
    const size = SCALAR_SIZE[type]!;
    const p = this.pos;
    const v = this.view;
    this.pos += size;
    switch (type) {
      case ValueType.U8: return v.getUint8(p);
      case ValueType.I8: return v.getInt8(p);
      case ValueType.U16: return v.getUint16(p, true);
      case ValueType.I16: return v.getInt16(p, true);
      case ValueType.U32: return v.getUint32(p, true);
      case ValueType.I32: return v.getInt32(p, true);
      case ValueType.F32: return v.getFloat32(p, true);
      case ValueType.BOOL: return v.getUint8(p) !== 0;
      case ValueType.U64: return Number(v.getBigUint64(p, true));
      case ValueType.I64: return Number(v.getBigInt64(p, true));
      case ValueType.F64: return v.getFloat64(p, true);
      default: throw new FormatError(`${what} has unknown value type ${type}`, this.source.name);
    }
  }

  async value(type: ValueType, what: string, depth = 0): Promise<GgufValue> {
    if (type !== ValueType.ARRAY) return this.scalar(type, what);
    if (depth > 2) throw new FormatError(`${what}: arrays nested too deeply`, this.source.name);
    const itemType = (await this.u32(`${what} array type`)) as ValueType;
    const count = await this.u64(`${what} array length`);
    if (count > MAX_ARRAY_LENGTH) throw new FormatError(`${what}: array of ${count} items is implausibly long`, this.source.name);
    if (itemType === ValueType.STRING && count >= PACKED_STRINGS_FROM) return this.packedStrings(count, what);
    const fixed = SCALAR_SIZE[itemType];
    if (fixed !== undefined) await this.need(fixed * count, what); // one read for numeric arrays
    const items: GgufValue[] = [];
    for (let i = 0; i < count; i++) {
      const item = itemType === ValueType.ARRAY ? undefined : this.scalarInWindow(itemType);
      items.push(item !== undefined ? item : await this.value(itemType, what, depth + 1));
    }
    return items as GgufValue;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const decodeLoose = (raw: Uint8Array): string => decoder.decode(raw);

const SCALAR_SIZE: Partial<Record<ValueType, number>> = {
  [ValueType.U8]: 1, [ValueType.I8]: 1, [ValueType.U16]: 2, [ValueType.I16]: 2, [ValueType.U32]: 4, [ValueType.I32]: 4,
  [ValueType.F32]: 4, [ValueType.BOOL]: 1, [ValueType.U64]: 8, [ValueType.I64]: 8, [ValueType.F64]: 8,
};

/** Parses the GGUF header of `source`. Rejects anything whose tensors the engine cannot read. */
export async function parseGguf(source: ByteSource): Promise<GgufHeader> {
  const file = source.name;
  const r = new HeaderReader(source, Math.min(source.size, 64 * 1024));
  if (source.size < 4) throw new FormatError(`not a GGUF file: only ${source.size} bytes`, file);
  const magic = await r.u32('magic');
  if (magic !== GGUF_MAGIC) {
    throw new FormatError(`not a GGUF file: magic is ${JSON.stringify(ascii(magic))}, expected "GGUF"`, file);
  }
  const version = await r.u32('version');
  if (version !== 2 && version !== 3) {
    throw new UnsupportedError(`GGUF version ${version} is not supported (only versions 2 and 3)`, file);
  }
  const tensorCount = await r.u64('tensor count');
  const kvCount = await r.u64('metadata count');

  const metadata: Record<string, GgufValue> = {};
  const metadataTypes: Record<string, GgufValueType> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = await r.string(`metadata key #${i}`);
    const type = (await r.u32(`type of metadata "${key}"`)) as ValueType;
    const at = r.pos;
    metadata[key] = await r.value(type, `metadata "${key}"`);
    metadataTypes[key] = type === ValueType.ARRAY ? { type, itemType: r.peekU32(at) } : { type };
  }

  const alignment = metadata['general.alignment'] ?? DEFAULT_ALIGNMENT;
  if (typeof alignment !== 'number' || alignment <= 0 || alignment % 8 !== 0) {
    throw new FormatError(`general.alignment must be a positive multiple of 8, got ${JSON.stringify(alignment)}`, file);
  }

  const raw: { name: string; shape: number[]; ggmlType: number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.string(`tensor #${i} name`);
    const nDims = await r.u32(`tensor "${name}" dimension count`);
    if (nDims < 1 || nDims > MAX_DIMS) throw new FormatError(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, file);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(await r.u64(`tensor "${name}" dimension ${d}`));
    const ggmlType = await r.u32(`tensor "${name}" type`);
    const offset = await r.u64(`tensor "${name}" offset`);
    raw.push({ name, shape, ggmlType, offset });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;

  const tensors: TensorInfo[] = [];
  const seen = new Set<string>();
  for (const t of raw) {
    if (seen.has(t.name)) throw new FormatError(`tensor "${t.name}" appears twice`, file);
    seen.add(t.name);
    const format = formatForGgmlId(t.ggmlType);
    if (!format) throw new UnsupportedError(`tensor "${t.name}" has type ${describeGgmlType(t.ggmlType)}, which this engine cannot read (supported: ${TENSOR_TYPES.join(', ')})`, file);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape[0]! % format.blockSize !== 0) {
      throw new FormatError(`tensor "${t.name}" rows of ${t.shape[0]} values are not a whole number of ${format.type} blocks`, file);
    }
    const byteLength = bytesFor(format.type, count);
    const offset = dataOffset + t.offset;
    if (t.offset % alignment !== 0) throw new FormatError(`tensor "${t.name}" data offset ${t.offset} is not aligned to ${alignment}`, file);
    if (offset + byteLength > source.size) {
      throw new FormatError(`truncated file: tensor "${t.name}" (${byteLength} bytes at ${offset}) runs past the end of the file (${source.size} bytes)`, file);
    }
    tensors.push({ name: t.name, type: format.type, shape: t.shape, offset, byteLength });
  }
  if (dataOffset > source.size) throw new FormatError(`truncated file: header ends at ${dataOffset} but the file has ${source.size} bytes`, file);
  await r.need(0, 'header');
  return { version, metadata, tensors, alignment, dataOffset, headerBytes: r.prefix(Math.min(r.pos, source.size)), metadataTypes };
}

function ascii(u32: number): string {
  return String.fromCharCode(u32 & 0xff, (u32 >> 8) & 0xff, (u32 >> 16) & 0xff, (u32 >>> 24) & 0xff);
}
