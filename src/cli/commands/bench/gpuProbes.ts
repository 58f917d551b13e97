// The kernel benchmark's WebGPU probes, beside the backend rather than in it (bench kernels is their only user):
// GPU time of recorded ops through timestamp-query, and the device peak probes of kernels/peak.wgsl.
import { BufferUsage, MapMode } from '../../../engine/backend/webgpu/flags';
import { PARAMS } from '../../../engine/backend/webgpu/kernelParams';
import { KERNELS } from '../../../engine/backend/webgpu/kernelTable';
import { grid } from '../../../engine/backend/webgpu/recorder';
import type { WebGpuBackend } from '../../../engine/backend/webgpu/webgpuBackend';

/**
 * GPU time in ms of the compute passes `record` records (timestamp-query; copies are not timed),
 * or undefined where the device has no timestamp-query. Submits what was pending first.
 */
export async function timeGpu(backend: WebGpuBackend, record: () => void): Promise<number | undefined> {
  const g = backend.recording();
  g.check();
  if (!backend.hasTimestamps) return undefined;
  const capacity = 512;
  const rec = g.recorder;
  rec.submit();
  const querySet = g.device.createQuerySet({ type: 'timestamp', count: capacity });
  const resolve = g.device.createBuffer({ size: capacity * 8, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  const staging = g.device.createBuffer({ size: capacity * 8, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const timing = { querySet, capacity, used: 0 };
  rec.timing = timing;
  try {
    record();
    rec.submit((enc) => {
      if (timing.used === 0) return;
      enc.resolveQuerySet(querySet, 0, timing.used, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, staging, 0, timing.used * 8);
    });
  } finally {
    rec.timing = null;
  }
  if (timing.used === 0) return 0;
  await staging.mapAsync(MapMode.READ);
  const ts = new BigUint64Array(staging.getMappedRange(0, timing.used * 8));
  let ns = 0n;
  for (let i = 0; i < timing.used; i += 2) if (ts[i + 1]! > ts[i]!) ns += ts[i + 1]! - ts[i]!;
  staging.unmap();
  for (const o of [staging, resolve]) o.destroy();
  querySet.destroy();
  g.check();
  return Number(ns) / 1e6;
}

/**
 * Records one dispatch of a peak probe (kernels/peak.wgsl) over `groups` workgroups of 256 and returns the work
 * it does: 'fma' 256 rounds of f32 multiply-adds on registers per thread (flops), 'read' one pass over a buffer of
 * 64 KiB per workgroup, at most 256 MiB (bytes).
 */
export function recordPeakProbe(backend: WebGpuBackend, kind: 'fma' | 'read', groups: number): { flops: number; bytes: number } {
  const g = backend.recording();
  g.check();
  const rec = g.recorder;
  const out = g.scratchBuffer('peak-out', groups * 256 * 4);
  const pipeline = g.pipeline(KERNELS.peak.spec({ probe: kind }));
  const [gx, gy] = grid(groups);
  if (kind === 'fma') {
    const iters = 256;
    const po = rec.params(PARAMS.peak.pack({ iters, a: 0.999, b: 1e-4 }));
    rec.dispatch(pipeline, 'urw', [rec.arena, g.dummy, out], [po], gx, gy);
    return { flops: groups * 256 * iters * 8 * 4 * 2, bytes: 0 };
  }
  const bytes = Math.min(groups * 65536, 256 << 20, g.maxPartBytes - (g.maxPartBytes % 16));
  // Exactly `bytes`: the probe reads all of arrayLength(src).
  const src = g.scratchBuffer('peak-src', bytes, true);
  const po = rec.params(PARAMS.peak.pack({ iters: 0, a: 0, b: 0 }));
  rec.dispatch(pipeline, 'urw', [rec.arena, src, out], [po], gx, gy);
  return { flops: 0, bytes };
}
