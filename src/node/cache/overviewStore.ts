// The overview an index's anchor was built from, per repository, so the next index (another session, the CLI after
// the extension) keeps it while it stands (prompt.ts keepOverview) instead of re-keying every block:
// <cache dir>/overviews/<64 hex>.json, named by the SHA-256 of the repository's roots and include/exclude patterns.
// Written to a temp file and renamed into place; an unreadable file is a miss (the overview is then the current one).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

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
      try {
        const value: unknown = JSON.parse(await readFile(file, 'utf8'));
        const lines = (value as { lines?: unknown }).lines;
        return Array.isArray(lines) && lines.every((l) => typeof l === 'string') ? lines : undefined;
      } catch {
        return undefined;
      }
    },
    async put(lines) {
      const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
      try {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(temp, JSON.stringify({ lines }), { flag: 'wx' });
        await rename(temp, file);
      } catch (err) {
        await unlink(temp).catch(() => {});
        onWarning?.(`${file}: the repository overview was not stored: ${(err as Error).message}`);
      }
    },
  };
}
