// Copies the `webgpu` package (Dawn's Node bindings) for ONE platform into a node_modules folder that ships
// inside a platform .vsix, e.g. dist/node_modules/webgpu for `vsce package --target linux-x64`: its
// package.json, index.js and the one dist/<platform>/ folder (dawn.node, plus DLLs on Windows). The other
// platforms' binaries (about 20 MB each) and the package's build scripts stay out.
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** vsce target -> folder of node_modules/webgpu/dist (webgpu 0.6.x ships one universal macOS build). */
const DAWN_FOLDERS = {
  'linux-x64': 'linux-x64', 'linux-arm64': 'linux-arm64', 'win32-x64': 'win32-x64', 'win32-arm64': 'win32-arm64',
  'darwin-x64': 'darwin-universal', 'darwin-arm64': 'darwin-universal',
};

/** Copies node_modules/webgpu for `target` into `<nodeModulesDir>/webgpu` and returns that folder. */
export function copyWebgpuRuntime(nodeModulesDir, target, fromDir = process.cwd()) {
  const folder = DAWN_FOLDERS[target];
  if (!folder) throw new Error(`no Dawn build for vsce target ${target} (known: ${Object.keys(DAWN_FOLDERS).join(', ')})`);
  const source = dirname(createRequire(join(fromDir, 'package.json')).resolve('webgpu/package.json'));
  const binaries = join(source, 'dist', folder);
  if (!existsSync(binaries) || readdirSync(binaries).length === 0) throw new Error(`${binaries} is missing: reinstall the webgpu package`);
  const dest = join(nodeModulesDir, 'webgpu');
  mkdirSync(dest, { recursive: true });
  for (const file of ['package.json', 'index.js', 'LICENSE.md']) cpSync(join(source, file), join(dest, file));
  cpSync(binaries, join(dest, 'dist', folder), { recursive: true });
  return dest;
}
