// Key summaries on disk (selection/keySummary.ts), one small file per block beside the KV entries:
// <cache dir>/summaries/<64 hex>.sum, named by the block's cache key without its dtype (a summary is taken from
// keys in the local frame, whatever precision the KV entry has). They are kept apart from the KV entries on
// purpose: evicting a block's KV (the LRU cap) leaves its summary, so a question still ranks the block and
// re-encodes it on demand if it is selected. A summary is about 1 % of its block's f16 KV, so they are not capped.
//
// Format (little-endian): magic "SSUM", version, length, pageSize, width, layers, values per layer (u32 each),
// SHA-256 of the payload (32 bytes), then the payload: per layer, float32 bounds. Written to a temp file and
// renamed into place; a damaged file is reported, deleted, and read as a miss.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { EngineError } from '../../engine/errors';
import { summaryPages, type KeySummary } from '../../engine/star/selection/keySummary';
import type { SummaryStore } from '../../engine/star/selection/blockSelection';

const MAGIC = 0x4d555353; // "SSUM"
const VERSION = 1;
const HEADER_BYTES = 7 * 4 + 32;

export function openSummaryStore(cacheDir: string, onWarning?: (message: string) => void): SummaryStore {
  const dir = path.join(path.resolve(cacheDir), 'summaries');
  const warn = onWarning ?? (() => {});
  const fileOf = (key: string) => {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new EngineError(`not a block cache key: ${JSON.stringify(key)}`, dir);
    return path.join(dir, `${key}.sum`);
  };
  return {
    async get(key, pageSize) {
      const file = fileOf(key);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch {
        return undefined;
      }
      const summary = decode(bytes, pageSize);
      // Taken with other pages (another build's default): not damage, just not this summary; replaced by the next put.
      if (summary === null) return undefined;
      if (typeof summary === 'string') {
        warn(`${file}: key summary ${summary}; it is taken again`);
        await unlink(file).catch(() => {});
        return undefined;
      }
      return summary;
    },
    async put(key, summary) {
      const file = fileOf(key);
      const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(temp, encode(summary), { flag: 'wx' });
        await rename(temp, file);
      } catch (err) {
        await unlink(temp).catch(() => {});
        warn(`${file}: key summary not stored: ${(err as Error).message}`);
      }
    },
  };
}

function encode(s: KeySummary): Buffer {
  const perLayer = s.bounds[0]?.length ?? 0;
  const payload = Buffer.alloc(s.bounds.length * perLayer * 4);
  s.bounds.forEach((b, l) => payload.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), l * perLayer * 4));
  const header = Buffer.alloc(HEADER_BYTES);
  [MAGIC, VERSION, s.length, s.pageSize, s.width, s.bounds.length, perLayer].forEach((v, i) => header.writeUInt32LE(v, i * 4));
  createHash('sha256').update(payload).digest().copy(header, 28);
  return Buffer.concat([header, payload]);
}

/** The summary, null for one taken with other pages, or what is wrong with the file. */
function decode(bytes: Buffer, pageSize: number): KeySummary | string | null {
  if (bytes.length < HEADER_BYTES) return 'is truncated';
  const [magic, version, length, page, width, layers, perLayer] = Array.from({ length: 7 }, (_, i) => bytes.readUInt32LE(i * 4));
  if (magic !== MAGIC) return 'has a bad magic number';
  if (version !== VERSION) return `has version ${version}, not ${VERSION}`;
  if (page !== pageSize) return null;
  if (perLayer !== summaryPages(length!, page!) * 2 * width! || bytes.length !== HEADER_BYTES + layers! * perLayer! * 4) return 'has a bad size';
  const payload = bytes.subarray(HEADER_BYTES);
  if (!createHash('sha256').update(payload).digest().equals(bytes.subarray(28, HEADER_BYTES))) return 'fails its checksum';
  const values = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
  const bounds = Array.from({ length: layers! }, (_, l) => values.subarray(l * perLayer!, (l + 1) * perLayer!));
  return { index: 0, length: length!, pageSize: page!, width: width!, bounds };
}
