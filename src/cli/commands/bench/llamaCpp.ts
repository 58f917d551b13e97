// llama.cpp as the peer of the bench commands (peer, repo): the npm package node-llama-cpp (prebuilt binaries),
// which is not a dependency of this project. It is loaded at run time when installed in its own folder
// .llama-cpp/ at the checkout's root (git-ignored), with LLAMA_CPP_INSTALL below, or in the project's node_modules;
// each bench reports the install command instead of figures when it is missing. Its own folder because
// --omit=optional (which keeps the install at 164 MB instead of 732 MB of GPU builds) would otherwise also remove
// the project's optional platform packages, esbuild's binary among them, and break the build.
// Settings are the fastest seen on small CPUs: flash attention off, f32 KV cache, all threads for prefill, one
// thread for decode (more threads were up to 40x slower on a tiny model).
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
  return {
    device: `llama.cpp ${lib.version ?? ''} cpu (node-llama-cpp)`.replace('  ', ' '),
    model,
    dispose: () => model.dispose(),
  };
}

/** node-llama-cpp from .llama-cpp/, else from the project's node_modules; undefined when in neither. */
export async function importLlamaCpp(): Promise<any> {
  for (const dir of PEER_DIRS) {
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
