import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceError } from '../engine/errors';

/*
 * WebGPU for Node through Dawn (npm `webgpu`). On a developer machine Dawn finds Metal / D3D12 /
 * Vulkan itself. On Linux machines without a GPU (CI, build boxes) the only Vulkan driver Dawn
 * accepts is SwiftShader, which Debian's chromium package ships: when no adapter is found and the
 * user has not chosen a Vulkan driver, we point the Vulkan loader at it and create a second Dawn
 * instance (the loader reads VK_ICD_FILENAMES per instance, so the second create() picks it up).
 */

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** How long one adapter request may take before we call it a failure (Dawn never answers on some broken drivers). */
const ADAPTER_TIMEOUT_MS = 20_000;

let cached: Promise<GPU> | undefined;

/** The process-wide `GPU` object (navigator.gpu's equivalent); throws DeviceError when no adapter exists. */
export function getNodeGpu(): Promise<GPU> {
  cached ??= findGpu().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function findGpu(): Promise<GPU> {
  // Dawn warns about a missing runtime dir on every instance; give it a private one.
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'star-ask-xdg-'));
  let mod: { create(flags: string[]): GPU; globals: object };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (err) {
    throw new DeviceError(`cannot load the WebGPU runtime (npm package "webgpu"): ${(err as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);

  const tried: string[] = [];
  let gpu = mod.create([]);
  if (await probe(gpu)) return gpu;
  tried.push(process.env.VK_ICD_FILENAMES ? `Vulkan driver ${process.env.VK_ICD_FILENAMES}` : 'the system GPU drivers');

  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = mod.create([]);
    if (await probe(gpu)) return gpu;
    tried.push(`SwiftShader (${SWIFTSHADER_ICD})`);
  }
  throw new DeviceError(
    `no WebGPU adapter found (tried ${tried.join(', ')}). Install a GPU driver, or on Linux without a GPU ` +
      `install SwiftShader (apt-get install chromium libvulkan1) or set VK_ICD_FILENAMES; the CPU backend runs without a GPU`,
  );
}

async function probe(gpu: GPU): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ADAPTER_TIMEOUT_MS);
  });
  try {
    const adapter = await Promise.race([gpu.requestAdapter().catch(() => null), timeout]);
    return adapter !== null;
  } finally {
    clearTimeout(timer);
  }
}

/** True when Dawn finds a GPU that is not a software rasterizer (SwiftShader, lavapipe, llvmpipe, WARP). */
export async function hasHardwareAdapter(): Promise<boolean> {
  // Linux exposes every GPU as a DRM render node (or /dev/nvidia*): without one, skip the adapter probe, which
  // would only find a software rasterizer and print driver warnings on the way.
  if (process.platform === 'linux' && !existsSync('/dev/dri') && !existsSync('/dev/nvidia0') && !process.env.VK_ICD_FILENAMES) return false;
  let gpu: GPU;
  try {
    gpu = await getNodeGpu();
  } catch {
    return false;
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) return false;
  const info = adapter.info;
  const name = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const software = /swiftshader|lavapipe|llvmpipe|software|warp|microsoft basic render/.test(name);
  return !software && !(adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
}
