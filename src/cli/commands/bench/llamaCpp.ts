// llama.cpp as the peer of the bench commands (peer, repo): the npm package node-llama-cpp (prebuilt binaries),
// which is not a dependency of this project. It is loaded at run time when installed in its own folder
// .llama-cpp/ at the checkout's root (git-ignored), with LLAMA_CPP_INSTALL below, or in the project's node_modules;
// each bench reports the install command instead of figures when it is missing. Its own folder because
// --omit=optional (which keeps the install at 164 MB instead of 732 MB of GPU builds) would otherwise also remove
// the project's optional platform packages, esbuild's binary among them, and break the build.
// Settings are the fastest seen on small CPUs: flash attention off, f32 KV cache, all threads for prefill, one
// thread for decode (more threads were up to 40x slower on a tiny model).
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EngineError } from '../../../engine/errors';

const PEER_PACKAGE = 'node-llama-cpp';
/** The peer's folder at the checkout's root: the parent of dist/ (the CLI bundle) or of dist/test/ (test bundles). */
const HERE = dirname(fileURLToPath(import.meta.url));
const PEER_DIRS = [resolve(HERE, '..', '.llama-cpp'), resolve(HERE, '..', '..', '.llama-cpp')];
export const LLAMA_CPP_INSTALL =
  'npm i --prefix .llama-cpp --no-save --no-package-lock -E node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1 --omit=optional';

/** Context settings for a CPU context: f32 KV, no flash attention. */
export const LLAMA_CPP_KV = { flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as const;
/**
 * Threads for prefill: all cores, or STAR_ASK_LLAMA_CPP_THREADS. On a machine loaded past its cores llama.cpp's
 * threads wait for each other at every op (one descheduled thread stalls the rest): 900 tokens of SmolLM2 took
 * 31.9 s with 2 threads and 12.8-15.3 s with 1 at load 17 on 2 cores, so the benches there run it with 1.
 */
export const LLAMA_CPP_PREFILL_THREADS = Number(process.env.STAR_ASK_LLAMA_CPP_THREADS) || cpus().length;
/**
 * STAR_ASK_LLAMA_CPP_CPU: which of node-llama-cpp's CPU builds to run (the suffix of its libggml-cpu-<name>.so:
 * haswell is AVX2, alderlake AVX2 + AVX-VNNI, icelake AVX-512 VNNI, sapphirerapids adds AMX). Unset: the one ggml
 * scores best for this CPU. A Xeon with AMX gets sapphirerapids, whose int8 tile products ran prefill 1.9x faster
 * than its AVX-512 build here; a laptop has AVX2 at most, so the figures beside a laptop's llama.cpp need haswell.
 */
export const LLAMA_CPP_CPU = process.env.STAR_ASK_LLAMA_CPP_CPU || undefined;

/** A model loaded in llama.cpp; node-llama-cpp's objects are untyped here (it is not a dependency). */
export interface LlamaCppModel {
  /** e.g. "llama.cpp 3.21.1 cpu (node-llama-cpp)" */
  readonly device: string;
  readonly model: any;
  dispose(): Promise<void>;
}

/** Loads `modelPath` in llama.cpp on the CPU, or undefined when node-llama-cpp is not installed. */
export async function loadLlamaCppModel(modelPath: string): Promise<LlamaCppModel | undefined> {
  const lib = await importLlamaCpp();
  if (!lib) return undefined;
  const llama = await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: 'error' });
  const model = await llama.loadModel({ modelPath });
  // The vector extensions of the build ggml loaded (its system info lists them as NAME = 1), e.g. AVX2 or AMX_INT8.
  const features = [...String(llama.systemInfo ?? '').matchAll(/(\w+) = 1/g)].map((m) => m[1]!).filter((f) => /^(AVX2|AVX_VNNI|AVX512\w*|AMX\w*|NEON|SVE\w*)$/.test(f));
  return {
    device: `llama.cpp ${lib.version ?? ''} cpu ${LLAMA_CPP_CPU ?? 'best build'} [${features.join(' ')}] (node-llama-cpp)`.replace('  ', ' '),
    model,
    dispose: () => model.dispose(),
  };
}

/** node-llama-cpp from .llama-cpp/, else from the project's node_modules; undefined when in neither. */
export async function importLlamaCpp(): Promise<any> {
  for (const installed of PEER_DIRS) {
    if (LLAMA_CPP_CPU !== undefined && !existsSync(installed)) continue;
    const dir = LLAMA_CPP_CPU === undefined ? installed : pinnedCopy(installed, LLAMA_CPP_CPU);
    try {
      const entry = createRequire(join(dir, 'package.json')).resolve(PEER_PACKAGE);
      return await import(pathToFileURL(entry).href);
    } catch {
      // not in this .llama-cpp/
    }
  }
  try {
    return await import(/* a specifier in a variable stays a runtime import */ PEER_PACKAGE as string);
  } catch {
    return undefined;
  }
}

/**
 * A copy of the peer folder whose only CPU build is libggml-cpu-<cpu>.so, made once in the temp folder: ggml loads the
 * best-scoring build it finds beside its libraries and has no setting to choose one. Named by the folder's real path.
 */
function pinnedCopy(installed: string, cpu: string): string {
  if (!/^[a-z0-9_]+$/.test(cpu)) throw new EngineError(`STAR_ASK_LLAMA_CPP_CPU: "${cpu}" is not a CPU build name (such as haswell or icelake)`);
  const id = createHash('sha256').update(realpathSync(installed)).digest('hex').slice(0, 12);
  const copy = join(tmpdir(), `star-ask-llama-cpp-${cpu}-${id}`);
  if (existsSync(copy)) return copy;
  const staging = `${copy}.${process.pid}.tmp`;
  cpSync(installed, staging, { recursive: true, dereference: true });
  const builds = cpuBuildDirs(staging);
  const names = builds.flatMap((d) => readdirSync(d).filter((f) => /^libggml-cpu-.*\.so$/.test(f)).map((f) => ({ d, f })));
  if (!names.some(({ f }) => f === `libggml-cpu-${cpu}.so`)) {
    rmSync(staging, { recursive: true, force: true });
    const known = [...new Set(names.map(({ f }) => f.slice('libggml-cpu-'.length, -'.so'.length)))].sort().join(', ');
    throw new EngineError(`STAR_ASK_LLAMA_CPP_CPU: node-llama-cpp in ${installed} has no CPU build "${cpu}" (it has: ${known || 'none'})`);
  }
  for (const { d, f } of names) if (f !== `libggml-cpu-${cpu}.so`) rmSync(join(d, f));
  try {
    renameSync(staging, copy);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(copy)) throw e; // else another run made the same copy first
  }
  return copy;
}

/** The CPU builds of the installed node-llama-cpp (haswell, icelake, ...), or undefined where it is not installed. */
export function llamaCppBuilds(): string[] | undefined {
  const installed = PEER_DIRS.find((d) => existsSync(d));
  if (!installed) return undefined;
  return cpuBuildDirs(installed).flatMap((d) => readdirSync(d)).filter((f) => /^libggml-cpu-.*\.so$/.test(f))
    .map((f) => f.slice('libggml-cpu-'.length, -'.so'.length)).sort();
}

/** The folders of node-llama-cpp's prebuilt binaries (node_modules/@node-llama-cpp/<platform>/bins/<platform>). */
function cpuBuildDirs(peerDir: string): string[] {
  const scope = join(peerDir, 'node_modules', '@node-llama-cpp');
  if (!existsSync(scope)) return [];
  return readdirSync(scope).flatMap((pkg) => {
    const bins = join(scope, pkg, 'bins');
    return existsSync(bins) ? readdirSync(bins).map((b) => join(bins, b)) : [];
  });
}
