// Option parsing shared by the subcommands (parseArgs gives strings; these check and convert them).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../engine/errors';
import { isBackendKind, type BackendKind } from '../../node/createBackend';

export function intOption(value: string | undefined, name: string, min = 1): number {
  if (value === undefined) throw new EngineError(`${name} is required`);
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new EngineError(`${name} must be an integer >= ${min} (got ${value})`);
  return n;
}

/** A non-negative number; `fallback` when the option is absent (without one it is required). */
export function numberOption(value: string | undefined, name: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new EngineError(`${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new EngineError(`${name} must be a non-negative number (got ${value})`);
  return n;
}

/** `--backend cpu|webgpu|auto`. */
export function backendOption(value: string | undefined): BackendKind {
  if (value === undefined || !isBackendKind(value)) throw new EngineError(`--backend must be cpu, webgpu or auto (got ${value})`);
  return value;
}

/** `--backend all|cpu|webgpu|auto` of the bench commands: `all` measures the CPU and WebGPU backends in turn. */
export function backendsOption(value: string | undefined): BackendKind[] {
  if (value === 'all') return ['cpu', 'webgpu'];
  if (value === undefined || !isBackendKind(value)) throw new EngineError(`--backend must be cpu, webgpu or all (got ${value})`);
  return [value];
}

/** `$XDG_CACHE_HOME/star-attention`, else `~/.cache/star-attention`. */
export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'star-attention');
}
