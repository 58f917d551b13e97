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

/** `webgpu: false` leaves out --enable-unsafe-webgpu: navigator.gpu stays but requestAdapter() gives null, as in
 * a VS Code whose webviews have no WebGPU (the extension's fallback case). */
export async function launchChromium(options: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', ...(options.webgpu === false ? [] : ['--enable-unsafe-webgpu']),
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}
