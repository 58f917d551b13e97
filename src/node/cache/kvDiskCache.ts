// Per-block KV on disk, reused across questions and sessions, under keys made by the engine's blockCacheKey
// (src/engine/star/context.ts: model, anchor tokens, block tokens, position scheme, format version, dtype).
//
// Files: <dir>/<64 hex>.kv, names derived from the key only. Writes go to a temp file in the same directory, are
// fsynced and renamed into place, so a reader never sees half an entry; temp files left by a crash are removed
// when their writer is gone. Every read verifies magic, version, a header checksum, shape and a SHA-256 of the
// payload; a bad entry is reported through onWarning (naming the file), deleted, and read as a miss.
// Eviction is least-recently-used by file mtime (touched on every hit), so the LRU order survives crashes and is
// shared by several processes without an index file; the total is kept under maxSizeBytes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { EngineError } from '../../engine/errors';
import { DEFAULT_KV_DTYPE } from '../../engine/runtime/kvBytes';
import { serialQueue, type SerialQueue } from '../../engine/util/serialQueue';
import {
  KV_HEADER_BYTES, decodeHeader, decodeTensor, encodeHeader, encodeTensor, payloadBytesOf, tensorBytesOf,
  type KvDtype, type KvEntry,
} from './kvFileFormat';

export type { KvDtype, KvEntry } from './kvFileFormat';

export interface KvDiskCacheOptions {
  readonly dir: string;
  /** Total bytes of entries kept; least recently used entries are deleted beyond it. */
  readonly maxSizeBytes: number;
  /**
   * Storage type of new entries (default DEFAULT_KV_DTYPE, f16: half the size of f32 at a relative error <= 2^-11
   * per value; 'f32' is exact; 'q8' is 53 % of f16, each value within max|x|/254 of its group of 32).
   */
  readonly dtype?: KvDtype;
  /** Called for every entry found damaged or incompatible (message names the file) and for entries not stored. */
  readonly onWarning?: (message: string) => void;
}

interface IndexedEntry {
  bytes: number;
  lastUse: number;
}

const ENTRY_NAME = /^([0-9a-f]{64})\.kv$/;
const TEMP_NAME = /^[0-9a-f]{64}\.kv\.tmp-(\d+)-[0-9a-f]+$/;
/** A temp file older than this is abandoned even if a process with its writer's pid exists (pid reuse). */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Eviction goes this far below the cap, so a full cache does not rescan its directory on every put. */
const EVICT_TO_FRACTION = 0.9;

export class KvDiskCache {
  readonly dir: string;
  readonly dtype: KvDtype;
  readonly maxSizeBytes: number;
  private readonly warn: (message: string) => void;
  private index: Map<string, IndexedEntry> | undefined;
  private total = 0;
  /** Bytes of this instance's writes in flight (temp files), counted against the cap. */
  private reserved = 0;
  /**
   * The index and the total are read and changed by one caller at a time. Several writes run at once, and a rescan
   * that overlapped another write's accounting used to overwrite it, so the folder grew past the cap (measured:
   * 1.97 MB under a 1 MiB cap with 8 writes in flight).
   */
  private readonly exclusive: SerialQueue = serialQueue();

  constructor(opts: KvDiskCacheOptions) {
    this.dir = path.resolve(opts.dir);
    this.dtype = opts.dtype ?? DEFAULT_KV_DTYPE;
    this.maxSizeBytes = opts.maxSizeBytes;
    this.warn = opts.onWarning ?? (() => {});
  }

  fileOf(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new EngineError(`not a KV cache key: ${JSON.stringify(key)}`, this.dir);
    return path.join(this.dir, `${key}.kv`);
  }

  /** The entry, or undefined on a miss or a damaged entry (which is reported and deleted). */
  async get(key: string): Promise<KvEntry | undefined> {
    const file = this.fileOf(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      // ENOTDIR: the cache folder is a file (then writes warn, once per store); either way simply a miss.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.warn(`${file}: cannot read KV cache entry: ${(err as Error).message}`);
      await this.exclusive(() => this.forget(key));
      return undefined;
    }
    const entry = this.parse(key, bytes);
    if (typeof entry === 'string') {
      this.warn(`${file}: KV cache entry ignored and deleted: ${entry}`);
      await unlink(file).catch(() => {});
      await this.exclusive(() => this.forget(key));
      return undefined;
    }
    const now = new Date();
    await utimes(file, now, now).catch(() => {}); // LRU: a hit makes the entry the most recent
    await this.exclusive(async () => {
      const index = await this.loadIndex();
      if (!index.has(key)) this.total += bytes.length;
      index.set(key, { bytes: bytes.length, lastUse: now.getTime() });
    });
    return entry;
  }

  async has(key: string): Promise<boolean> {
    return stat(this.fileOf(key)).then(() => true, () => false);
  }

  /** Stores an entry atomically (temp file, fsync, rename). Throws an EngineError naming the cache directory on failure. */
  async put(key: string, entry: KvEntry): Promise<void> {
    const file = this.fileOf(key);
    checkShape(entry, file);
    const size = KV_HEADER_BYTES + payloadBytesOf(entry.layers, entry.rows, entry.width, this.dtype);
    if (size > this.maxSizeBytes) {
      this.warn(`${file}: KV cache entry of ${size} bytes not stored: larger than the cache limit of ${this.maxSizeBytes} bytes`);
      return;
    }
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      throw new EngineError(`cannot create the KV cache directory: ${(err as Error).message}`, this.dir);
    }
    const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    let fh: FileHandle | undefined;
    // Room is made before the write: with several writes in flight, evicting only after each rename let the
    // folder overshoot the cap by the entries being written.
    this.reserved += size;
    try {
      await this.exclusive(async () => {
        await this.loadIndex();
        if (this.total + this.reserved > this.maxSizeBytes) await this.evict(key);
      });
      fh = await open(temp, 'wx');
      const payloadHash = createHash('sha256');
      let at = KV_HEADER_BYTES;
      for (let l = 0; l < entry.layers; l++) {
        for (const tensor of [entry.k[l]!, entry.v[l]!]) {
          const bytes = encodeTensor(tensor, entry.rows, entry.width, this.dtype);
          payloadHash.update(bytes);
          await writeAll(fh, bytes, at);
          at += bytes.length;
        }
      }
      const header = encodeHeader({
        dtype: this.dtype, layers: entry.layers, rows: entry.rows, width: entry.width, start: entry.positions.start,
        payloadBytes: at - KV_HEADER_BYTES, payloadSha256: payloadHash.digest(), key: Buffer.from(key, 'hex'),
      }, sha256);
      await writeAll(fh, header, 0);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(temp, file);
    } catch (err) {
      await fh?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw new EngineError(`cannot write KV cache entry ${path.basename(file)}: ${(err as Error).message}`, this.dir);
    } finally {
      this.reserved -= size;
    }
    await syncDir(this.dir);
    await this.exclusive(async () => {
      const index = await this.loadIndex();
      const previous = index.get(key);
      this.total += size - (previous?.bytes ?? 0);
      index.set(key, { bytes: size, lastUse: Date.now() });
      if (this.total + this.reserved > this.maxSizeBytes) await this.evict(key);
    });
  }

  async delete(key: string): Promise<void> {
    await unlink(this.fileOf(key)).catch(() => {});
    await this.exclusive(() => this.forget(key));
  }

  /** Bytes of all entries in the directory (rescanned). */
  async sizeBytes(): Promise<number> {
    return this.exclusive(async () => {
      this.index = undefined;
      await this.loadIndex();
      return this.total;
    });
  }

  /** Keys from least to most recently used (rescanned). */
  async keysByRecency(): Promise<string[]> {
    return this.exclusive(async () => {
      this.index = undefined;
      const index = await this.loadIndex();
      return [...index.entries()].sort(byRecency).map(([k]) => k);
    });
  }

  private parse(key: string, bytes: Buffer): KvEntry | string {
    const header = decodeHeader(bytes, sha256);
    if (typeof header === 'string') return header;
    const expected = KV_HEADER_BYTES + header.payloadBytes;
    if (bytes.length !== expected) return `${bytes.length < expected ? 'truncated' : 'trailing bytes'}: ${bytes.length} bytes, expected ${expected}`;
    if (Buffer.from(header.key).toString('hex') !== key) return 'entry belongs to another key';
    const payload = bytes.subarray(KV_HEADER_BYTES);
    if (!sha256(payload).equals(Buffer.from(header.payloadSha256))) return 'payload checksum mismatch';
    const tensorBytes = tensorBytesOf(header.rows, header.width, header.dtype);
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let l = 0; l < header.layers; l++) {
      const base = l * 2 * tensorBytes;
      k.push(decodeTensor(payload.subarray(base, base + tensorBytes), header.rows, header.width, header.dtype));
      v.push(decodeTensor(payload.subarray(base + tensorBytes, base + 2 * tensorBytes), header.rows, header.width, header.dtype));
    }
    return { layers: header.layers, rows: header.rows, width: header.width, positions: { start: header.start }, k, v };
  }

  private async forget(key: string): Promise<void> {
    const index = await this.loadIndex();
    const had = index.get(key);
    if (had) {
      this.total -= had.bytes;
      index.delete(key);
    }
  }

  /** Scans the directory once: entry sizes and mtimes; removes temp files whose writer is gone. */
  private async loadIndex(): Promise<Map<string, IndexedEntry>> {
    if (this.index) return this.index;
    const index = new Map<string, IndexedEntry>();
    let total = 0;
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      // no directory yet: an empty cache
    }
    for (const name of names) {
      const entry = ENTRY_NAME.exec(name);
      const temp = entry ? undefined : TEMP_NAME.exec(name);
      if (!entry && !temp) continue;
      const st = await stat(path.join(this.dir, name)).catch(() => undefined);
      if (!st) continue;
      if (entry) {
        index.set(entry[1]!, { bytes: st.size, lastUse: st.mtimeMs });
        total += st.size;
      } else if (!processAlive(Number(temp![1])) || Date.now() - st.mtimeMs > STALE_TEMP_MS) {
        await unlink(path.join(this.dir, name)).catch(() => {});
      }
    }
    this.index = index;
    this.total = total;
    return index;
  }

  /** Deletes least recently used entries until the total (with writes in flight) is under the cap; `keep` survives. */
  private async evict(keep: string): Promise<void> {
    this.index = undefined; // other processes may share the directory: decide on what is really there
    const index = await this.loadIndex();
    const target = this.maxSizeBytes * EVICT_TO_FRACTION;
    for (const [key, e] of [...index.entries()].sort(byRecency)) {
      if (this.total + this.reserved <= target) break;
      if (key === keep) continue;
      await unlink(path.join(this.dir, `${key}.kv`)).catch(() => {});
      index.delete(key);
      this.total -= e.bytes;
    }
  }
}

function byRecency(a: [string, IndexedEntry], b: [string, IndexedEntry]): number {
  return a[1].lastUse - b[1].lastUse || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

function checkShape(entry: KvEntry, file: string): void {
  const n = entry.rows * entry.width;
  const ok = Number.isInteger(entry.layers) && entry.layers > 0 && entry.k.length === entry.layers && entry.v.length === entry.layers
    && entry.k.every((t) => t.length === n) && entry.v.every((t) => t.length === n)
    && Number.isInteger(entry.positions.start) && entry.positions.start >= 0 && entry.positions.start < 2 ** 32;
  if (!ok) throw new EngineError(`KV entry shape is inconsistent: ${entry.layers} layers, ${entry.rows} rows x ${entry.width}, start ${entry.positions.start}`, file);
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** fs write may be short (RLIMIT_FSIZE, a nearly full disk); loop until done so the error surfaces. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten === 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/** Makes the rename durable; not every platform can open a directory (Windows), which is fine. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  await fh?.sync().catch(() => {});
  await fh?.close().catch(() => {});
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
