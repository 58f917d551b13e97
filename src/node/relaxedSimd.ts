// Relaxed SIMD for the `cpu` kernels in Node: shipped from V8 11.4 (Chrome 114, Node 22, VS Code's Electron), behind
// --experimental-wasm-relaxed-simd in Node 20's V8 11.3.
import { setFlagsFromString } from 'node:v8';
import { relaxedKernelsBuilt, relaxedKernelsRun } from '../engine/backend/wasm/cpuKernels';

let checked = false;

/**
 * Turns the flag on where the relaxed kernels were built but this V8 does not validate them yet (a V8 flag is
 * process-wide, so kernel workers started later see it too). Where relaxed SIMD is shipped the flag is not set:
 * newer V8s reject it by name. Where it still does not validate, the SIMD128 build runs (same results).
 */
export function enableRelaxedSimd(): void {
  if (checked) return;
  checked = true;
  if (!relaxedKernelsBuilt() || relaxedKernelsRun(false)) return;
  setFlagsFromString('--experimental-wasm-relaxed-simd');
}

/** STAR_ASK_CPU_RELAXED=0 runs the SIMD128 build even where relaxed SIMD runs (to measure one against the other). */
export function relaxedSimdWanted(): boolean {
  return process.env.STAR_ASK_CPU_RELAXED !== '0';
}
