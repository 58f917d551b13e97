// Headless Chromium with WebGPU (SwiftShader on machines without a GPU), driven by playwright-core.
// playwright gives every launch a fresh profile. Never `playwright install`: it downloads a browser; Debian's chromium is used instead.
import { chromium, type Browser } from 'playwright-core';
import { existsSync } from 'node:fs';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string {
  const found = CANDIDATES.find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error('no Chromium found (run `bash scripts/ensure-webgpu-runtime.sh`, or set CHROMIUM_PATH)');
  return found;
}

/** With `webgpu: false`, Chromium runs without --enable-unsafe-webgpu: no WebGPU on Linux, as in VS Code desktop there. */
export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', ...(opts.webgpu === false ? [] : ['--enable-unsafe-webgpu']), '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}
