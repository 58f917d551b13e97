// Runs the built CLI (dist/cli.mjs, from `node scripts/build.mjs`) as a user would, from the repository root.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { resolve } from 'node:path';
import { repoRoot } from './paths';

/** `timeoutMs`: a command that hangs is killed then (status null), so a test fails instead of waiting forever. */
export function runCli(args: readonly string[], timeoutMs?: number): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [resolve(repoRoot, 'dist/cli.mjs'), ...args], { encoding: 'utf8', cwd: repoRoot, timeout: timeoutMs });
}
