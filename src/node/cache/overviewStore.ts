// The overview an index's anchor was built from, per repository, so the next index (another session, the CLI after
// the extension) keeps it while it stands (prompt.ts keepOverview) instead of re-keying every block:
// <cache dir>/overviews/<64 hex>.json, named by the SHA-256 of the repository's roots and include/exclude patterns.
// An unreadable file is a miss (the overview is then the current one).
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readJsonFile, writeJsonFile } from './jsonFile';

export interface OverviewStore {
  get(): Promise<string[] | undefined>;
  put(lines: readonly string[]): Promise<void>;
}

export interface OverviewKey {
  readonly repo: string | readonly string[];
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
}

export function openOverviewStore(cacheDir: string, key: OverviewKey, onWarning?: (message: string) => void): OverviewStore {
  const roots = (typeof key.repo === 'string' ? [key.repo] : [...key.repo]).map((r) => path.resolve(r));
  const id = createHash('sha256').update(JSON.stringify({ roots, include: key.include ?? [], exclude: key.exclude ?? [] })).digest('hex');
  const file = path.join(path.resolve(cacheDir), 'overviews', `${id}.json`);
  return {
    async get() {
      const lines = ((await readJsonFile(file)) as { lines?: unknown } | undefined)?.lines;
      return Array.isArray(lines) && lines.every((l) => typeof l === 'string') ? lines : undefined;
    },
    put: (lines) => writeJsonFile(file, { lines }, 'the repository overview', onWarning),
  };
}
