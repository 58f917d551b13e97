// Builds every bundle with esbuild. Flags: --tests (also bundle test/*.test.ts), --production (minify, no sourcemaps).
import { build } from 'esbuild';
import { readdirSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
// The CPU kernels (kernels/cpu/*.c -> build/cpu-kernels/*.wasm) are compiled first and embedded in every bundle as
// bytes (imports 'star-cpu-kernels:shared' / ':single', each also '-relaxed'), so no bundle looks a .wasm file up at
// run time.
const kernelDir = 'build/cpu-kernels';
// Headers too: a change to simd_math.h alone must rebuild.
const kernelInputs = readdirSync('kernels/cpu').filter((f) => /\.[ch]$/.test(f)).map((f) => join('kernels/cpu', f));
function kernelsStale() {
  const built = ['shared', 'single', 'shared-relaxed', 'single-relaxed'].map((n) => join(kernelDir, `${n}.wasm`));
  if (!built.every(existsSync)) return true;
  const oldest = Math.min(...built.map((f) => statSync(f).mtimeMs));
  if ([...kernelInputs, 'scripts/build-cpu-kernels.sh', 'scripts/relaxedClang.sh'].some((f) => statSync(f).mtimeMs > oldest)) return true;
  // Built without relaxed SIMD (no clang 16+ then): again once one is here (ensure-wasm-toolchain.sh installs it).
  const relaxedEmpty = built.slice(2).some((f) => statSync(f).size === 0);
  return relaxedEmpty && spawnSync('bash', ['scripts/relaxedClang.sh'], { stdio: 'ignore' }).status === 0;
}
if (kernelsStale()) {
  let r = spawnSync('bash', ['scripts/build-cpu-kernels.sh'], { stdio: 'inherit' });
  if (r.status === 3 && spawnSync('bash', ['scripts/ensure-wasm-toolchain.sh'], { stdio: 'inherit' }).status === 0) {
    r = spawnSync('bash', ['scripts/build-cpu-kernels.sh'], { stdio: 'inherit' });
  }
  if (r.status === 3) {
    console.warn('build: no clang/wasm-ld for wasm32: the `cpu` backend will run the JS reference (scripts/ensure-wasm-toolchain.sh installs them)');
  } else if (r.status !== 0) {
    process.exit(r.status ?? 1);
  }
}
const cpuKernelsPlugin = {
  name: 'star-cpu-kernels',
  setup(b) {
    b.onResolve({ filter: /^star-cpu-kernels:(shared|single)(-relaxed)?$/ }, (a) => ({ path: a.path.split(':')[1], namespace: 'star-cpu-kernels' }));
    b.onLoad({ filter: /.*/, namespace: 'star-cpu-kernels' }, (a) => {
      const file = join(kernelDir, `${a.path}.wasm`);
      return { contents: existsSync(file) ? readFileSync(file) : new Uint8Array(0), loader: 'binary', watchFiles: existsSync(file) ? [file] : [] };
    });
  },
};

const common = {
  bundle: true,
  plugins: [cpuKernelsPlugin],
  loader: { '.wgsl': 'text' },
  sourcemap: production ? false : 'linked',
  minify: production,
  target: 'es2022',
  logLevel: 'warning',
};
const nodeCommon = { ...common, platform: 'node', format: 'esm', packages: 'external', outExtension: { '.js': '.mjs' } };
// CommonJS bundles (the extension host, the electron suite) have no import.meta: code that finds files beside its
// bundle (hostPool.ts's defaultHostWorkerScript) gets the bundle's own URL from __filename instead.
const cjsCommon = {
  ...common, platform: 'node', format: 'cjs', outExtension: { '.js': '.cjs' },
  inject: ['scripts/cjs-import-meta-url.js'], define: { 'import.meta.url': 'cjsImportMetaUrl' },
};

// A production build starts from an empty dist/ so no stale source map or test bundle ends up in the .vsix.
if (production) rmSync('dist', { recursive: true, force: true });

const jobs = [];
// CLI: Node ESM (the `webgpu` package is ESM-only).
jobs.push(build({ ...nodeCommon, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } }));
// Star host worker thread (createThreadHostPool in src/node/star/hostPool.ts starts it): Node ESM beside the CLI.
jobs.push(build({ ...nodeCommon, entryPoints: { hostWorker: 'src/node/star/hostWorker.ts' }, outdir: 'dist' }));
// The same worker for the extension (createThreadHostPool's workerScript there): the .vsix ships no node_modules, so
// every package is bundled in but `webgpu` (native; imported only when a WebGPU backend is made).
jobs.push(build({ ...common, platform: 'node', format: 'esm', entryPoints: { extensionHostWorker: 'src/node/star/hostWorker.ts' },
  outdir: 'dist', outExtension: { '.js': '.mjs' }, external: ['webgpu'],
  // Bundled CommonJS packages may require() Node's own modules: give the ESM bundle a require.
  banner: { js: "import { createRequire as __starCreateRequire } from 'node:module'; const require = __starCreateRequire(import.meta.url);" } }));
// Extension host: CommonJS, `vscode` provided by the host; `webgpu` is loaded with a dynamic import.
if (existsSync('src/extension/extension.ts')) {
  jobs.push(build({ ...cjsCommon, entryPoints: { extension: 'src/extension/extension.ts' }, outdir: 'dist', external: ['vscode', 'webgpu'] }));
}
// Webview page and its host workers (WebGPU): browser bundles.
for (const [name, entry] of [['webview', 'webview/main.ts'], ['hostWorker', 'webview/hostWorker.ts']]) {
  if (existsSync(entry)) jobs.push(build({ ...common, platform: 'browser', format: 'esm', entryPoints: { [name]: entry }, outdir: 'dist/webview' }));
}
if (args.has('--tests')) {
  rmSync('dist/test', { recursive: true, force: true });
  const tests = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => join('test', f));
  if (tests.length) jobs.push(build({ ...nodeCommon, entryPoints: tests, outdir: 'dist/test' }));
  // The suite @vscode/test-electron runs inside VS Code's extension host (CommonJS, `vscode` provided there); outside
  // dist/test, where `node --test` would run it as a test file.
  jobs.push(build({ ...cjsCommon, entryPoints: { suite: 'test/electron/suite.ts' }, outdir: 'dist/electron-suite', external: ['vscode'] }));
}
await Promise.all(jobs);
