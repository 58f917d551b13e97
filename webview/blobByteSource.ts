// Model bytes in a browser: a Blob/File is read by range (Blob.slice), so a multi-GB model file chosen by the
// user is never copied into one ArrayBuffer.
import type { ByteSource, FileSet } from '../src/engine/io/byteSource';
import { FormatError } from '../src/engine/errors';

export class BlobByteSource implements ByteSource {
  constructor(readonly name: string, private readonly blob: Blob) {}
  get size(): number {
    return this.blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || offset + length > this.blob.size) {
      throw new FormatError(`read of ${length} bytes at offset ${offset} is past the end of the file (${this.blob.size} bytes): truncated?`, this.name);
    }
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
}

export function blobFileSet(name: string, files: Record<string, Blob>): FileSet {
  return {
    name,
    async open(relativePath: string) {
      const blob = files[relativePath];
      return blob ? new BlobByteSource(`${name}/${relativePath}`, blob) : undefined;
    },
  };
}
