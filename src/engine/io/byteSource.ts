import { FormatError } from '../errors';

/**
 * Random-access bytes: a model file on disk (Node), a File/Blob (browser), or memory.
 * The engine never reads a whole multi-GB model into one buffer; it asks for ranges.
 */
export interface ByteSource {
  /** Shown in error messages: a file path or a display name. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset`; rejects with a FormatError naming the file if out of range. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: the same bytes written into `dst` (dst.length of them), so a backend can take a tensor straight into
   * its own memory (the WebAssembly `cpu` backend: no second copy in JS).
   */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
}

/** The FormatError ByteSource.read promises when [offset, offset + length) is not inside `source`. */
export function checkReadRange(source: ByteSource, offset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > source.size) {
    throw new FormatError(`read of ${length} bytes at offset ${offset} is past the end of the file (${source.size} bytes)`, source.name);
  }
}

export class MemoryByteSource implements ByteSource {
  constructor(readonly name: string, private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkReadRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** A set of named files, e.g. a Hugging Face model folder (config.json, model.safetensors, tokenizer.json). */
export interface FileSet {
  readonly name: string;
  /** undefined when the file does not exist. */
  open(relativePath: string): Promise<ByteSource | undefined>;
}
