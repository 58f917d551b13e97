// Picks the compute backend for Node callers (CLI, extension host, tests) by name.
import { CpuBackend, type CpuBackendOptions } from '../engine/backend/cpu/cpuBackend';
import type { Backend } from '../engine/backend/types';
import { WasmBackend } from '../engine/backend/wasm/wasmBackend';
import { createWebGpuBackend, type WebGpuBackendOptions } from '../engine/backend/webgpu';
import { spawnKernelWorker } from './cpuKernelWorkers';
import { defaultCpuThreads } from './cpuThreads';
import { enableRelaxedSimd, relaxedSimdWanted } from './relaxedSimd';
import { getNodeGpu, hasHardwareAdapter } from './webgpu';

/**
 * 'cpu': the WebAssembly SIMD kernels on worker threads (falls back to 'cpu-ref', saying why, where they cannot run);
 * 'cpu-ref': the plain-JS reference the tests compare against; 'auto': WebGPU on a hardware adapter, else 'cpu'.
 */
export type BackendKind = 'cpu' | 'cpu-ref' | 'webgpu' | 'auto';

export const BACKEND_KINDS: readonly BackendKind[] = ['cpu', 'cpu-ref', 'webgpu', 'auto'];

export interface CpuThreadOptions {
  /** Threads for the `cpu` backend's matrix products (default: STAR_ASK_CPU_THREADS, else every core). */
  readonly threads?: number;
}

export type CreateBackendOptions = CpuBackendOptions & WebGpuBackendOptions & CpuThreadOptions;

export function isBackendKind(value: string): value is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(value);
}

let fallbackSaid = false;

/** The WebAssembly backend, or the JS reference with a note on stderr (once per process) where it cannot run. */
export async function createCpuBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  try {
    enableRelaxedSimd();
    return await WasmBackend.create({ ...opts, threads: opts.threads ?? defaultCpuThreads(), spawn: spawnKernelWorker, relaxedSimd: relaxedSimdWanted() });
  } catch (e) {
    if (!fallbackSaid) process.stderr.write(`cpu backend: the WebAssembly kernels cannot run (${(e as Error).message}); using the JS reference\n`);
    fallbackSaid = true;
    return new CpuBackend(opts);
  }
}

/**
 * 'webgpu' runs on Dawn (npm `webgpu`); it throws DeviceError naming what was tried when no adapter exists.
 * 'auto' takes WebGPU only on a real GPU: a software adapter (SwiftShader, lavapipe) emulates the GPU on the
 * CPU and is an order of magnitude slower than the CPU backend (measured with `star-ask bench peer`).
 */
export async function createBackend(kind: BackendKind, opts: CreateBackendOptions = {}): Promise<Backend> {
  switch (kind) {
    case 'cpu':
      return createCpuBackend(opts);
    case 'cpu-ref':
      return new CpuBackend(opts);
    case 'webgpu':
      return createWebGpuBackend(await getNodeGpu(), opts);
    case 'auto':
      return (await hasHardwareAdapter()) ? createWebGpuBackend(await getNodeGpu(), opts) : createCpuBackend(opts);
  }
}
