// Star hosts as dedicated Workers in a real page (headless Chromium, navigator.gpu on SwiftShader here), started
// by the webview's own bridge (installHostBridge) and driven from this process through createWebviewHostPool, as
// the extension host drives its webview. Messages cross as JSON with typed arrays carried as binary (wireCodec.ts
// stands in for the webview's postMessage). Compared against the golden ids and the in-process CPU pool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { DeviceError, FormatError } from '../src/engine/errors';
import { createInProcessHostPool, type HostPool } from '../src/node/star/hostPool';
import { RepoSession } from '../src/node/star/repoSession';
import { createWebviewHostPool, type HostChannel, type WebviewPoolOptions } from '../src/node/star/webviewHostPool';
import type { StarHostClient } from '../src/protocol/starHost';
import type { Harness } from './browser/harness';
import { launchChromium } from './support/browser';
import { blocksEncodedAfterCancel } from './support/cancelProbe';
import { modelOpener } from './support/models';
import { modelPath, readGolden, repoRoot } from './support/paths';
import { file, serve } from './support/staticServer';
import { decodeWire, encodeWire } from './support/wireCodec';

const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json');
const openShared = modelOpener();

let url: string;
let close: () => void;
let tmp: string;
const browsers: Browser[] = [];

before(async () => {
  const harness = await build({ entryPoints: [join(repoRoot, 'test/browser/harness.ts')], bundle: true, format: 'esm', platform: 'browser', write: false, loader: { '.wgsl': 'text' } });
  const model = readFileSync(modelPath('stories260K.gguf'));
  tmp = mkdtempSync(join(tmpdir(), 'star-webview-'));
  writeFileSync(join(tmp, 'truncated.gguf'), model.subarray(0, model.length - 1000));
  const served = await serve({
    '/': { type: 'text/html', body: () => '<!doctype html><meta charset="utf-8"><script type="module" src="/harness.js"></script>' },
    '/harness.js': { type: 'text/javascript', body: () => harness.outputFiles[0]!.text },
    '/favicon.ico': { type: 'image/x-icon', body: () => '' },
    '/hostWorker.js': file(join(repoRoot, 'dist/webview/hostWorker.js'), 'text/javascript'),
    '/stories260K.gguf': file(modelPath('stories260K.gguf'), 'application/octet-stream'),
    '/truncated.gguf': file(join(tmp, 'truncated.gguf'), 'application/octet-stream'),
  });
  url = served.url;
  close = () => served.server.close();
});

after(async () => {
  for (const b of browsers) await b.close();
  close?.();
  rmSync(tmp, { recursive: true, force: true });
});

/** A page running the bridge, and the HostChannel to it (this process plays the extension host). */
async function openPage(opts: { webgpu?: boolean } = {}): Promise<{ page: Page; channel: HostChannel }> {
  const browser = await launchChromium(opts);
  browsers.push(browser);
  const page = await browser.newPage();
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`[page] ${m.text()}\n`); });
  const listeners = new Set<(m: unknown) => void>();
  await page.exposeFunction('hostsToExtension', (m: unknown) => { for (const l of listeners) l(decodeWire(m)); });
  await page.goto(url);
  await page.waitForFunction(() => 'harness' in globalThis);
  const channel: HostChannel = {
    post: (m) => void page.evaluate((x) => (globalThis as unknown as Harness).harness.deliver(x), encodeWire(m)).catch(() => {}),
    onMessage: (l) => { listeners.add(l); return () => listeners.delete(l); },
    bytes: { sent: 0, received: 0 },
    onClose: (l) => { page.on('close', l); return () => page.off('close', l); },
  };
  return { page, channel };
}

const poolOptions = (hosts: number, extra: Partial<WebviewPoolOptions> = {}): WebviewPoolOptions => ({
  workerScriptUrl: '/hostWorker.js', modelFiles: { 'stories260K.gguf': '/stories260K.gguf' }, modelName: 'stories260K.gguf', hosts, ...extra,
});

let shared: { page: Page; channel: HostChannel } | undefined;
const sharedPage = async () => (shared ??= await openPage());

test('a webview host worker on navigator.gpu: greedy ids from BOS equal the golden ids (64 tokens), streamed in order', async () => {
  const { channel } = await sharedPage();
  const pool = await createWebviewHostPool(channel, poolOptions(1));
  try {
    assert.equal(pool.kind, 'webview-webgpu');
    assert.match(pool.device, /.+/);
    const streamed: number[] = [];
    const r = await pool.answer({ contextLength: 0, query: [1], maxTokens: 64, temperature: 0, attentionShares: false }, (id) => streamed.push(id));
    assert.deepEqual(r.ids, golden.greedy_from_bos_ids.slice(1, 65));
    assert.deepEqual(streamed, r.ids);
    process.stderr.write(`[webview worker] device=${pool.device} decode=${r.decodeTokensPerSec.toFixed(1)} tok/s\n`);
  } finally {
    await pool.dispose();
  }
});

test('a truncated model fails in the webview worker with a FormatError that names the file', async () => {
  const { channel } = await sharedPage();
  await assert.rejects(createWebviewHostPool(channel, poolOptions(1, { modelFiles: { 'truncated.gguf': '/truncated.gguf' }, modelName: 'truncated.gguf' })), (err: unknown) => {
    assert.ok(err instanceof FormatError, `got ${String(err)}`);
    assert.match(err.message, /truncated\.gguf/);
    return true;
  });
});

test('two webview workers (the query host reaching the other through a MessagePort) answer as the in-process CPU pool', async () => {
  const model = await openShared('stories260K.gguf');
  const repo = mkdtempSync(join(tmpdir(), 'star-webview-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-webview-kv-'));
  mkdirSync(join(repo, 'docs'));
  writeFileSync(join(repo, 'docs', 'max.txt'), 'Tom had a dog named Max. Max liked to run and jump in the park.\n');
  writeFileSync(join(repo, 'docs', 'lily.txt'), 'Lily had a red ball. She liked to throw it high in the sky.\n');
  writeFileSync(join(repo, 'sun.txt'), 'The sun was warm and the birds sang in the big green tree.\n');
  const ask = { maxTokens: 4, temperature: 0 };
  const session = (pool: HostPool, dir?: string) => new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir: dir });
  const { channel } = await sharedPage();
  try {
    const cpu = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
    const want = await session(cpu).ask('Who is Max?', ask).finally(() => cpu.dispose());

    const pool = await createWebviewHostPool(channel, poolOptions(2));
    try {
      const s = session(pool, cacheDir);
      const before = { ...channel.bytes };
      const got = await s.ask('Who is Max?', ask);
      const first = { sent: channel.bytes.sent - before.sent, received: channel.bytes.received - before.received };
      assert.ok(got.stats.blocks >= 4, `only ${got.stats.blocks} blocks`);
      assert.equal(got.stats.blocksEncoded, got.stats.blocks);
      for (const h of pool.hosts) assert.ok((await h.blockIndices()).length > 0, `${h.name} holds no blocks`);
      assert.deepEqual(got.ids, want.ids);
      assert.deepEqual(got.sources.map((x) => x.path).sort(), want.sources.map((x) => x.path).sort());
      for (const x of want.sources) assert.ok(Math.abs(got.sources.find((y) => y.path === x.path)!.share - x.share) < 2e-3, `share of ${x.path}`);
      // Every encoded block's KV came back across the channel as binary, once.
      const c = model.config;
      const kvBytes = got.stats.contextTokens * c.nLayers * 2 * c.nKvHeads * c.headDim * 4;
      assert.ok(first.received >= kvBytes && first.received < 1.5 * kvBytes + 1e5, `received ${first.received} bytes for ${kvBytes} bytes of KV`);

      // The second question: the workers hold every block; only the question and the tokens cross.
      const mid = { ...channel.bytes };
      const again = await s.ask('Who is Lily?', ask);
      const second = { sent: channel.bytes.sent - mid.sent, received: channel.bytes.received - mid.received };
      assert.equal(again.stats.blocksHeld, again.stats.blocks);
      assert.equal(again.stats.blocksEncoded, 0);
      assert.ok(second.sent + second.received < 20_000, `second question moved ${second.sent} + ${second.received} bytes`);
      process.stderr.write(`[webview hosts] device=${pool.device}; first question: ${first.sent} B sent, ${first.received} B received (KV ${kvBytes} B); ` +
        `second: ${second.sent} B sent, ${second.received} B received\n`);

      // An edit re-encodes that file's blocks only; the others stay in the workers (moved there): only the new
      // blocks' KV crosses.
      appendFileSync(join(repo, 'docs', 'lily.txt'), 'She gave it to Max.\n');
      const beforeEdit = channel.bytes.received;
      const edited = await s.index();
      const editBytes = channel.bytes.received - beforeEdit;
      assert.deepEqual(edited.encodedPaths, ['docs/lily.txt']);
      assert.equal(edited.blocksHeld, edited.blocks - edited.blocksEncoded);
      assert.ok(editBytes < kvBytes / 2, `the edit moved ${editBytes} bytes (all KV: ${kvBytes})`);
      process.stderr.write(`[webview hosts] edit: ${edited.blocksEncoded} of ${edited.blocks} blocks encoded, ${editBytes} B received\n`);
    } finally {
      await pool.dispose();
    }
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('a cancel reaches the webview worker and stops its encode', async () => {
  const { channel } = await sharedPage();
  const pool = await createWebviewHostPool(channel, poolOptions(1, { maxBatchRows: 1 }));
  try {
    const host = pool.hosts[0] as StarHostClient;
    const ids = golden.greedy_from_bos_ids;
    const anchor = ids.slice(0, 16);
    const blocks = Array.from({ length: 100 }, (_, i) => ({ index: i + 1, start: 16 + 16 * i, tokens: ids.slice(16, 32) }));
    const blocksEncoded = await blocksEncodedAfterCancel(host, anchor, blocks);
    assert.ok(blocksEncoded > 0 && blocksEncoded < 50, `the worker went on encoding after the cancel: ${blocksEncoded} of 100 blocks`);
    process.stderr.write(`[webview cancel] the worker stopped after ${blocksEncoded} of 100 blocks\n`);
  } finally {
    await pool.dispose();
  }
});

test('closing the webview mid-answer fails the answer with a clear message, and the pool with it', async () => {
  const { page, channel } = await openPage();
  const pool = await createWebviewHostPool(channel, poolOptions(2));
  let seen = 0;
  const answering = pool.answer({ contextLength: 0, query: [1], maxTokens: 400, temperature: 0, attentionShares: false }, () => {
    if (++seen === 2) void page.close();
  });
  await assert.rejects(answering, /the webview holding the hosts was closed/);
  assert.ok(seen >= 2 && seen < 400);
  await assert.rejects(pool.hosts[1]!.blockIndices(), /the webview holding the hosts was closed/);
  await pool.dispose();
});

test('without WebGPU in the webview the pool rejects with a DeviceError saying so', async () => {
  const { channel } = await openPage({ webgpu: false });
  await assert.rejects(createWebviewHostPool(channel, poolOptions(2)), (err: unknown) => {
    assert.ok(err instanceof DeviceError, `got ${String(err)}`);
    assert.match(err.message, /WebGPU is not available in the webview/);
    return true;
  });
});
