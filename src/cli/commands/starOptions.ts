// Option parsing shared by the Star Attention subcommands (index, ask, compare, bench star).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../engine/errors';

export function intOption(value: string | undefined, name: string, min = 1): number {
  if (value === undefined) throw new EngineError(`${name} is required`);
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new EngineError(`${name} must be an integer >= ${min} (got ${value})`);
  return n;
}

export function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new EngineError(`${name} must be a non-negative number (got ${value})`);
  return n;
}

/** `$XDG_CACHE_HOME/star-attention`, else `~/.cache/star-attention`. */
export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'star-attention');
}
