// The real extension, end to end, in a real VS Code (code-server 4.100.3 + headless Chromium, WebGPU on
// SwiftShader), driven as a user would (issue 6 §10): the linux-x64 .vsix is packaged from the built bundles and
// installed, a small fixture workspace is opened, questions go through the palette, the chat webview and the
// editor, and what the extension did is read from its metrics.jsonl (kinds `hosts`, `index`, `ask`).
// The answers are compared with the CLI's (`star-ask ask --backend cpu`), an independent path: same greedy ids.
// Figures of issue 6 §11 go to dist/test-output/e2e/extension-figures.json and stderr.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Browser, Frame, FrameLocator, Page } from 'playwright-core';
import { copyWebgpuRuntime } from '../scripts/webgpuRuntime.mjs';
import { vscePackage } from '../scripts/vsce.mjs';
import { launchChromium } from './support/browser';
import { runCli } from './support/cli';
import { ensureCodeServer, startCodeServer, type CodeServer } from './support/codeServer';
import { defaultModelFile } from './support/models';
import { modelPath, repoRoot } from './support/paths';
import { answerInputBox, e2eOutputDir, openWorkbench, runCommand, screenshot, webviewFrame } from './support/workbench';

const EXTENSION_ID = 'star-attention.star-attention-codebase';
const MODEL = modelPath('stories260K.gguf');
const CHUNK = 128;
const MAX_TOKENS = 24;
const LONG_MAX_TOKENS = 400;
const QUESTION = 'What does the calculator do?';
const SETTINGS = {
  'starAttention.model': MODEL,
  'starAttention.chunkSize': CHUNK,
  'starAttention.maxNewTokens': MAX_TOKENS,
  'starAttention.indexOnStartup': false,
  'starAttention.temperature': 0,
  'starAttention.hosts': 1,
  // VS Code opens its Comments panel when the first comment thread appears: it takes the thread's room in the
  // screenshots, and its layout competes with the first inline answer for this machine's two cores (the inline
  // timing test measures the extension's path, not the workbench's).
  'comments.openView': 'never',
};

/** About 1100 tokens of this model's tiny vocabulary: 15 blocks of 128, well inside its 2048-token context. */
const FIXTURE: Record<string, string> = {
  'math.ts': '// Small math helpers used by the calculator.\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n',
  'greet.ts': '// Greets a user by name.\nexport function greet(name: string): string {\n  return `Hello, ${name}!`;\n}\n',
  'calculator.ts': "import { add, multiply } from './math';\n\n// A tiny calculator that keeps a running total.\nexport class Calculator {\n  private total = 0;\n  plus(n: number): this { this.total = add(this.total, n); return this; }\n  times(n: number): this { this.total = multiply(this.total, n); return this; }\n  result(): number { return this.total; }\n}\n",
  'config.json': '{ "name": "tiny", "version": "1.0.0", "debug": false }\n',
  'story.md': '# Story\n\nOnce upon a time there was a little cat named Tom. Tom liked to play in the garden with his friend Lily.\n',
  'main.ts': "import { Calculator } from './calculator';\nimport { greet } from './greet';\n\nconsole.log(greet('Lily'));\nconsole.log(new Calculator().plus(2).times(3).result());\n",
};

/** A saved file the walker skips (by its name: 'generated'): the index never holds its text. */
const SKIPPED_FILE: Record<string, string> = {
  'build-stamp.generated.ts': "// Written by the build.\nexport const BUILD_ID = 'e2e-4821';\nexport const BUILT_BY = 'the end-to-end test';\n",
};

const install = ensureCodeServer();
const skip = 'skip' in install ? install.skip : !existsSync(MODEL) ? `${MODEL} is missing` : false;
if (skip) process.stderr.write(`\n*** e2e-extension SKIPPED: ${skip} ***\n\n`);
/** The real model (issue 14 §4), and a small real package to ask it about (npm's `inherits`, from node_modules). */
const SMOL = defaultModelFile();
const REAL_PACKAGE = resolve(repoRoot, 'node_modules/inherits');
const smolSkip = SMOL.skip ?? (!existsSync(join(REAL_PACKAGE, 'package.json')) ? `${REAL_PACKAGE} is missing (npm ci installs it)` : false);

/** Packs the extension as scripts/package.mjs does for linux-x64 (same .vscodeignore, Dawn under dist/node_modules),
 * but from a staging copy of the bundles `node scripts/build.mjs` made: package.mjs's production build empties dist/,
 * which holds the running test bundles. */
function packageExtension(dir: string): string {
  const stage = join(dir, 'extension');
  mkdirSync(join(stage, 'dist'), { recursive: true });
  for (const f of ['package.json', 'README.md', 'LICENSE', '.vscodeignore', 'media', 'docs/screenshots']) cpSync(resolve(repoRoot, f), join(stage, f), { recursive: true });
  for (const f of ['extension.cjs', 'extensionHostWorker.mjs', 'webview']) {
    const from = resolve(repoRoot, 'dist', f);
    if (!existsSync(from)) throw new Error(`${from} is missing: run \`node scripts/build.mjs --tests\` first`);
    cpSync(from, join(stage, 'dist', f), { recursive: true });
  }
  copyWebgpuRuntime(join(stage, 'dist/node_modules'), 'linux-x64', repoRoot);
  const vsix = join(dir, 'star-attention-codebase-linux-x64.vsix');
  return vscePackage({ cwd: stage, out: vsix, target: 'linux-x64', fromDir: repoRoot });
}

interface CliAnswer { answer: string; ids: number[]; stats: { decodeTokensPerSec: number; ttftMs: number; finish: string } }

/** The CLI's answer, cold, with a cache of its own: its KV is kept as the extension's (the default f16 entries). */
function cliAsk(repo: string, maxTokens: number, backend: 'cpu' | 'webgpu'): CliAnswer {
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-e2e-cli-kv-'));
  try {
    const r = runCli(['ask', '--repo', repo, '--model', MODEL, '--chunk-size', String(CHUNK), '--max-tokens', String(maxTokens),
      '--backend', backend, '--cache-dir', cacheDir, '--json', '--question', QUESTION]);
    assert.equal(r.status, 0, `star-ask ask --backend ${backend} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout) as CliAnswer;
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** CPU time (user + system, ms) used so far by the processes whose command line contains `needle`. */
function cpuMsOf(needle: string): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch { /* gone meanwhile */ }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** The user's settings.json; {} while the workbench is (re)writing it (a read can see it empty). */
function readSettingsFile(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

type Metric = Record<string, any> & { kind: string };

function metricsFiles(userDataDir: string): string[] {
  const logs = join(userDataDir, 'logs');
  if (!existsSync(logs)) return [];
  return readdirSync(logs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(join(EXTENSION_ID, 'metrics.jsonl'))).map((f) => join(logs, f)).sort();
}

function readMetrics(file: string): Metric[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Metric);
}

/** Waits until `file` holds more than `seen` metrics of `kind`, and returns the first new one. */
async function nextMetric(file: () => string | undefined, kind: string, seen: number, timeoutMs = 120_000): Promise<Metric> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = file();
    const of = f ? readMetrics(f).filter((m) => m.kind === kind) : [];
    if (of.length > seen) return of[seen]!;
    if (Date.now() > deadline) throw new Error(`no new "${kind}" metric (after ${seen}) within ${timeoutMs} ms in ${f ?? 'metrics.jsonl (none yet)'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the extension in code-server', { skip, timeout: 1_200_000 }, () => {
  let tmp: string;
  let workspace: string;
  let server: CodeServer;
  let browser: Browser;
  let page: Page;
  let chat: FrameLocator;
  /** The first window's metrics.jsonl (the fallback window writes another). */
  let metricsFile: string | undefined;
  const metricsOf = (kind: string) => (metricsFile ? readMetrics(metricsFile).filter((m) => m.kind === kind) : []);
  const firstMetrics = () => (metricsFile ??= metricsFiles(server.userDataDir)[0]);
  const figures: Record<string, unknown> = {};
  let cli: CliAnswer;
  /** The CLI's answer once math.ts was edited. */
  let edited: CliAnswer;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'star-e2e-ext-'));
    workspace = join(tmp, 'workspace');
    mkdirSync(workspace);
    for (const [name, text] of Object.entries({ ...FIXTURE, ...SKIPPED_FILE })) writeFileSync(join(workspace, name), text);
    cli = cliAsk(workspace, MAX_TOKENS, 'cpu');
    const vsix = packageExtension(tmp);
    // Its own KV cache folder: the first question is cold, whatever ran on this machine before.
    server = await startCodeServer((install as { bin: string }).bin, {
      workspace, vsix: [vsix], settings: SETTINGS, env: { XDG_CACHE_HOME: join(tmp, 'cache') },
    });
    browser = await launchChromium();
    page = await openWorkbench(browser, server.workbenchUrl);
    chat = webviewFrame(page, EXTENSION_ID);
  });

  after(async () => {
    mkdirSync(e2eOutputDir, { recursive: true });
    writeFileSync(join(e2eOutputDir, 'extension-figures.json'), JSON.stringify(figures, null, 2));
    process.stderr.write(`\nextension figures (issue 6 §11): ${JSON.stringify(figures, null, 2)}\n`);
    server?.collectLogs(join(e2eOutputDir, 'extension-logs'));
    await browser?.close();
    await server?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Asks from the palette (Ask Codebase + its input box). */
  async function askFromPalette(p: Page, question: string): Promise<void> {
    await runCommand(p, 'Star Attention: Ask Codebase');
    await answerInputBox(p, question, 'Ask a question about the whole repository');
  }

  /** The chat view's page (the inner frame of its webview), once the view is open. */
  async function chatPage(p: Page): Promise<Frame> {
    await webviewFrame(p, EXTENSION_ID).locator('textarea').waitFor({ timeout: 60_000 });
    const frame = p.frames().find((f) => f.parentFrame()?.url().includes(`extensionId=${EXTENSION_ID}`) && f.name() !== '');
    const inner = frame ?? p.frames().find((f) => f.parentFrame()?.url().includes(`extensionId=${EXTENSION_ID}`));
    if (!inner) throw new Error('the chat webview\'s page was not found');
    return inner;
  }

  test('Ask Codebase from the palette streams the answer into the chat; it equals the CLI\'s (greedy ids), on WebGPU Workers in the webview', async () => {
    await runCommand(page, 'Star Attention: Open Chat');
    const frame = await chatPage(page);
    // Every partial answer the page shows while the turn is still streaming, recorded in the page itself.
    await frame.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { starSeen: string[] }).starSeen = seen;
      new MutationObserver(() => {
        const a = document.querySelector<HTMLElement>('.turn[data-turn="1"] .answer.streaming');
        const text = a?.dataset.text;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await askFromPalette(page, QUESTION);
    const turn = chat.locator('.turn[data-turn="1"]');
    await chat.locator('.turn[data-turn="1"][data-done="true"]').waitFor({ timeout: 180_000 });
    const partial = await frame.evaluate(() => (window as unknown as { starSeen: string[] }).starSeen);
    const hosts = await nextMetric(firstMetrics, 'hosts', 0);
    const index = await nextMetric(firstMetrics, 'index', 0);
    const ask = await nextMetric(firstMetrics, 'ask', 0);

    assert.equal(hosts.hostKind, 'webview-webgpu', `hosts: ${JSON.stringify(hosts)}`);
    assert.equal(ask.hostKind, 'webview-webgpu', `hosts: ${JSON.stringify(hosts)}`);
    assert.match(await chat.locator('.status').getAttribute('data-host-kind') ?? '', /^WebGPU workers in the webview/);
    assert.deepEqual(ask.ids, cli.ids, 'greedy ids: extension (webview WebGPU) vs star-ask ask --backend cpu');
    assert.equal(await turn.locator('.answer').getAttribute('data-text'), cli.answer);
    assert.ok(partial.length > 0 && partial[0]!.length < cli.answer.length && cli.answer.startsWith(partial[0]!),
      `a partial answer must be shown while streaming: ${JSON.stringify(partial)}`);
    figures.partialAnswersSeen = partial.length;
    const sources = await turn.locator('.sources a.source').allTextContents();
    assert.ok(sources.length > 0, 'no sources shown');
    for (const s of sources) assert.ok(Object.keys(FIXTURE).includes(s.replace(/:\d+-\d+$/, '')), `source ${s} is not a fixture file`);
    assert.equal(index.blocksEncoded, index.blocks, 'a cold index encodes every block');
    await screenshot(page, 'extension-chat-answer');

    Object.assign(figures, {
      hostsWebview: { kind: hosts.hostKind, device: hosts.device },
      indexCold: { blocks: index.blocks, blocksEncoded: index.blocksEncoded, wallMs: index.wallMs, boundaryBytes: index.boundaryBytes, maxEventLoopStallMs: index.maxEventLoopStallMs },
      askCold: { ttftMs: ask.ttftMs, wallMs: ask.wallMs, decodeTokensPerSec: ask.decodeTokensPerSec, tokens: ask.tokens, boundaryBytesCumulative: ask.boundaryBytes },
    });
  });

  test('the same question again, typed in the chat panel, is warm: nothing re-encoded, same ids', async () => {
    const seen = metricsOf('ask').length;
    const seenIndex = metricsOf('index').length;
    await chat.locator('textarea').fill(QUESTION);
    const asked = Date.now();
    await chat.locator('button', { hasText: 'Ask' }).click();
    await chat.locator('.turn[data-turn="2"] .answer[data-text]:not([data-text=""])').waitFor({ timeout: 120_000 });
    figures.chatFirstTextMs = Date.now() - asked;
    await chat.locator('.turn[data-turn="2"][data-done="true"]').waitFor({ timeout: 120_000 });
    const index = await nextMetric(firstMetrics, 'index', seenIndex);
    const ask = await nextMetric(firstMetrics, 'ask', seen);
    assert.equal(index.blocksEncoded, 0);
    assert.deepEqual(ask.ids, cli.ids);
    const first = metricsOf('ask')[0]!;
    const perQuestion = {
      sent: ask.boundaryBytes.sent - first.boundaryBytes.sent - index.boundaryBytes.sent,
      received: ask.boundaryBytes.received - first.boundaryBytes.received - index.boundaryBytes.received,
    };
    Object.assign(figures, {
      askWarm: { ttftMs: ask.ttftMs, wallMs: ask.wallMs, decodeTokensPerSec: ask.decodeTokensPerSec },
      boundaryBytesPerQuestion: perQuestion,
      indexWarm: { blocksEncoded: index.blocksEncoded, blocksReused: index.blocksReused, wallMs: index.wallMs, boundaryBytes: index.boundaryBytes },
    });
  });

  /** Sets a number setting in the Settings editor, as a user would, and waits until the workbench has written it
   * to settings.json: the extension host hears of the change before any later command (one ordered channel). */
  async function setSetting(key: string, value: number | string, label: string): Promise<void> {
    const file = join(server.userDataDir, 'User', 'settings.json');
    await runCommand(page, 'Preferences: Open Settings (UI)');
    const search = page.locator('.settings-editor .settings-header .suggest-input-container');
    await search.waitFor();
    await search.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(key);
    const row = page.locator(`.settings-editor .setting-item-contents[data-key="${key}"], .settings-editor .setting-item-contents:has(.setting-item-label:text-is("${label}"))`).first();
    const input = row.locator('input').first();
    await input.waitFor();
    await input.fill(String(value));
    await input.press('Tab');
    const deadline = Date.now() + 20_000;
    while (readSettingsFile(file)[key] !== value) {
      if (Date.now() > deadline) throw new Error(`${key} was not written to ${file}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.keyboard.press('Control+W');
  }

  test('Stop cancels a long answer: "Stopped.", and fewer tokens than the limit (a strict prefix of the full answer)', async () => {
    const full = cliAsk(workspace, LONG_MAX_TOKENS, 'cpu');
    assert.equal(full.ids.length, LONG_MAX_TOKENS, 'the full answer must run to the limit, or Stop has nothing to cut');
    await setSetting('starAttention.maxNewTokens', LONG_MAX_TOKENS, 'Max New Tokens');
    const seen = metricsOf('ask').length;
    await askFromPalette(page, QUESTION);
    const turn = chat.locator('.turn[data-turn="3"]');
    await turn.locator('.answer.streaming[data-text]:not([data-text=""])').waitFor({ timeout: 120_000 });
    await chat.locator('button', { hasText: 'Stop' }).click();
    await turn.locator('.notice', { hasText: 'Stopped.' }).waitFor({ timeout: 30_000 });
    const text = (await turn.locator('.answer').getAttribute('data-text')) ?? '';
    assert.ok(text.length > 0 && text.length < full.answer.length, `stopped answer: ${text.length} chars, full: ${full.answer.length}`);
    assert.ok(full.answer.startsWith(text), 'the stopped answer must be a prefix of the full one');
    assert.equal(metricsOf('ask').length, seen, 'a stopped question reports no finished answer');
    await setSetting('starAttention.maxNewTokens', MAX_TOKENS, 'Max New Tokens');
  });

  test('after a file is edited, asking again re-encodes only that file\'s blocks', async () => {
    const seenIndex = metricsOf('index').length;
    const seen = metricsOf('ask').length;
    appendFileSync(join(workspace, 'math.ts'), '\nexport function subtract(a: number, b: number): number {\n  return a - b;\n}\n');
    edited = cliAsk(workspace, MAX_TOKENS, 'cpu');
    await askFromPalette(page, QUESTION);
    const ask = await nextMetric(firstMetrics, 'ask', seen);
    assert.deepEqual(ask.ids, edited.ids, 'after the edit: extension vs star-ask ask --backend cpu on the edited files');
    const indexes = metricsOf('index').slice(seenIndex);
    const encoded = new Set(indexes.flatMap((m) => m.encodedPaths as string[]));
    assert.deepEqual([...encoded], ['math.ts'], `index runs since the edit: ${JSON.stringify(indexes)}`);
    const firstEncoding = indexes.find((m) => m.blocksEncoded > 0)!;
    assert.ok(firstEncoding.blocksReused > 0, 'the other files\' blocks must be reused');
    figures.indexAfterEdit = { blocksEncoded: firstEncoding.blocksEncoded, blocksReused: firstEncoding.blocksReused, wallMs: firstEncoding.wallMs, boundaryBytes: firstEncoding.boundaryBytes, maxEventLoopStallMs: firstEncoding.maxEventLoopStallMs };
  });

  /** Opens `file` (quick open) in `p`'s editor and selects `lines` whole lines from the one holding `text`. */
  async function selectInEditor(p: Page, file: string, text: string, lines: number): Promise<void> {
    await p.keyboard.press('Control+P');
    await p.locator('.quick-input-widget .quick-input-box input').fill(file);
    await p.locator('.quick-input-list .monaco-list-row', { hasText: file }).first().click();
    await p.locator('.editor-instance .monaco-editor .view-line', { hasText: text }).first().click();
    await p.keyboard.press('Home');
    for (let i = 0; i < lines; i++) await p.keyboard.press('Shift+ArrowDown');
  }

  /** How a user types a question (ms a key): a fast typist's 25 characters a second. */
  const TYPING_DELAY_MS = 40;

  /** Asks about the editor's selection; returns the time from Enter to the thread's first answer text, and its
   * `ask` metric. The thread shows at the selection as the command runs; the question is typed key by key, and Enter
   * is pressed once the selection's name has run on the hosts (the `prepare` metric: how long it took, and how much
   * of it the typing did not cover). `question` must be new to the window's threads. */
  async function askInline(p: Page, question: string, metrics: () => string | undefined, shot?: string): Promise<{ firstTextMs: number; questionShownMs: number; ask: Metric; prepare: Metric & { typedMs: number; waitedMs: number } }> {
    const count = (kind: string) => (metrics() ? readMetrics(metrics()!).filter((m) => m.kind === kind).length : 0);
    const seenAsks = count('ask');
    const seenPrepares = count('prepare');
    await runCommand(p, 'Star Attention: Ask About Selection');
    // Before the question is typed: the thread, its placeholder naming the selection.
    await p.locator('.review-widget', { hasText: 'Asking about' }).first().waitFor({ timeout: 60_000 });
    const typing = Date.now();
    let typedMs = 0;
    let waitedMs = 0;
    let prepare: Metric | undefined;
    await answerInputBox(p, question, 'What do you want to know about the selected code?', {
      delayMs: TYPING_DELAY_MS,
      beforeEnter: async () => {
        typedMs = Date.now() - typing;
        prepare = await nextMetric(metrics, 'prepare', seenPrepares, 120_000);
        waitedMs = Date.now() - typing - typedMs;
        if (shot) await screenshot(p, shot);
      },
    });
    const asked = Date.now(); // Enter was pressed (the chat's figure starts at its Ask click)
    // The first answer text in this thread (the placeholder gone, something else in its place); and when the
    // question itself showed there (Date.now() in the page: the same clock).
    const shown = await p.waitForFunction((q) => {
      const w = window as unknown as { starQuestionShown?: Record<string, number> };
      const thread = [...document.querySelectorAll<HTMLElement>('.review-widget')].find((x) => x.innerText.includes(q));
      const bodies = [...(thread?.querySelectorAll<HTMLElement>('.comment-body') ?? [])].map((b) => b.innerText.replace('▍', '').trim());
      const last = bodies[bodies.length - 1];
      if (thread) (w.starQuestionShown ??= {})[q] ??= Date.now();
      return bodies.length >= 2 && !!last && !last.includes('Thinking…') ? w.starQuestionShown![q]! : 0;
    }, question, { timeout: 180_000, polling: 50 });
    const firstTextMs = Date.now() - asked;
    const questionShownMs = (await shown.jsonValue()) - asked;
    return { firstTextMs, questionShownMs, ask: await nextMetric(metrics, 'ask', seenAsks, 180_000), prepare: { ...prepare!, typedMs, waitedMs } };
  }

  /** Asks in the chat panel; returns the time from the Ask click to the turn's first answer text, and its metric. */
  async function askInPanelTimed(question: string): Promise<{ firstTextMs: number; ask: Metric }> {
    const seenAsks = metricsOf('ask').length;
    const before = await chat.locator('.turn').count();
    await runCommand(page, 'Star Attention: Open Chat');
    await chat.locator('textarea').fill(question);
    const asked = Date.now();
    await chat.locator('button', { hasText: 'Ask' }).click();
    await chat.locator(`.log > .turn:nth-child(${before + 1}) .answer[data-text]:not([data-text=""])`).waitFor({ timeout: 120_000 });
    const firstTextMs = Date.now() - asked;
    await chat.locator(`.log > .turn:nth-child(${before + 1})[data-done="true"]`).waitFor({ timeout: 120_000 });
    return { firstTextMs, ask: await nextMetric(firstMetrics, 'ask', seenAsks) };
  }

  test('issue 13 §6: Ask About Selection answers as soon as the chat panel does, the same question on the same repository', async () => {
    // The TypeScript server starts when the first .ts file opens and takes seconds of CPU beside the model's
    // workers on a 2-core machine: opened first and left to settle, as it is long before a user's first question.
    await selectInEditor(page, 'calculator.ts', 'export class Calculator', 3);
    const settleUntil = Date.now() + 30_000;
    for (let last = -1, now = cpuMsOf('tsserver'); now !== last && Date.now() < settleUntil; last = now, now = cpuMsOf('tsserver')) await page.waitForTimeout(1000);
    // Per question: the chat panel, the inline thread, and the chat panel again with the inline's very query (the
    // control: what the query's length alone costs, with nothing of the inline path).
    type Timed = { firstTextMs: number; ask: Metric };
    const pairs: { question: string; chat: Timed; inline: Timed & { prepare: Metric; questionShownMs: number }; chatSameQuery: Timed }[] = [];
    for (const [k, question] of [QUESTION, 'What does this class keep?'].entries()) {
      const inPanel = await askInPanelTimed(question);
      await selectInEditor(page, 'calculator.ts', 'export class Calculator', 3);
      const inline = await askInline(page, question, firstMetrics, k === 0 ? 'extension-inline-typing' : undefined);
      pairs.push({ question, chat: inPanel, inline, chatSameQuery: await askInPanelTimed(inline.ask.question as string) });
    }
    const view = ({ firstTextMs, ask }: Timed) => ({ firstTextMs, ttftMs: ask.ttftMs, queryTokens: ask.queryTokens, prefilledTokens: ask.prefilledTokens, timeline: ask.timeline });
    const ratio = (a: Timed, b: Timed) => +(a.firstTextMs / b.firstTextMs).toFixed(2);
    const sum = (of: (x: (typeof pairs)[number]) => Timed) => pairs.reduce((t, x) => t + of(x).firstTextMs, 0);
    const inlineToChat = +(sum((x) => x.inline) / sum((x) => x.chat)).toFixed(2);
    figures.inline = {
      inlineToChat,
      pairs: pairs.map((x) => ({
        question: x.question, ratio: ratio(x.inline, x.chat), ratioToSameQuery: ratio(x.inline, x.chatSameQuery),
        chat: view(x.chat), inline: { ...view(x.inline), questionShownMs: x.inline.questionShownMs, prepare: x.inline.prepare }, chatSameQuery: view(x.chatSameQuery),
      })),
    };
    // Issue 13 §6: the selection's name ran on the hosts while the question was typed, so after Enter the inline
    // question runs no more query tokens than the chat panel's; and its first text comes as soon. Before: 2.07x over
    // both questions at load 3 (1.9x and 2.25x), 1.45x-3.6x a pair at load 20-27: the name's tokens (~25 ms each on
    // SwiftShader) and the thread drawn after Enter. After: 0.66x-1.16x over both (6 runs, load 3-9; a pair
    // 0.62x-1.27x); the bound leaves room for CI's 2 loaded cores.
    for (const { chat: c, inline: i } of pairs) {
      assert.ok(i.prepare.tokens > 0 && i.ask.prefilledTokens === i.prepare.tokens, `the selection's name must run while the question is typed: ${JSON.stringify(figures.inline)}`);
      const afterEnter = (i.ask.queryTokens as number) - (i.ask.prefilledTokens as number);
      assert.ok(afterEnter <= (c.ask.queryTokens as number), `after Enter the inline question runs ${afterEnter} query tokens, the chat's ${c.ask.queryTokens}: ${JSON.stringify(figures.inline)}`);
    }
    assert.ok(inlineToChat <= 1.4, `the inline answer's first text comes ${inlineToChat}x as late as the chat panel's (over both questions): ${JSON.stringify(figures.inline)}`);
    for (const { chat: c, inline: i, chatSameQuery: same } of pairs) {
      // Where the time went, from the command to the first text, for both: every mark is there and in order.
      for (const t of [c.ask.timeline, i.ask.timeline, same.ask.timeline]) {
        assert.ok(t && [t.called, t.started, t.session, t.indexed, t.firstText, t.done].every((x, k, all) => Number.isFinite(x) && (k === 0 || x >= all[k - 1])), `timeline: ${JSON.stringify(figures.inline)}`);
      }
      // Every query token attends to the whole repository before the first answer token (~20 ms a token on
      // SwiftShader here): the selection is named by its path and first line, no more (44 tokens with its lines).
      const added = (i.ask.queryTokens as number) - (c.ask.queryTokens as number);
      assert.ok(added <= 40, `the selection adds ${added} query tokens to the chat's ${c.ask.queryTokens}: ${JSON.stringify(figures.inline)}`);
      assert.doesNotMatch(i.ask.question as string, /lines \d+-\d+/, 'line numbers are not in the context: they cost tokens and tell the model nothing');
    }
    const thread = page.locator('.review-widget', { hasText: QUESTION });
    await thread.locator('.comment-body', { hasText: 'Thinking…' }).waitFor({ state: 'detached', timeout: 30_000 });
    const bodies = await thread.locator('.comment-body').allInnerTexts();
    assert.equal(bodies.length, 2, JSON.stringify(bodies));
    assert.ok(bodies[1]!.replace('▍', '').trim().length > 0, `empty inline answer: ${JSON.stringify(bodies)}`);
    await screenshot(page, 'extension-inline-thread');
  });

  test('issue 13 §6: a saved file the index skips (generated) sends its selection\'s code with the question, and says so', async () => {
    const [file, text] = Object.entries(SKIPPED_FILE)[0]!;
    const code = text.split('\n').slice(1, 3).join('\n');
    await selectInEditor(page, file, 'export const BUILD_ID', 2);
    const question = 'What is the build id here?';
    const { ask } = await askInline(page, question, firstMetrics);
    assert.ok((ask.question as string).includes(code), `the selected code must go with the question: ${JSON.stringify(ask.question)}`);
    assert.match(ask.question as string, /not in the index/);
    const thread = page.locator('.review-widget', { hasText: question });
    await thread.locator('.comment-body', { hasText: 'is not in the index' }).waitFor({ timeout: 10_000 });
    await thread.locator('.comment-body', { hasText: 'Thinking…' }).waitFor({ state: 'detached', timeout: 60_000 });
    await screenshot(page, 'extension-inline-not-indexed');
  });

  test('without WebGPU in the webview, the hosts fall back and say why', async () => {
    const before = new Set(metricsFiles(server.userDataDir));
    const plain = await launchChromium({ webgpu: false });
    try {
      const other = await openWorkbench(plain, server.workbenchUrl);
      const otherFile = () => metricsFiles(server.userDataDir).find((f) => !before.has(f));
      await askFromPalette(other, QUESTION);
      const hosts = await nextMetric(otherFile, 'hosts', 0, 180_000);
      const ask = await nextMetric(otherFile, 'ask', 0, 180_000);
      assert.ok(['node-webgpu', 'node-cpu'].includes(hosts.hostKind), JSON.stringify(hosts));
      assert.match(hosts.reason, /WebGPU workers in the webview unavailable/);
      const otherChat = webviewFrame(other, EXTENSION_ID);
      await otherChat.locator('.turn[data-turn="1"][data-done="true"]').waitFor({ timeout: 60_000 });
      assert.match(await otherChat.locator('.status .reason').innerText(), /WebGPU workers in the webview unavailable/);
      assert.match(await otherChat.locator('.status').getAttribute('data-host-kind') ?? '', /^(Dawn WebGPU|CPU) in the extension host/);
      assert.deepEqual(ask.ids, edited.ids, 'the fallback hosts give the CLI\'s greedy ids');
      await screenshot(other, 'extension-fallback-status');
      figures.fallback = { kind: hosts.hostKind, device: hosts.device, reason: hosts.reason, decodeTokensPerSec: ask.decodeTokensPerSec };
    } finally {
      await plain.close();
    }
  });

  test('figures: decode tokens/s in the webview Worker vs star-ask ask --backend webgpu (Dawn) on this machine', () => {
    const webgpuCli = cliAsk(workspace, MAX_TOKENS, 'webgpu');
    assert.deepEqual(webgpuCli.ids, edited.ids);
    figures.decodeTokensPerSec = {
      webviewWorker: metricsOf('ask')[1]?.decodeTokensPerSec,
      cliWebgpu: webgpuCli.stats.decodeTokensPerSec,
      cliCpu: cli.stats.decodeTokensPerSec,
    };
  });

  // Issue 13: what a new user trips over. Each test checks the fixed state and leaves its screenshot.

  /** Sets the model in the Settings editor and waits until the extension has heard of it: the chat status names it. */
  async function setModel(path: string): Promise<void> {
    await setSetting('starAttention.model', path, 'Model');
    await chat.locator('.status .model', { hasText: `Model: ${basename(path)}` }).waitFor({ timeout: 30_000 });
  }

  /** Fails unless `l` lies inside the conversation's visible part. */
  async function inView(what: string, l: ReturnType<typeof chat.locator>): Promise<void> {
    const log = (await chat.locator('.log').boundingBox())!;
    const b = (await l.boundingBox())!;
    assert.ok(b.y >= log.y - 1 && b.y + b.height <= log.y + log.height + 1, `${what} is out of the conversation's view: ${JSON.stringify(b)} vs ${JSON.stringify(log)}`);
  }

  /** Asks in the chat panel (textarea + Ask) and waits until the turn is done; returns its locator. */
  async function askInPanel(question: string) {
    const before = await chat.locator('.turn').count();
    await runCommand(page, 'Star Attention: Open Chat');
    await chat.locator('textarea').fill(question);
    await chat.locator('button', { hasText: 'Ask' }).click();
    await chat.locator(`.log > .turn:nth-child(${before + 1})[data-done="true"]`).waitFor({ timeout: 180_000 });
    return chat.locator('.turn').nth(before);
  }

  test('issue 13 §7: single newlines of an answer stay line breaks in the chat panel', async () => {
    await setSetting('starAttention.maxNewTokens', 100, 'Max New Tokens');
    const turn = await askInPanel(QUESTION);
    const text = (await turn.locator('.answer').getAttribute('data-text')) ?? '';
    // Greedy, so the same each run (this model starts a new line after about 35 tokens).
    assert.match(text, /[^\n]\n[^\n]/, `the answer must hold a single newline, or there is nothing to check: ${JSON.stringify(text)}`);
    const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
    assert.deepEqual(lines(await turn.locator('.answer').innerText()), lines(text), 'the rendered answer has the model\'s lines');
    await screenshot(page, 'extension-line-breaks');
  });

  test('issue 13 §4: a saved edit is re-encoded in the background, the status names the file and keeps it through the next question', async () => {
    const seenIndex = metricsOf('index').length;
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget .quick-input-box input').fill('math.ts');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'math.ts' }).first().click();
    await page.locator('.editor-instance .monaco-editor .view-line', { hasText: 'Small math helpers' }).click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n// saved in the editor\n');
    await page.keyboard.press('Control+S');
    const index = await nextMetric(firstMetrics, 'index', seenIndex);
    assert.deepEqual(index.encodedPaths, ['math.ts'], JSON.stringify(index));
    await runCommand(page, 'Star Attention: Open Chat');
    await chat.locator('.status .last-change', { hasText: 'math.ts' }).waitFor({ timeout: 10_000 });
    const turn = await askInPanel(QUESTION);
    assert.match(await chat.locator('.status .last-change').innerText(), /Last re-encoded: math\.ts \(\d+ blocks?, /, 'the question\'s own (no-op) index keeps the last change shown');
    assert.match(await chat.locator('.status .index').innerText(), /up to date/);
    assert.doesNotMatch(await turn.locator('.stats').innerText(), /\b0 blocks encoded/, 'the answer does not read as if the edit was ignored');
    await screenshot(page, 'extension-reindexed-file');
  });

  test('issue 13 §1: with a missing model, the error and its Select Model / Show Log buttons are in view', async () => {
    await setModel(join(tmp, 'no-such-folder', 'missing.gguf'));
    const seenTurns = await chat.locator('.turn').count();
    await askFromPalette(page, QUESTION);
    const turn = chat.locator('.turn').nth(seenTurns);
    const box = turn.locator('.error');
    await box.waitFor({ timeout: 30_000 });
    assert.match(await box.innerText(), /no such file or folder/);
    await page.waitForTimeout(300); // scrolling is immediate; give the page a frame to lay out
    await inView('the error', box);
    await inView('Select Model', box.locator('button', { hasText: 'Select Model' }));
    await inView('Show Log', box.locator('button', { hasText: 'Show Log' }));
    await screenshot(page, 'extension-error-in-view');
  });

  test('issue 13 §3: a corrupt model fails the background index in the status bar (click: the fix) and in the panel', async () => {
    const corrupt = join(tmp, 'corrupt-model', 'corrupt.gguf');
    mkdirSync(join(tmp, 'corrupt-model'), { recursive: true });
    writeFileSync(corrupt, 'this is not a model, only text\n'.repeat(64));
    await setModel(corrupt);
    await runCommand(page, 'Star Attention: Index Repository');
    const item = page.locator('.statusbar-item', { hasText: 'Star: index failed' });
    await item.waitFor({ timeout: 30_000 });
    await chat.locator('.status .index-error', { hasText: 'not a GGUF file' }).waitFor({ timeout: 10_000 });
    assert.equal(await chat.locator('.status .index-error button', { hasText: 'Select Model' }).count(), 1);
    await item.locator('a, .statusbar-item-label').first().click();
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'not a GGUF file' });
    await toast.waitFor({ timeout: 10_000 });
    const fix = toast.locator('.monaco-button', { hasText: 'Select Model' });
    await fix.waitFor();
    // The toast slides in: wait until its button is inside the window before the screenshot.
    await page.waitForFunction(() => {
      const b = [...document.querySelectorAll<HTMLElement>('.notifications-toasts .notification-toast .monaco-button')].find((e) => e.textContent === 'Select Model');
      const r = b?.getBoundingClientRect();
      return !!r && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
    }, undefined, { timeout: 10_000 });
    await page.waitForTimeout(300);
    await screenshot(page, 'extension-index-failed');
    await runCommand(page, 'Notifications: Clear All Notifications');
  });

  test('issue 13 §2: choosing another model (a new resource root reloads the page) and hiding the view keep the conversation', async () => {
    const otherDir = join(tmp, 'other-models');
    mkdirSync(otherDir, { recursive: true });
    cpSync(MODEL, join(otherDir, 'stories260K.gguf'));
    const questions = async () => chat.locator('.turn .question').allInnerTexts();
    const before = await questions();
    assert.ok(before.length >= 5, JSON.stringify(before));
    await setModel(join(otherDir, 'stories260K.gguf'));
    const seen = metricsOf('ask').length;
    const seenHosts = metricsOf('hosts').length;
    await askFromPalette(page, QUESTION);
    await nextMetric(firstMetrics, 'hosts', seenHosts, 180_000);
    await nextMetric(firstMetrics, 'ask', seen, 180_000);
    await chat.locator(`.log > .turn:nth-child(${before.length + 1})[data-done="true"]`).waitFor({ timeout: 30_000 });
    assert.deepEqual((await questions()).slice(0, before.length), before, 'the turns before the model change are still shown');
    assert.equal((await questions()).length, before.length + 1);
    await runCommand(page, 'View: Show Explorer');
    await runCommand(page, 'Star Attention: Open Chat');
    assert.equal((await questions()).length, before.length + 1, 'hidden and shown again, the conversation is the same');
    await screenshot(page, 'extension-conversation-kept');
  });

  test('issue 13 §5: a repository larger than the model\'s context shows its size before and during the index, and a button to index fewer files', async () => {
    await runCommand(page, 'Star Attention: Open Chat');
    assert.match(await chat.locator('.status .size').innerText(), /Repository: [\d,]+ tokens of the model's 2,048-token context/, 'before the index: the last size');
    const story = FIXTURE['story.md']!.split('\n')[2]!;
    writeFileSync(join(workspace, 'big.md'), Array.from({ length: 80 }, (_, i) => `Chapter ${i + 1}. ${story}`).join('\n\n'));
    const seenIndex = metricsOf('index').length;
    await runCommand(page, 'Star Attention: Index Repository');
    await chat.locator('.status[data-index="indexing"] .size').waitFor({ timeout: 30_000 });
    const during = await chat.locator('.status .size').innerText();
    const index = await nextMetric(firstMetrics, 'index', seenIndex, 180_000);
    assert.ok(index.contextTokens > 2048, `the repository must be larger than the context: ${JSON.stringify(index)}`);
    const size = chat.locator('.status .size', { hasText: `${(index.contextTokens as number).toLocaleString('en-US')} tokens,` });
    await size.waitFor({ timeout: 10_000 });
    assert.match(await size.innerText(), /× the model's 2,048-token context/);
    figures.largeRepository = { during, after: await size.innerText() };
    const notice = chat.locator('.status .too-large');
    assert.match(await notice.innerText(), /index fewer files/);
    await page.waitForTimeout(300);
    await inView('the last answer\'s stats, under a taller status', chat.locator('.turn').last().locator('.stats'));
    await screenshot(page, 'extension-large-repo');
    await notice.locator('button', { hasText: 'Include / Exclude' }).click();
    const labels = page.locator('.settings-editor .setting-item-label');
    await labels.filter({ hasText: /^Include$/ }).first().waitFor({ timeout: 20_000 });
    await labels.filter({ hasText: /^Exclude$/ }).first().waitFor();
    assert.equal(await labels.filter({ hasText: 'Chunk Size' }).count(), 0, 'only the include / exclude settings are shown');
    await screenshot(page, 'extension-index-settings');
  });

  // Issue 14 §4: the real model, once, in a window of its own on a real package (the same code-server). Its
  // answers are the README's screenshots. The CPU hosts (WebAssembly in worker threads): SmolLM2 on SwiftShader
  // would take minutes; the CLI's `--backend cpu` runs the same kernels in-process, an independent path to compare.
  test('issue 14 §4: SmolLM2-135M-Instruct answers a question about npm\'s inherits: the CLI\'s greedy ids, streamed, the right source and value', { skip: smolSkip, timeout: 420_000 }, async () => {
    const model = SMOL.path!;
    const repo = join(tmp, 'inherits');
    cpSync(REAL_PACKAGE, repo, { recursive: true });
    // Both walks (the extension's and the CLI's) leave out the window's settings and the package's prose: its code
    // and package.json, ~600 tokens with the anchor, keep the cold index short on 2 cores.
    mkdirSync(join(repo, '.git', 'info'), { recursive: true });
    writeFileSync(join(repo, '.git', 'info', 'exclude'), '.vscode/\nLICENSE\nREADME.md\n');
    mkdirSync(join(repo, '.vscode'));
    const chunk = 512;
    const maxTokens = 24;
    writeFileSync(join(repo, '.vscode', 'settings.json'), JSON.stringify({
      'starAttention.model': model, 'starAttention.hostKind': 'cpu', 'starAttention.chunkSize': chunk, 'starAttention.maxNewTokens': maxTokens,
      'comments.openView': 'never', // the Comments panel would take the thread's room in the screenshot
    }));
    const cliCache = mkdtempSync(join(tmpdir(), 'star-e2e-cli-kv-'));
    const cliAnswer = (q: string): CliAnswer & { sources: { path: string }[] } => {
      const r = runCli(['ask', '--repo', repo, '--model', model, '--chunk-size', String(chunk), '--max-tokens', String(maxTokens),
        '--backend', 'cpu', '--cache-dir', cliCache, '--json', '--question', q]);
      assert.equal(r.status, 0, `star-ask ask --backend cpu failed:\n${r.stderr}`);
      return JSON.parse(r.stdout) as CliAnswer & { sources: { path: string }[] };
    };
    const question = 'What is the version of inherits in package.json?';
    const before = new Set(metricsFiles(server.userDataDir));
    const win = await openWorkbench(browser, server.workbenchUrl.replace(/\?folder=.*$/, `?folder=${encodeURIComponent(repo)}`));
    try {
      const expected = cliAnswer(question);
      const file = () => metricsFiles(server.userDataDir).find((f) => !before.has(f));
      await selectInEditor(win, 'package.json', '"version"', 0); // the file in view beside the answer
      await runCommand(win, 'Star Attention: Open Chat');
      const frame = await chatPage(win);
      await frame.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { starSeen: string[] }).starSeen = seen;
        new MutationObserver(() => {
          const text = document.querySelector<HTMLElement>('.turn[data-turn="1"] .answer.streaming')?.dataset.text;
          if (text && seen[seen.length - 1] !== text) seen.push(text);
        }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
      });
      await askFromPalette(win, question);
      const winChat = webviewFrame(win, EXTENSION_ID);
      await winChat.locator('.turn[data-turn="1"][data-done="true"]').waitFor({ timeout: 300_000 });
      const hosts = await nextMetric(file, 'hosts', 0);
      const ask = await nextMetric(file, 'ask', 0);
      const partial = await frame.evaluate(() => (window as unknown as { starSeen: string[] }).starSeen);
      const text = await winChat.locator('.turn[data-turn="1"] .answer').getAttribute('data-text');
      const sources = await winChat.locator('.turn[data-turn="1"] .sources a.source').allTextContents();
      figures.smollm2 = { question, answer: text, cli: expected.answer, sources, hostKind: hosts.hostKind, ttftMs: ask.ttftMs, decodeTokensPerSec: ask.decodeTokensPerSec, timeline: ask.timeline };
      assert.equal(hosts.hostKind, 'node-cpu', JSON.stringify(hosts));
      assert.deepEqual(ask.ids, expected.ids, 'greedy ids: the extension (CPU worker threads) vs star-ask ask --backend cpu');
      assert.equal(text, expected.answer);
      assert.ok(partial.length > 0 && partial[0]!.length < expected.answer.length && expected.answer.startsWith(partial[0]!), `streamed: ${JSON.stringify(partial)}`);
      // The known answer, and the file it is in attended most (package.json "version": "2.0.4").
      assert.match(text ?? '', /2\.0\.4/, 'SmolLM2 reads the version from package.json');
      assert.match(sources[0] ?? '', /^package\.json:/, `the first source: ${JSON.stringify(sources)}`);
      assert.equal(expected.sources[0]?.path, 'package.json');
      await win.waitForTimeout(300);
      await screenshot(win, 'extension-chat-answer-smollm2');

      // The inline step at a selection (SmolLM2's screenshot in the README) is not asserted here: on 2 cores it
      // passed once and timed out waiting for the comment thread (180 s) in other runs; the inline path is
      // checked on the story model above (issue 13 §6), against the CLI's ids.
    } finally {
      await win.close();
      rmSync(cliCache, { recursive: true, force: true });
    }
  });
});

// The same extension in VS Code itself (Electron), where @vscode/test-electron can download it (a developer machine
// with internet and, on Linux, a display). test/electron/suite.ts runs inside its extension host and asks through
// the command, edits a file and asks again; the checks are made here on its metrics.jsonl, as above. Here (no
// internet) the download fails and the test is skipped, saying so.
test('the extension in VS Code (@vscode/test-electron): Ask Codebase equals the CLI; an edit re-encodes only its file', { timeout: 900_000 }, async (t) => {
  const { downloadAndUnzipVSCode, runTests } = await import('@vscode/test-electron');
  let vscodeExecutablePath: string;
  try {
    vscodeExecutablePath = await downloadAndUnzipVSCode({ version: 'stable', cachePath: resolve(repoRoot, '.vscode-test'), timeout: 30_000 });
  } catch (err) {
    t.skip(`cannot download VS Code (${(err as Error).message.split('\n')[0]}); the same checks run in code-server above`);
    return;
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    t.skip('no display for VS Code\'s window (DISPLAY is unset); run under xvfb-run where there is none');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'star-e2e-electron-'));
  try {
    const workspace = join(tmp, 'workspace');
    mkdirSync(workspace);
    for (const [name, text] of Object.entries(FIXTURE)) writeFileSync(join(workspace, name), text);
    const before = cliAsk(workspace, MAX_TOKENS, 'cpu');
    const editText = '\nexport function multiplyAll(xs: number[]): number {\n  return xs.reduce((a, b) => a * b, 1);\n}\n';
    const afterDir = join(tmp, 'edited');
    cpSync(workspace, afterDir, { recursive: true });
    appendFileSync(join(afterDir, 'math.ts'), editText);
    const after = cliAsk(afterDir, MAX_TOKENS, 'cpu');
    packageExtension(tmp);
    const userDataDir = join(tmp, 'user-data');
    const code = await runTests({
      vscodeExecutablePath,
      extensionDevelopmentPath: join(tmp, 'extension'),
      extensionTestsPath: resolve(repoRoot, 'dist/electron-suite/suite.cjs'),
      launchArgs: [workspace, '--user-data-dir', userDataDir, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome'],
      extensionTestsEnv: {
        STAR_E2E_SETTINGS: JSON.stringify(SETTINGS), STAR_E2E_EXTENSION_ID: EXTENSION_ID, STAR_E2E_QUESTION: QUESTION,
        STAR_E2E_EDIT_FILE: 'math.ts', STAR_E2E_EDIT_TEXT: editText, XDG_CACHE_HOME: join(tmp, 'cache'),
      },
    });
    assert.equal(code, 0, 'the suite inside VS Code failed (its output is above)');
    const [file] = metricsFiles(userDataDir);
    assert.ok(file, `no metrics.jsonl under ${userDataDir}/logs`);
    const metrics = readMetrics(file);
    const asks = metrics.filter((m) => m.kind === 'ask');
    const indexes = metrics.filter((m) => m.kind === 'index');
    const hosts = metrics.find((m) => m.kind === 'hosts');
    t.diagnostic(`hosts in VS Code: ${hosts?.hostKind} (${hosts?.reason ?? 'first choice'}) on ${hosts?.device}`);
    assert.equal(asks.length, 2);
    assert.deepEqual(asks[0]!.ids, before.ids, 'first answer: the CLI\'s greedy ids');
    assert.deepEqual(asks[1]!.ids, after.ids, 'after the edit: the CLI\'s greedy ids on the edited files');
    // The edit's re-encoding: by the watcher's background index or by the second question's, whichever came first.
    const since = indexes.filter((m) => m.at > asks[0]!.at);
    assert.deepEqual([...new Set(since.flatMap((m) => m.encodedPaths as string[]))], ['math.ts'], `index runs since the edit: ${JSON.stringify(since)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
