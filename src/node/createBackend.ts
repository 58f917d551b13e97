// Picks the compute backend for Node callers (CLI, extension host, tests) by name.
import { CpuBackend, type CpuBackendOptions } from '../engine/backend/cpu/cpuBackend';
import type { Backend } from '../engine/backend/types';
import { UnsupportedError } from '../engine/errors';

export type BackendKind = 'cpu' | 'webgpu';

export interface CreateBackendOptions extends CpuBackendOptions {}

export function isBackendKind(value: string): value is BackendKind {
  return value === 'cpu' || value === 'webgpu';
}

export async function createBackend(kind: BackendKind, opts: CreateBackendOptions = {}): Promise<Backend> {
  switch (kind) {
    case 'cpu':
      return new CpuBackend(opts);
    case 'webgpu':
      throw new UnsupportedError('the WebGPU backend is not built yet; use --backend cpu');
  }
}
