// Runs `vsce package` with the flags every .vsix of this project is built with (scripts/package.mjs and the
// end-to-end tests share it, so a test packs what users install).
//
// --no-rewrite-relative-links: README.md shows docs/screenshots/*.png by relative path. vsce would rewrite
// those to a GitHub URL derived from package.json's repository, and refuses to pack when it cannot; VS Code's
// extension page resolves relative links against the installed extension's folder, where .vscodeignore puts
// the screenshots, so the links are left as they are.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Packs the extension staged in `cwd` into `out` for a vsce `target` ('universal' for none); throws with vsce's output. */
export function vscePackage({ cwd, out, target = 'universal', fromDir = process.cwd() }) {
  const vsce = createRequire(join(fromDir, 'package.json')).resolve('@vscode/vsce/vsce');
  const args = [vsce, 'package', '--no-dependencies', '--no-rewrite-relative-links',
    ...(target === 'universal' ? [] : ['--target', target]), '-o', out];
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vsce package (${target}) failed:\n${r.stdout}${r.stderr}${r.error ?? ''}`);
  return out;
}
