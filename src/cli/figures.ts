// Arithmetic for the speed figures the CLI reports.

/** The median (mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `x` rounded to `digits` decimal places, for printing. */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** x to `digits` significant figures (rates that span orders of magnitude between an emulator and a GPU). */
export function significant(x: number, digits = 3): number {
  return Number(x.toPrecision(digits));
}
