// Top-1 agreement against the golden case, compared as the number of agreeing positions: one flipped token in 127
// moves the fraction by 0.008, which a comparison to two decimals does not see.
import assert from 'node:assert/strict';

/** The agreeing positions a fraction over `positions` stands for (it must be a whole count). */
export function agreeingPositions(fraction: number, positions: number): number {
  const count = Math.round(fraction * positions);
  assert.ok(Math.abs(count - fraction * positions) < 1e-6, `top-1 agreement ${fraction} is no count over ${positions} positions`);
  return count;
}

export function assertAgreementEqual(actual: { top1Agreement: number; positions: number }, golden: number, goldenPositions: number, what: string): void {
  assert.equal(actual.positions, goldenPositions, `${what}: positions compared`);
  assert.equal(agreeingPositions(actual.top1Agreement, actual.positions), agreeingPositions(golden, goldenPositions),
    `${what}: top-1 agreement ${actual.top1Agreement} vs golden ${golden}`);
}
