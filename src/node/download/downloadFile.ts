// Downloads one large file (a model) to disk: HTTPS only (plain HTTP only to this machine's loopback, for tests),
// resumable with an HTTP Range request after an interruption, checked against a SHA-256 before it is moved into
// place. The bytes land in `<dest>.part`; only a file whose checksum matched is ever renamed to `dest`, so a
// reader never sees a partial or corrupted model. Platform: Node (no vscode), so the CLI and tests use it too.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import { CancelledError, EngineError } from '../../engine/errors';

export interface DownloadOptions {
  readonly url: string;
  readonly dest: string;
  /**
   * Expected SHA-256 (hex). When absent, the server's `X-Linked-Etag` (Hugging Face's LFS object id, which is the
   * file's SHA-256) is used; a server that gives neither fails the download: nothing unchecked is kept.
   */
  readonly sha256?: string;
  readonly signal?: AbortSignal;
  /** Bytes on disk so far (resumed bytes included) and the total, when the server says. */
  readonly onProgress?: (received: number, total: number | undefined) => void;
}

export interface DownloadResult {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Bytes that were already on disk from an interrupted download and were not fetched again. */
  readonly resumedFrom: number;
}

const MAX_REDIRECTS = 5;

/** Partial data of a download in progress lives beside its destination under this suffix. */
export const PART_SUFFIX = '.part';

export async function downloadFile(o: DownloadOptions): Promise<DownloadResult> {
  checkUrl(o.url);
  const part = o.dest + PART_SUFFIX;
  await mkdir(dirname(o.dest), { recursive: true });
  const have = await sizeOf(part);
  const hash = createHash('sha256');
  if (have > 0) await hashFile(part, hash);

  const res = await get(o.url, have > 0 ? { range: `bytes=${have}-` } : {}, o.signal);
  if (have > 0 && res.statusCode === 200) {
    // The server ignored the range: start over (the full body follows).
    return downloadFresh(o, res, part);
  }
  if (have > 0 && res.statusCode === 416) {
    // Everything was already there (the range starts at the end).
    res.resume();
    return finish(o, part, hash, have, have, res);
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    res.resume();
    throw new EngineError(`download failed: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), o.url);
  }
  if (have === 0) return downloadFresh(o, res, part, hash);
  const total = totalSize(res, have);
  await pipeTo(res, part, 'a', hash, have, total, o);
  return finish(o, part, hash, await sizeOf(part), have, res);
}

async function downloadFresh(o: DownloadOptions, res: IncomingMessage, part: string, hash: Hash = createHash('sha256')): Promise<DownloadResult> {
  const total = totalSize(res, 0);
  await pipeTo(res, part, 'w', hash, 0, total, o);
  return finish(o, part, hash, await sizeOf(part), 0, res);
}

async function finish(o: DownloadOptions, part: string, hash: Hash, bytes: number, resumedFrom: number, res: IncomingMessage): Promise<DownloadResult> {
  const actual = hash.digest('hex');
  const expected = (o.sha256 ?? linkedEtag(res))?.toLowerCase();
  if (!expected) {
    await rm(part, { force: true });
    throw new EngineError('the server gave no SHA-256 for this file and none was configured; refusing an unchecked model', o.url);
  }
  if (actual !== expected) {
    // A corrupted or substituted file is never kept, not even as a resumable part.
    await rm(part, { force: true });
    throw new EngineError(`checksum mismatch: expected SHA-256 ${expected}, got ${actual} (${bytes} bytes); the partial file was deleted`, o.url);
  }
  await rename(part, o.dest);
  return { path: o.dest, bytes, sha256: actual, resumedFrom };
}

function pipeTo(res: IncomingMessage, path: string, flags: 'w' | 'a', hash: Hash, start: number, total: number | undefined, o: DownloadOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const out = createWriteStream(path, { flags });
    let received = start;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      res.destroy();
      // The part file stays: a later call resumes from the bytes that reached the disk.
      out.end(() => reject(err));
    };
    const onAbort = () => fail(new CancelledError('download cancelled'));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    res.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      if (!out.write(chunk)) {
        res.pause();
        out.once('drain', () => res.resume());
      }
      o.onProgress?.(received, total);
    });
    res.on('aborted', () => fail(new EngineError(`the connection was closed after ${received} bytes; run the download again to resume`, o.url)));
    res.on('error', (err) => fail(new EngineError(`the connection failed after ${received} bytes (${err.message}); run the download again to resume`, o.url)));
    out.on('error', (err) => fail(new EngineError(`cannot write ${path}: ${err.message}`)));
    res.on('end', () => {
      o.signal?.removeEventListener('abort', onAbort);
      if (failed) return;
      if (total !== undefined && received !== total) {
        fail(new EngineError(`the connection ended after ${received} of ${total} bytes; run the download again to resume`, o.url));
        return;
      }
      out.end(() => resolve());
    });
  });
}

function get(url: string, headers: Record<string, string>, signal: AbortSignal | undefined, redirects = 0): Promise<IncomingMessage> {
  if (signal?.aborted) return Promise.reject(new CancelledError('download cancelled'));
  checkUrl(url);
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { headers: { 'user-agent': 'star-attention-codebase', ...headers }, signal }, (res) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new EngineError(`too many redirects (more than ${MAX_REDIRECTS})`, url));
          return;
        }
        // Keep the first response's checksum header across the redirect to the storage host.
        const etag = linkedEtag(res);
        get(new URL(location, url).toString(), headers, signal, redirects + 1).then((next) => {
          if (etag && !next.headers['x-linked-etag']) next.headers['x-linked-etag'] = etag;
          resolve(next);
        }, reject);
        return;
      }
      resolve(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) reject(new CancelledError('download cancelled'));
      else reject(new EngineError(networkMessage(err), url));
    });
    req.end();
  });
}

function networkMessage(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'cannot resolve the server: are you offline? Download the file yourself and choose it with "Select Model"';
    case 'ECONNREFUSED':
      return 'the server refused the connection (is it down, or are you offline?)';
    case 'ETIMEDOUT':
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return `the network is unreachable (${err.code}): are you offline?`;
    default:
      return `download failed: ${err.message}`;
  }
}

/** HTTPS everywhere; plain HTTP only to a loopback address (the tests' local server). */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EngineError('not a valid URL', url);
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    throw new EngineError('downloads must use https', url);
  }
}

function linkedEtag(res: IncomingMessage): string | undefined {
  const raw = res.headers['x-linked-etag'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.replace(/^W\//, '').replace(/"/g, '');
  return value && /^[0-9a-f]{64}$/i.test(value) ? value : undefined;
}

function totalSize(res: IncomingMessage, offset: number): number | undefined {
  const range = res.headers['content-range'];
  const m = typeof range === 'string' ? /\/(\d+)$/.exec(range) : null;
  if (m) return Number(m[1]);
  const length = Number(res.headers['content-length']);
  return Number.isFinite(length) && res.headers['content-length'] !== undefined ? offset + length : undefined;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function hashFile(path: string, hash: Hash): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path).on('data', (c) => hash.update(c)).on('end', () => resolve()).on('error', reject);
  });
}
