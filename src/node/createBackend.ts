// Picks the compute backend for Node callers (CLI, extension host, tests) by name.
import { CpuBackend, type CpuBackendOptions } from '../engine/backend/cpu/cpuBackend';
import type { Backend } from '../engine/backend/types';
import { createWebGpuBackend, type WebGpuBackendOptions } from '../engine/backend/webgpu';
import { getNodeGpu } from './webgpu';

export type BackendKind = 'cpu' | 'webgpu';

export type CreateBackendOptions = CpuBackendOptions & WebGpuBackendOptions;

export function isBackendKind(value: string): value is BackendKind {
  return value === 'cpu' || value === 'webgpu';
}

/** 'webgpu' runs on Dawn (npm `webgpu`); it throws DeviceError naming what was tried when no adapter exists. */
export async function createBackend(kind: BackendKind, opts: CreateBackendOptions = {}): Promise<Backend> {
  switch (kind) {
    case 'cpu':
      return new CpuBackend(opts);
    case 'webgpu':
      return createWebGpuBackend(await getNodeGpu(), opts);
  }
}
