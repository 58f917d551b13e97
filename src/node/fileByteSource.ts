// ByteSource and FileSet over the local file system (Node only).
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve, basename, sep } from 'node:path';
import { checkReadRange, type ByteSource, type FileSet } from '../engine/io/byteSource';
import { FormatError } from '../engine/errors';

/** Reads byte ranges of one file through an open handle; never loads the whole file. */
export class FileByteSource implements ByteSource {
  private constructor(readonly name: string, readonly size: number, private handle: FileHandle | undefined) {}

  static async open(path: string): Promise<FileByteSource> {
    const handle = await open(path, 'r');
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new FormatError('not a regular file', path);
      return new FileByteSource(path, info.size, handle);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, out: Uint8Array): Promise<void> {
    if (!this.handle) throw new Error(`${this.name}: read after close()`);
    const length = out.length;
    checkReadRange(this, offset, length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new FormatError(`file shrank while reading (wanted ${length} bytes at ${offset})`, this.name);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

/** A folder as a FileSet (e.g. a Hugging Face model folder). Paths may not escape the folder. */
export function openFileSet(dir: string): FileSet & { close(): Promise<void> } {
  const root = resolve(dir);
  const opened: FileByteSource[] = [];
  return {
    name: basename(root),
    async open(relativePath: string): Promise<ByteSource | undefined> {
      const full = resolve(join(root, relativePath));
      if (full !== root && !full.startsWith(root + sep)) throw new FormatError(`path escapes the model folder: ${relativePath}`, root);
      try {
        if (!(await stat(full)).isFile()) return undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      const source = await FileByteSource.open(full);
      opened.push(source);
      return source;
    },
    async close(): Promise<void> {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}
