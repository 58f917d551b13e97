// The engine inside a real browser worker (headless Chromium, navigator.gpu on SwiftShader here), driven
// through the same EngineClient the webview uses: golden ids, errors across the boundary, cancellation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/browser';
import { file, serve } from './support/staticServer';
import type { Harness } from './browser/harness';

const shared = resolve('../shared');
const golden = JSON.parse(readFileSync(join(shared, 'golden/stories260K.golden.json'), 'utf8')) as { greedy_from_bos_ids: number[] };

let browser: Browser;
let page: Page;
let close: () => void;

before(async () => {
  const harness = await build({ entryPoints: ['test/browser/harness.ts'], bundle: true, format: 'esm', platform: 'browser', write: false, loader: { '.wgsl': 'text' } });
  const model = readFileSync(join(shared, 'models/stories260K.gguf'));
  const tmp = mkdtempSync(join(tmpdir(), 'star-webview-'));
  writeFileSync(join(tmp, 'truncated.gguf'), model.subarray(0, model.length - 1000));
  const { url, server } = await serve({
    '/': { type: 'text/html', body: () => '<!doctype html><meta charset="utf-8"><script type="module" src="/harness.js"></script>' },
    '/harness.js': { type: 'text/javascript', body: () => harness.outputFiles[0]!.text },
    '/worker.js': file('dist/webview/worker.js', 'text/javascript'),
    '/stories260K.gguf': file(join(shared, 'models/stories260K.gguf'), 'application/octet-stream'),
    '/truncated.gguf': file(join(tmp, 'truncated.gguf'), 'application/octet-stream'),
  });
  close = () => server.close();
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`[page] ${m.text()}\n`); });
  await page.goto(url);
  await page.waitForFunction(() => 'harness' in globalThis);
});

after(async () => {
  await browser?.close();
  close?.();
});


test('worker on navigator.gpu: greedy ids from BOS equal the golden ids (64 tokens), streamed in order', async () => {
  const r = await page.evaluate(() => (globalThis as unknown as Harness).harness.greedy('/stories260K.gguf', 'stories260K.gguf', 64));
  assert.match(r.loaded.device, /.+/);
  assert.deepEqual(r.ids, golden.greedy_from_bos_ids.slice(1, 65));
  assert.deepEqual(r.streamed, r.ids);
  process.stderr.write(`[webview worker] device=${r.loaded.device} decode=${r.stats.decodeTokensPerSec.toFixed(1)} tok/s\n`);
});

test('a truncated model fails in the worker with a FormatError that names the file', async () => {
  const r = await page.evaluate(() => (globalThis as unknown as Harness).harness.loadError('/truncated.gguf', 'truncated.gguf'));
  assert.ok(r, 'loading a truncated file must fail');
  assert.equal(r.name, 'FormatError');
  assert.match(r.message, /truncated\.gguf/);
});

test('cancelling a generation in the worker stops it with CancelledError', async () => {
  const r = await page.evaluate(() => (globalThis as unknown as Harness).harness.cancelAfter('/stories260K.gguf', 'stories260K.gguf', 3));
  assert.equal(r.error, 'CancelledError');
  assert.ok(r.seen >= 3 && r.seen < 400, `saw ${r.seen} tokens`);
});
