import { logSumExp } from './merge';

/*
 * Which blocks the query looked at, from the merge weights of Star Attention phase 2.
 * For one layer, head and query row, block b's share of the attention paid to the context is
 * exp(lse_b - lse_ctx) with lse_ctx = log Σ_b exp(lse_b) (the query's own tokens excluded, so
 * shares sum to 1 over the context). The reported share is the plain mean of that weight over
 * every layer, head and query row (each counts the same), so it stays a proper distribution.
 */
export class AttentionMass {
  private readonly sum = new Map<number, number>();
  private samples = 0;

  /** One layer's per-block lse, each [rows, nHeads] (all the same length). */
  addLayer(blocks: readonly { index: number; lse: Float32Array }[]): void {
    if (blocks.length === 0) return;
    const n = blocks[0]!.lse.length;
    const values = new Float64Array(blocks.length);
    const acc = new Float64Array(blocks.length);
    let samples = 0;
    for (let i = 0; i < n; i++) {
      for (let b = 0; b < blocks.length; b++) values[b] = blocks[b]!.lse[i]!;
      const total = logSumExp(values);
      if (total === -Infinity) continue;
      for (let b = 0; b < blocks.length; b++) acc[b] += Math.exp(values[b]! - total);
      samples++;
    }
    blocks.forEach((b, j) => this.sum.set(b.index, (this.sum.get(b.index) ?? 0) + acc[j]!));
    this.samples += samples;
  }

  /** Mean share per block index (sums to 1 when anything was observed). */
  shares(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [index, s] of this.sum) out.set(index, this.samples ? s / this.samples : 0);
    return out;
  }
}
