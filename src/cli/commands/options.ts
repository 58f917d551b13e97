// Option parsing shared by the subcommands (parseArgs gives strings; these check and convert them).
import { EngineError } from '../../engine/errors';
import { defaultCacheDir } from '../../node/cache/defaultCacheDir';
import { isBackendKind, type BackendKind } from '../../node/createBackend';
import { MAX_HOSTS } from '../../node/star/localHosts';
import { KV_DTYPES, type KvDtype, type KvDtypeSetting } from '../../engine/runtime/kvBytes';

export function intOption(value: string | undefined, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) throw new EngineError(`${name} is required`);
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new EngineError(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`} (got ${value})`);
  }
  return n;
}

/**
 * Most tokens any command generates: far beyond a context any model here has, small enough that buffers sized by
 * it can be allocated (1e9 used to fail with "Invalid typed array length"). Generation also stops at the context.
 */
export const MAX_GENERATED_TOKENS = 1 << 20;

/** `--max-tokens`: 0 (or 1 with min) up to MAX_GENERATED_TOKENS. */
export function maxTokensOption(value: string | undefined, min = 1): number {
  return intOption(value, '--max-tokens', min, MAX_GENERATED_TOKENS);
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

/** `--backend cpu|cpu-ref|webgpu|auto` (cpu: the WebAssembly kernels; cpu-ref: the JS reference). */
export function backendOption(value: string | undefined): BackendKind {
  if (value === undefined || !isBackendKind(value)) throw new EngineError(`--backend must be cpu, cpu-ref, webgpu or auto (got ${value})`);
  return value;
}

/**
 * `--backend all|cpu|cpu-ref|webgpu|auto` of the bench commands, or several joined by commas (`cpu,cpu-ref`): `all`
 * measures the CPU (WebAssembly) and WebGPU backends in turn.
 */
export function backendsOption(value: string | undefined): BackendKind[] {
  if (value === 'all') return ['cpu', 'webgpu'];
  const kinds = (value ?? '').split(',').map((k) => k.trim());
  for (const k of kinds) if (!isBackendKind(k)) throw new EngineError(`--backend must be cpu, cpu-ref, webgpu, all or a comma-separated list (got ${value})`);
  return kinds as BackendKind[];
}

/** `--cache-dir`: the default when absent; an empty value is an error (it used to turn caching off silently). */
export function cacheDirOption(value: string | undefined): string {
  if (value === undefined) return defaultCacheDir();
  if (value.trim() === '') throw new EngineError('--cache-dir is empty: give a folder (ask --no-cache runs without the disk cache)');
  return value;
}

/** `--cache-dtype`: a KV dtype, or auto (the default: kvDtypeFor's choice per repository). */
export function cacheDtypeOption(value: string | undefined): KvDtypeSetting {
  if (value === undefined || value === 'auto') return 'auto';
  return kvDtypeOption(value, '--cache-dtype', ', or auto');
}

export function kvDtypeOption(value: string | undefined, name: string, more = ''): KvDtype {
  if (value !== undefined && (KV_DTYPES as readonly string[]).includes(value)) return value as KvDtype;
  throw new EngineError(`${name} must be ${KV_DTYPES.join(', ')}${more} (got ${value})`);
}

/** The options `index` and `ask` share: the repository, its blocks, the hosts, the disk cache. For parseArgs. */
export const repositoryOptionSpec = {
  repo: { type: 'string' },
  model: { type: 'string' },
  'chunk-size': { type: 'string', default: '512' },
  'anchor-size': { type: 'string' },
  hosts: { type: 'string', default: '1' },
  'host-threads': { type: 'boolean', default: false },
  'cache-dir': { type: 'string' },
  'cache-max-mb': { type: 'string', default: '4096' },
  'cache-dtype': { type: 'string' },
  'memory-budget-mb': { type: 'string' },
  backend: { type: 'string', default: 'auto' },
} as const;

/** What each of repositoryOptionSpec's options means, for --help. */
export const repositoryOptionNotes = {
  repo: 'the repository folder',
  model: 'a GGUF file or a Hugging Face model folder (default: SmolLM2-135M-Instruct, fetched once; star-ask fetch-model)',
  'chunk-size': 'tokens per context block',
  'anchor-size': 'tokens of the anchor block (default: the chunk size)',
  hosts: 'Star Attention hosts',
  'host-threads': 'hosts 1..k-1 in worker threads',
  'cache-dir': 'KV cache folder (default $XDG_CACHE_HOME/star-attention or ~/.cache/star-attention)',
  'cache-max-mb': 'size cap of the KV cache',
  'cache-dtype': 'auto (default: f16 where the repository fits the model\'s context, q8 beyond it), f16 (half of f32, <= 2^-11 relative error per value), q8 (53 % of f16) or f32 (exact) for new cache entries',
  'memory-budget-mb': 'KV memory per host before blocks stream in waves',
  backend: 'cpu (WebAssembly), cpu-ref (the JS reference), webgpu or auto',
};

export interface RepositoryValues {
  readonly repo?: string;
  readonly model?: string;
  readonly 'chunk-size'?: string;
  readonly 'anchor-size'?: string;
  readonly hosts?: string;
  readonly 'host-threads'?: boolean;
  readonly 'cache-dir'?: string;
  readonly 'cache-max-mb'?: string;
  readonly 'cache-dtype'?: string;
  readonly 'memory-budget-mb'?: string;
  readonly backend?: string;
}

/** Checks and converts the values of repositoryOptionSpec into the StarRepoOptions fields they set. */
export function repositoryOptions(values: RepositoryValues) {
  if (!values.repo) throw new EngineError('--repo is required');
  if (!values.model) throw new EngineError('--model is required');
  const mib = (value: string | undefined, name: string) => (value === undefined ? undefined : intOption(value, name) * 2 ** 20);
  return {
    repo: values.repo,
    modelPath: values.model,
    chunkSize: intOption(values['chunk-size'], '--chunk-size'),
    anchorSize: values['anchor-size'] !== undefined ? intOption(values['anchor-size'], '--anchor-size') : undefined,
    hosts: intOption(values.hosts, '--hosts', 1, MAX_HOSTS),
    hostThreads: values['host-threads'] ? { modelPath: values.model } : undefined,
    backend: backendOption(values.backend),
    cacheDir: cacheDirOption(values['cache-dir']),
    cacheMaxBytes: mib(values['cache-max-mb'], '--cache-max-mb'),
    cacheDtype: cacheDtypeOption(values['cache-dtype']),
    memoryBudgetBytes: mib(values['memory-budget-mb'], '--memory-budget-mb'),
  };
}
