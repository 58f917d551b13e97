// downloadFile against a real HTTP server on 127.0.0.1 that this test starts: a full download, one cut off
// part-way and then resumed with a Range request, a wrong checksum, the checksum taken from X-Linked-Etag, a server
// that is down, a redirect, and a cancel. The file is a real model (stories260K.gguf), checked byte for byte.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { downloadFile, PART_SUFFIX } from '../src/node/download/downloadFile';
import { withTempDir } from './support/tempDir';

const body = readFileSync(resolve('../shared/models/stories260K.gguf'));
const sha256 = createHash('sha256').update(body).digest('hex');

let server: Server;
let base = '';
/** Per request: the Range header seen, and whether the server cut the connection. */
const seen: { path: string; range?: string }[] = [];
let cutAfter: number | undefined;

before(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    seen.push({ path, range: req.headers.range });
    if (path === '/redirect') {
      res.writeHead(302, { location: '/model.gguf', 'x-linked-etag': `"${sha256}"` }).end();
      return;
    }
    if (path !== '/model.gguf' && path !== '/etag.gguf' && path !== '/norange.gguf') {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    if (path === '/etag.gguf') headers['x-linked-etag'] = `"${sha256}"`;
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && path !== '/norange.gguf') {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { ...headers, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': body.length });
    }
    if (cutAfter !== undefined) {
      // Send part of the body, then drop the connection: a real interruption mid-transfer.
      const n = cutAfter;
      cutAfter = undefined;
      res.write(body.subarray(start, start + n), () => res.socket?.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => server.close());

test('a full download lands with the right bytes and checksum, no part file left', () =>
  withTempDir('star-dl-', async (dir) => {
    const dest = join(dir, 'models', 'm.gguf');
    const progress: number[] = [];
    const r = await downloadFile({ url: `${base}/model.gguf`, dest, sha256, onProgress: (n) => progress.push(n) });
    assert.equal(r.bytes, body.length);
    assert.equal(r.resumedFrom, 0);
    assert.ok(readFileSync(dest).equals(body));
    assert.equal(existsSync(dest + PART_SUFFIX), false);
    assert.equal(progress.at(-1), body.length);
  }));

test('an interrupted download keeps its part file and resumes with a Range request', () =>
  withTempDir('star-dl-', async (dir) => {
    const dest = join(dir, 'm.gguf');
    cutAfter = 300_000;
    await assert.rejects(downloadFile({ url: `${base}/model.gguf`, dest, sha256 }), /resume/);
    assert.equal(existsSync(dest), false, 'nothing unchecked at the destination');
    const partial = statSync(dest + PART_SUFFIX).size;
    assert.ok(partial > 0 && partial < body.length, `part file holds ${partial} bytes`);
    seen.length = 0;
    const r = await downloadFile({ url: `${base}/model.gguf`, dest, sha256 });
    assert.deepEqual(seen.map((s) => s.range), [`bytes=${partial}-`]);
    assert.equal(r.resumedFrom, partial);
    assert.ok(readFileSync(dest).equals(body));
    assert.equal(existsSync(dest + PART_SUFFIX), false);
  }));

test('a server that ignores Range restarts from zero and still yields the right file', () =>
  withTempDir('star-dl-', async (dir) => {
    const dest = join(dir, 'm.gguf');
    writeFileSync(dest + PART_SUFFIX, body.subarray(0, 1000));
    const r = await downloadFile({ url: `${base}/norange.gguf`, dest, sha256 });
    assert.equal(r.resumedFrom, 0);
    assert.ok(readFileSync(dest).equals(body));
  }));

test('a wrong checksum fails, names the URL and both hashes, and keeps nothing', () =>
  withTempDir('star-dl-', async (dir) => {
    const dest = join(dir, 'm.gguf');
    const wrong = '0'.repeat(64);
    await assert.rejects(downloadFile({ url: `${base}/model.gguf`, dest, sha256: wrong }), (err: Error) => {
      assert.match(err.message, /checksum mismatch/);
      assert.match(err.message, /model\.gguf/);
      assert.ok(err.message.includes(wrong) && err.message.includes(sha256));
      return true;
    });
    assert.equal(existsSync(dest), false);
    assert.equal(existsSync(dest + PART_SUFFIX), false);
  }));

test('without a configured checksum, the server\'s X-Linked-Etag is the checksum (kept across a redirect); without either the download is refused', () =>
  withTempDir('star-dl-', async (dir) => {
    const a = await downloadFile({ url: `${base}/etag.gguf`, dest: join(dir, 'a.gguf') });
    assert.equal(a.sha256, sha256);
    const b = await downloadFile({ url: `${base}/redirect`, dest: join(dir, 'b.gguf') });
    assert.equal(b.sha256, sha256);
    await assert.rejects(downloadFile({ url: `${base}/model.gguf`, dest: join(dir, 'c.gguf') }), /no SHA-256/);
    assert.equal(existsSync(join(dir, 'c.gguf')), false);
  }));

test('a server that is down gives a clear network error; plain http to another host is refused', () =>
  withTempDir('star-dl-', async (dir) => {
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const port = (down.address() as AddressInfo).port;
    await new Promise<void>((r) => down.close(() => r()));
    await assert.rejects(downloadFile({ url: `http://127.0.0.1:${port}/m.gguf`, dest: join(dir, 'm.gguf'), sha256 }), /refused the connection/);
    await assert.rejects(downloadFile({ url: 'http://example.com/m.gguf', dest: join(dir, 'm.gguf'), sha256 }), /must use https/);
  }));

test('cancelling a download rejects with CancelledError and leaves a resumable part file', () =>
  withTempDir('star-dl-', async (dir) => {
    const dest = join(dir, 'm.gguf');
    const controller = new AbortController();
    await assert.rejects(
      downloadFile({ url: `${base}/model.gguf`, dest, sha256, signal: controller.signal, onProgress: (n) => { if (n > 0) controller.abort(); } }),
      { name: 'CancelledError' },
    );
    assert.equal(existsSync(dest), false);
    const r = await downloadFile({ url: `${base}/model.gguf`, dest, sha256 });
    assert.ok(readFileSync(dest).equals(body));
    assert.ok(r.resumedFrom > 0, 'the second call resumed');
  }));
