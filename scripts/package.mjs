// Builds the .vsix files: a universal one (webview WebGPU hosts and the CPU fallback) and platform ones that
// also carry Dawn's native module (the `webgpu` package, for the extension-host fallback) under
// dist/node_modules/webgpu, where dist/extension.cjs's `import('webgpu')` finds it.
// Usage: node scripts/package.mjs [target ...]   targets: universal (default with linux-x64), linux-x64, ...
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { copyWebgpuRuntime } from './webgpuRuntime.mjs';
import { vscePackage } from './vsce.mjs';

const targets = process.argv.slice(2).length ? process.argv.slice(2) : ['universal', 'linux-x64'];
const { name, version } = createRequire(import.meta.url)('../package.json');
const run = (args) => execFileSync(process.execPath, args, { stdio: 'inherit' });

run(['scripts/build.mjs', '--production']);
for (const target of targets) {
  const out = `dist/${name}-${version}${target === 'universal' ? '' : `-${target}`}.vsix`;
  rmSync('dist/node_modules', { recursive: true, force: true });
  if (target !== 'universal') copyWebgpuRuntime('dist/node_modules', target);
  try {
    vscePackage({ cwd: process.cwd(), out, target });
  } finally {
    rmSync('dist/node_modules', { recursive: true, force: true });
  }
  console.log(`${out}: ${(statSync(out).size / 2 ** 20).toFixed(2)} MiB`);
}
