// Exact merge of partial attentions computed over disjoint KV sets (Star Attention phase 2,
// flash-decoding's rule), on plain arrays so hosts can live behind a message boundary:
//   lse = log Σ_h exp(lse_h),   out = Σ_h exp(lse_h - lse) · out_h
// A partial with lse = -Infinity saw no entry and contributes nothing.

/** Partial attention of `rows` query rows: out [rows, nHeads*headDim], lse [rows, nHeads]. */
export interface PartialAttention {
  readonly out: Float32Array;
  readonly lse: Float32Array;
}

/**
 * Folds `part` into `acc` in place (pairwise form: new = max + log(e^(a-max) + e^(b-max))).
 * Both must have the same shape; headDim = out.length / lse.length.
 */
export function mergeInto(acc: { out: Float32Array; lse: Float32Array }, part: PartialAttention): void {
  const heads = acc.lse.length;
  if (part.lse.length !== heads || part.out.length !== acc.out.length) {
    throw new RangeError(`mergeInto: shapes differ (${acc.lse.length}/${acc.out.length} vs ${part.lse.length}/${part.out.length})`);
  }
  const headDim = acc.out.length / heads;
  for (let i = 0; i < heads; i++) {
    const a = acc.lse[i]!;
    const b = part.lse[i]!;
    if (b === -Infinity) continue;
    const base = i * headDim;
    if (a === -Infinity) {
      acc.lse[i] = b;
      acc.out.set(part.out.subarray(base, base + headDim), base);
      continue;
    }
    const m = Math.max(a, b);
    const wa = Math.exp(a - m);
    const wb = Math.exp(b - m);
    const sum = wa + wb;
    const ca = wa / sum;
    const cb = wb / sum;
    for (let d = base; d < base + headDim; d++) acc.out[d] = ca * acc.out[d]! + cb * part.out[d]!;
    acc.lse[i] = m + Math.log(sum);
  }
}

/** log Σ exp(x_i) over the given values (-Infinity when all are -Infinity or none). */
export function logSumExp(values: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > m) m = values[i]!;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += Math.exp(values[i]! - m);
  return m + Math.log(s);
}
