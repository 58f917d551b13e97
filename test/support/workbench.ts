// Drives code-server's workbench in headless Chromium (playwright-core): open it, run commands from the
// palette, answer input boxes, reach into webviews, take screenshots. Selectors are VS Code's own DOM
// (checked against code-server 4.100.3).
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { repoRoot } from './paths';

/** Where end-to-end tests put screenshots and collected logs. */
export const e2eOutputDir = resolve(repoRoot, 'dist/test-output/e2e');

/** Opens the workbench at `url` and waits until its activity bar and status bar are shown. */
export async function openWorkbench(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => process.stderr.write(`[workbench page error] ${e.message}\n`));
  await page.goto(url, { timeout: 120_000 }); // a loaded 2-core machine serves the workbench slowly
  await page.locator('.monaco-workbench .part.activitybar').waitFor({ timeout: 60_000 });
  await page.locator('.monaco-workbench .part.statusbar').waitFor();
  return page;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const quickInput = (page: Page) => page.locator('.quick-input-widget .quick-input-box input');

/** Runs a command from the palette (F1) by its full title as the palette shows it ("Category: Title").
 * The palette lists the commands known when it opens, and a fresh window learns an extension's commands only
 * once its extension host has scanned them, so a palette without the command is closed and opened again. */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const label = new RegExp(`^${escapeRegExp(title)}$`);
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: label }) }).first();
  for (;;) {
    await page.keyboard.press('F1');
    const input = quickInput(page);
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ timeout: Math.max(1, Math.min(5000, deadline - Date.now())) });
      await row.click();
      return;
    } catch (e) {
      if (Date.now() >= deadline) throw new Error(`no command titled "${title}" in the palette within ${timeoutMs} ms`, { cause: e });
      await page.keyboard.press('Escape');
    }
  }
}

/** Types `text` into the input box a command opened (vscode.window.showInputBox) and presses Enter.
 * `prompt`, when given, must appear in the box, so the palette's own input is never mistaken for it. With `delayMs`
 * the text is typed key by key, as a user would; `beforeEnter` runs once it is typed. */
export async function answerInputBox(page: Page, text: string, prompt?: string, o: { delayMs?: number; beforeEnter?: () => Promise<void> } = {}): Promise<void> {
  if (prompt) await page.locator('.quick-input-widget .quick-input-message', { hasText: prompt }).waitFor();
  await page.waitForFunction(() => {
    const input = document.querySelector<HTMLInputElement>('.quick-input-widget .quick-input-box input');
    return !!input && input.offsetParent !== null && !input.value.startsWith('>');
  });
  if (o.delayMs) await quickInput(page).pressSequentially(text, { delay: o.delayMs });
  else await quickInput(page).fill(text);
  await o.beforeEnter?.();
  await quickInput(page).press('Enter');
}

/** The document inside a webview (view or panel): VS Code nests it as iframe.webview > iframe#active-frame.
 * `extensionId` ("publisher.name") picks the webview of one extension when several are open. */
export function webviewFrame(page: Page, extensionId?: string): FrameLocator {
  const outer = extensionId ? `iframe.webview.ready[src*="extensionId=${extensionId}"]` : 'iframe.webview.ready';
  return page.frameLocator(outer).frameLocator('#active-frame');
}

/** Saves a full-window screenshot as dist/test-output/e2e/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(e2eOutputDir, { recursive: true });
  const path = join(e2eOutputDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
