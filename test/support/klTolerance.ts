// Star vs global KLs are near 1e-4: printed to two decimals both read "0.00", so they are compared relatively.
import assert from 'node:assert/strict';

/** f32 reproduces the golden KLs to ~1e-6 relative; 1 % leaves room for summation order, and a 10 % change fails. */
export const KL_RELATIVE_TOLERANCE = 0.01;

export function klWithinTolerance(actual: number, golden: number): boolean {
  return Number.isFinite(actual) && Math.abs(actual - golden) <= KL_RELATIVE_TOLERANCE * Math.abs(golden);
}

export function assertKlClose(actual: number, golden: number, what: string): void {
  assert.ok(klWithinTolerance(actual, golden), `${what}: KL ${actual} vs golden ${golden} (more than ${100 * KL_RELATIVE_TOLERANCE}% apart)`);
}
