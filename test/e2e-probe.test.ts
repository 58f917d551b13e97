// What works inside a real VS Code (code-server 4.100.3, headless Chromium with WebGPU on SwiftShader), measured
// by the probe extension in test/fixtures/probe-extension, installed from a .vsix like a user would:
//   a. a webview view in its own activity-bar container (retainContextWhenHidden), revealed by a command;
//   b. a blob: Worker in that webview sees navigator.gpu and gets an adapter;
//   c. typed arrays over webview.postMessage, both directions (what type arrives);
//   d. Dawn (`webgpu`) from the installed .vsix's dist/node_modules, in the extension host and a worker thread;
//   e. whether vscode.chat.createChatParticipant exists, and a Comments API thread whose reply streams;
//   f. a palette command's showInputBox, typed into.
// Every probe's observations go to dist/test-output/e2e/probe-results.json (and screenshots beside it).
//
// Findings (code-server 4.100.3 = VS Code 1.100.3, Node 20, headless Chromium, this machine):
// a. The view shows in its own container; `<viewId>.focus` reveals it. With retainContextWhenHidden, hiding it
//    does not re-resolve it and keeps the page; the page's AND its Worker's timers keep running while hidden,
//    and a message posted to the hidden webview is answered at once (no suspension seen here).
// b. A blob: Worker sees navigator.gpu; adapter google/swiftshader; requestDevice works (page too). Chromium
//    without --enable-unsafe-webgpu still defines navigator.gpu but requestAdapter() gives null: the way to
//    test the extension's "no WebGPU in the webview" fallback (launchChromium({ webgpu: false })).
// c. Both directions deliver real typed arrays: Float32Array, Uint8Array, Int32Array (nested too) and ArrayBuffer
//    arrive with their own constructor, not as {0:..,1:..} objects; a subarray arrives as a view with its
//    byteOffset over the WHOLE backing buffer (send a copy to avoid shipping the rest). Buffers are copied,
//    not transferred (the sender's stay attached). 4 MiB of f32 took 0.7-1.5 s host->webview and 1.7-3.2 s
//    webview->host on this loaded 2-core machine (the time includes building the payload).
// d. `import('webgpu')` from dist/ of the INSTALLED .vsix resolves dist/node_modules/webgpu and gets a
//    SwiftShader adapter with VK_ICD_FILENAMES set by the extension, on the extension host and in a
//    worker_threads Worker it starts.
// e. vscode.chat.createChatParticipant exists and succeeds (participant declared in package.json), but with no
//    chat provider (Copilot) installed `workbench.action.chat.open` shows nothing and the participant gets no
//    request. The Comments API renders an expanded thread in the editor and the reply updates in place.
// f. showInputBox from a palette command takes typed text.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { copyWebgpuRuntime } from '../scripts/webgpuRuntime.mjs';
import { vscePackage } from '../scripts/vsce.mjs';
import { launchChromium } from './support/browser';
import { ensureCodeServer, groupMembers, startCodeServer, type CodeServer } from './support/codeServer';
import { repoRoot } from './support/paths';
import { answerInputBox, e2eOutputDir, openWorkbench, runCommand, screenshot, webviewFrame } from './support/workbench';

const PROBE_ID = 'star-test.star-probe';
const install = ensureCodeServer();
const skip = 'skip' in install ? install.skip : false;
if (skip) process.stderr.write(`\n*** e2e-probe SKIPPED: ${skip} ***\n\n`);

/** Stages the fixture like a real build (src/ -> dist/, Dawn for linux-x64 under dist/node_modules) and packs it. */
function packageProbe(dir: string): string {
  const stage = join(dir, 'probe');
  cpSync(resolve(repoRoot, 'test/fixtures/probe-extension'), stage, { recursive: true });
  renameSync(join(stage, 'src'), join(stage, 'dist'));
  copyWebgpuRuntime(join(stage, 'dist/node_modules'), 'linux-x64', repoRoot);
  const vsix = join(dir, 'star-probe.vsix');
  return vscePackage({ cwd: stage, out: vsix, fromDir: repoRoot });
}

describe('code-server probe', { skip }, () => {
  let tmp: string;
  let probeOut: string;
  let server: CodeServer;
  let browser: Browser;
  let page: Page;
  let stopped = false;
  const results: Record<string, unknown> = {};

  /** Waits for the probe's record `name` (a JSON file the extension writes atomically) and returns it. */
  async function record<T = any>(name: string, timeoutMs = 30_000): Promise<T> {
    const file = join(probeOut, `${name}.json`);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`the probe extension wrote no ${name}.json within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const value = JSON.parse(readFileSync(file, 'utf8')) as T;
    results[name] = value;
    return value;
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'star-e2e-probe-'));
    probeOut = join(tmp, 'out');
    mkdirSync(probeOut);
    const workspace = join(tmp, 'workspace');
    mkdirSync(workspace);
    writeFileSync(join(workspace, 'sample.txt'), 'export function add(a: number, b: number): number {\n  return a + b;\n}\n');
    const vsix = packageProbe(tmp);
    server = await startCodeServer((install as { bin: string }).bin, { workspace, vsix: [vsix], env: { STAR_PROBE_OUT: probeOut } });
    browser = await launchChromium();
    page = await openWorkbench(browser, server.workbenchUrl);
    await record('activated', 60_000);
  });

  after(async () => {
    mkdirSync(e2eOutputDir, { recursive: true });
    writeFileSync(join(e2eOutputDir, 'probe-results.json'), JSON.stringify(results, null, 2));
    if (!stopped) {
      if (page) await screenshot(page, 'probe-final').catch(() => undefined);
      server?.collectLogs(join(e2eOutputDir, 'probe-logs'));
      await browser?.close();
      await server?.stop();
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a: a command reveals the webview view in its own container; hiding it keeps its page (retainContextWhenHidden)', async () => {
    await runCommand(page, 'Star Probe: Reveal View');
    const frame = webviewFrame(page, PROBE_ID);
    await frame.locator('#ready').waitFor();
    const ready = await record('webview-ready');
    assert.equal(ready.resolveCount, 1);
    await frame.locator('#click-me').click();
    await frame.locator('#clicked').waitFor();
    await record('webview-clicked');
    await screenshot(page, 'probe-webview-view');

    await runCommand(page, 'Star Probe: Hide And Show View');
    const h = await record('hide-and-show');
    assert.equal(h.resolveCount, 1, 'showing the view again must not resolve it again');
    assert.equal(h.after.instanceId, ready.instanceId, 'the page must be the same one (context retained)');
    assert.equal(h.visibleAfter, true);
    assert.equal(h.visibleWhileHidden, false, 'the view must really have been hidden');
  });

  test('b: a blob: Worker in the webview gets a WebGPU adapter and a device', async () => {
    const gpu = await record('webview-worker-gpu');
    assert.equal(gpu.hasGpu, true, JSON.stringify(gpu));
    assert.ok(gpu.adapter, `no adapter: ${JSON.stringify(gpu)}`);
    assert.equal(gpu.device, true);
  });

  test('b: with Chromium started without --enable-unsafe-webgpu, the same Worker gets no adapter (the fallback case)', async () => {
    const plain = await launchChromium({ webgpu: false });
    try {
      const other = await openWorkbench(plain, server.workbenchUrl);
      await runCommand(other, 'Star Probe: Reveal View');
      const shown = await webviewFrame(other, PROBE_ID).locator('#worker-gpu').textContent();
      const gpu = JSON.parse(shown!.slice(shown!.indexOf(':') + 1));
      results['webview-worker-gpu-without-flag'] = gpu;
      assert.equal(gpu.hasGpu, true, 'navigator.gpu is still defined');
      assert.equal(gpu.adapter, null, `expected no adapter: ${shown}`);
    } finally {
      await plain.close();
    }
  });

  test('c: typed arrays cross webview.postMessage in both directions', async () => {
    await runCommand(page, 'Star Probe: Exchange Typed Arrays');
    const toWebview = await record('typed-host-to-webview');
    const toHost = await record('typed-webview-to-host');
    await record('typed-host-sender-after-post');
    await record('typed-webview-sender-after-post');
    for (const [direction, r] of [['host -> webview', toWebview], ['webview -> host', toHost]] as const) {
      // What arrives is recorded in probe-results.json; these are the facts the extension's design relies on.
      assert.equal(r.f32.isFloat32Array, true, `${direction}: Float32Array arrived as ${JSON.stringify(r.f32)}`);
      assert.deepEqual(r.f32.head, [1.5, -2.25, 3.125, 4], direction);
      assert.equal(r.buf.isArrayBuffer, true, `${direction}: ArrayBuffer arrived as ${JSON.stringify(r.buf)}`);
      assert.equal(r.big.length, 1 << 20, direction);
      assert.equal(r.big.last, (1 << 20) - 1, direction);
      assert.deepEqual(r.sub.head, [4, 5, 6, 7], direction);
    }
  });

  test('d: Dawn loads from the installed .vsix in the extension host and in a worker thread', async () => {
    const dawn = await record('dawn', 60_000);
    assert.ok(dawn.resolved.startsWith(server.extensionsDir), `webgpu resolved outside the installed extension: ${dawn.resolved}`);
    assert.ok(dawn.main.adapter, `extension host: ${JSON.stringify(dawn.main)}`);
    assert.ok(dawn.worker.adapter, `worker thread: ${JSON.stringify(dawn.worker)}`);
    assert.ok(dawn.worker.resolved.startsWith(server.extensionsDir));
  });

  test('e: chat participant API presence, and a Comments API thread whose reply streams into the editor', async () => {
    const chat = await record('chat');
    // Finding e: the API is there and creating a participant (declared in package.json) succeeds.
    assert.deepEqual({ namespace: chat.hasChatNamespace, create: chat.hasCreateChatParticipant, created: chat.created, error: chat.error },
      { namespace: true, create: true, created: true, error: undefined }, JSON.stringify(chat));
    await runCommand(page, 'Star Probe: Stream A Comment Thread');
    const comments = await record('comments');
    await page.locator('.review-widget', { hasText: comments.final }).waitFor();
    await screenshot(page, 'probe-comment-thread');
  });

  test('e: with no chat provider installed, the chat view delivers no request to an extension\'s participant', async () => {
    await runCommand(page, 'Star Probe: Ask The Chat Participant');
    // Finding e: the command runs without an error, and shows nothing: no request reaches the participant (were
    // one to arrive, @codebase would work in plain code-server and this finding, with the extension's fallbacks
    // built on it, would need revisiting).
    assert.deepEqual(await record('chat-open'), { ok: true });
    const request = await record('chat-request', 8_000).then((r) => ({ received: true, ...r }), (e: Error) => ({ received: false, why: e.message }));
    results['chat-request'] = request;
    await screenshot(page, 'probe-chat');
    assert.equal(request.received, false, JSON.stringify(request));
  });

  test('f: a palette command\'s input box takes typed text', async () => {
    await runCommand(page, 'Star Probe: Ask Something');
    await answerInputBox(page, 'what does add do?', 'Ask the probe a question');
    assert.deepEqual(await record('ask'), { value: 'what does add do?' });
    // The extension's LogOutputChannel lands under user-data-dir/logs, where tests can wait on its lines.
    assert.match(await server.waitForLog(/ask: \{"value":"what does add do\?"\}/), /\[info\]/);
  });

  test('stopping code-server leaves none of its processes behind', async () => {
    await screenshot(page, 'probe-final');
    server.collectLogs(join(e2eOutputDir, 'probe-logs'));
    await browser.close();
    const leader = server.pid;
    stopped = true;
    await server.stop();
    assert.deepEqual(groupMembers(leader), []);
  });
});
