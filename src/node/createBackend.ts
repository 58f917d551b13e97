// Picks the compute backend for Node callers (CLI, extension host, tests) by name.
import { CpuBackend, type CpuBackendOptions } from '../engine/backend/cpu/cpuBackend';
import type { Backend } from '../engine/backend/types';
import { createWebGpuBackend, type WebGpuBackendOptions } from '../engine/backend/webgpu';
import { getNodeGpu, hasHardwareAdapter } from './webgpu';

/** 'auto': WebGPU on a hardware adapter, else the CPU. */
export type BackendKind = 'cpu' | 'webgpu' | 'auto';

export type CreateBackendOptions = CpuBackendOptions & WebGpuBackendOptions;

export function isBackendKind(value: string): value is BackendKind {
  return value === 'cpu' || value === 'webgpu' || value === 'auto';
}

/**
 * 'webgpu' runs on Dawn (npm `webgpu`); it throws DeviceError naming what was tried when no adapter exists.
 * 'auto' takes WebGPU only on a real GPU: a software adapter (SwiftShader, lavapipe) emulates the GPU on the
 * CPU and is an order of magnitude slower than the CPU backend (measured with `star-ask bench peer`).
 */
export async function createBackend(kind: BackendKind, opts: CreateBackendOptions = {}): Promise<Backend> {
  switch (kind) {
    case 'cpu':
      return new CpuBackend(opts);
    case 'webgpu':
      return createWebGpuBackend(await getNodeGpu(), opts);
    case 'auto':
      return (await hasHardwareAdapter()) ? createWebGpuBackend(await getNodeGpu(), opts) : new CpuBackend(opts);
  }
}
