// The tokenizer's pieces of a repository's last layout (EncodeCache.entries), per model and repository, so a
// command that starts a new session (`star-ask ask`, `index`) does not tokenize every file again:
// <cache dir>/pieces/<64 hex>.json, named by the SHA-256 of the model's identity and the repository's roots and
// patterns. An unreadable or foreign file is a miss.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readJsonFile, writeJsonFile } from './jsonFile';

const VERSION = 1;

export interface PieceStore {
  get(): Promise<[string, number[]][] | undefined>;
  put(entries: Iterable<[string, readonly number[]]>): Promise<void>;
}

export interface PieceKey {
  /** The model's identity (its tokenizer is part of it). */
  readonly model: string;
  readonly repo: string | readonly string[];
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
}

export function openPieceStore(cacheDir: string, key: PieceKey, onWarning?: (message: string) => void): PieceStore {
  const roots = (typeof key.repo === 'string' ? [key.repo] : [...key.repo]).map((r) => path.resolve(r));
  const id = createHash('sha256').update(JSON.stringify({ model: key.model, roots, include: key.include ?? [], exclude: key.exclude ?? [] })).digest('hex');
  const file = path.join(path.resolve(cacheDir), 'pieces', `${id}.json`);
  return {
    async get() {
      const value = (await readJsonFile(file)) as { version?: unknown; entries?: unknown } | undefined;
      if (value?.version !== VERSION || !Array.isArray(value.entries)) return undefined;
      const entries = value.entries as unknown[];
      const valid = entries.every((e) => Array.isArray(e) && typeof e[0] === 'string' && Array.isArray(e[1]) && (e[1] as unknown[]).every(Number.isInteger));
      return valid ? (entries as [string, number[]][]) : undefined;
    },
    put: (entries) => writeJsonFile(file, { version: VERSION, entries: [...entries] }, "the repository's tokenized pieces", onWarning),
  };
}
