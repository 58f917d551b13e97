// Model bytes in a browser: a Blob/File is read by range (Blob.slice), so a multi-GB model file chosen by the
// user is never copied into one ArrayBuffer.
import { checkReadRange, type ByteSource, type FileSet } from '../src/engine/io/byteSource';

export class BlobByteSource implements ByteSource {
  constructor(readonly name: string, private readonly blob: Blob) {}
  get size(): number {
    return this.blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkReadRange(this, offset, length);
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
