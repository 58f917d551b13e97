import { logSumExp } from './merge';

/*
 * Which blocks, and which files, the query looked at, from the merge weights of Star Attention phase 2.
 * For one layer, head and query row, block b's share of the attention paid to the context is
 * exp(lse_b - lse_ctx) with lse_ctx = log Σ_b exp(lse_b) (the query's own tokens excluded, so
 * shares sum to 1 over the context). The reported share is the plain mean of that weight over
 * every layer, head and query row (each counts the same), so it stays a proper distribution.
 *
 * A block holding several files is split exactly when its keys are at hand: each piece (a token range
 * of the block, see BlockSpan) gets its own lse_p = log Σ_{j in piece} exp(q·k_j / sqrt(headDim)),
 * computed here on the CPU from the query rows' q and the block's K (only for the question's prefill,
 * once per question). The piece's weight is the block's weight times softmax_p(lse_p): equal to
 * exp(lse_p - lse_ctx) when the block's lse is exact, and the pieces of a block always add up to the
 * block's share (GPU lse in f16 or f32 and the CPU's f64 pieces cannot drift apart).
 */

/** Attention geometry (the Backend's AttnShape). */
export interface PieceShape {
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** A token range [start, end) of a block's KV rows. */
export interface TokenRange {
  readonly start: number;
  readonly end: number;
}

/** How to split one block's attention among its pieces. */
export interface BlockPieces {
  /** Block-local token ranges of its pieces, in order (disjoint, covering the block). */
  readonly ranges: readonly TokenRange[];
  /** The block's keys at `layer` after RoPE, [length, nKvHeads*headDim]; undefined when not kept. */
  keys(layer: number): Float32Array | undefined;
}

export interface PieceSplitOptions {
  readonly shape: PieceShape;
  /** Pieces of a block worth splitting (two or more), or undefined. */
  piecesOf(index: number): BlockPieces | undefined;
}

/** The query rows of one layer, after RoPE: [rows, nHeads*headDim]. */
export interface LayerQuery {
  readonly q: Float32Array;
  readonly rows: number;
}

export class AttentionMass {
  private readonly sum = new Map<number, number>();
  private readonly pieceSum = new Map<number, Float64Array>();
  private samples = 0;

  constructor(private readonly split?: PieceSplitOptions) {}

  /** True when addLayer wants the query rows (some blocks are split into pieces). */
  get wantsQuery(): boolean {
    return this.split !== undefined;
  }

  /**
   * One layer's per-block lse, each [rows, nHeads] (all the same length). With `query` (its q and rows)
   * blocks that have pieces and kept keys are split exactly; the others count whole.
   */
  addLayer(blocks: readonly { index: number; lse: Float32Array }[], query?: LayerQuery, layer = 0): void {
    if (blocks.length === 0) return;
    const n = blocks[0]!.lse.length;
    const pieceLses = blocks.map((b) => this.pieceLses(b.index, layer, query, n));
    const values = new Float64Array(blocks.length);
    const acc = new Float64Array(blocks.length);
    const pieceAcc = pieceLses.map((p) => (p ? new Float64Array(p.length) : undefined));
    let samples = 0;
    for (let i = 0; i < n; i++) {
      for (let b = 0; b < blocks.length; b++) values[b] = blocks[b]!.lse[i]!;
      const total = logSumExp(values);
      if (total === -Infinity) continue;
      for (let b = 0; b < blocks.length; b++) {
        const w = Math.exp(values[b]! - total);
        acc[b] += w;
        const pl = pieceLses[b];
        if (!pl || w === 0) continue;
        let m = -Infinity;
        for (const p of pl) if (p[i]! > m) m = p[i]!;
        if (m === -Infinity) continue;
        let s = 0;
        for (const p of pl) s += Math.exp(p[i]! - m);
        pl.forEach((p, k) => (pieceAcc[b]![k] += (w * Math.exp(p[i]! - m)) / s));
      }
      samples++;
    }
    blocks.forEach((b, j) => {
      this.sum.set(b.index, (this.sum.get(b.index) ?? 0) + acc[j]!);
      const pa = pieceAcc[j];
      if (!pa) return;
      const prev = this.pieceSum.get(b.index) ?? new Float64Array(pa.length);
      for (let k = 0; k < pa.length; k++) prev[k] += pa[k]!;
      this.pieceSum.set(b.index, prev);
    });
    this.samples += samples;
  }

  /** Mean share per block index (sums to 1 when anything was observed). */
  shares(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [index, s] of this.sum) out.set(index, this.samples ? s / this.samples : 0);
    return out;
  }

  /**
   * Mean share per piece of each block that was split exactly (block index -> one share per range, summing to
   * the block's share when every layer was split). Blocks missing here count whole or fall back (fileShares).
   */
  pieceShares(): Map<number, number[]> {
    const out = new Map<number, number[]>();
    for (const [index, s] of this.pieceSum) out.set(index, [...s].map((x) => (this.samples ? x / this.samples : 0)));
    return out;
  }

  private pieceLses(index: number, layer: number, query: LayerQuery | undefined, n: number): Float64Array[] | undefined {
    if (!this.split || !query) return undefined;
    const pieces = this.split.piecesOf(index);
    const keys = pieces?.keys(layer);
    if (!pieces || !keys || pieces.ranges.length < 2) return undefined;
    const lses = pieceLse(query.q, query.rows, keys, pieces.ranges, this.split.shape);
    return lses[0]!.length === n ? lses : undefined;
  }
}

/**
 * Per range, the log-sum-exp of the scaled scores of every query row and head over that range's keys only:
 * [rows * nHeads] each (row-major, as the backends' lse), -Infinity for an empty range. GQA as the backends:
 * head h reads KV head floor(h * nKvHeads / nHeads); scale 1/sqrt(headDim).
 */
export function pieceLse(q: Float32Array, rows: number, keys: Float32Array, ranges: readonly TokenRange[], shape: PieceShape): Float64Array[] {
  const { nHeads, nKvHeads, headDim } = shape;
  const qWidth = nHeads * headDim;
  const kWidth = nKvHeads * headDim;
  if (q.length !== rows * qWidth) throw new RangeError(`pieceLse: q has ${q.length} values, expected ${rows} x ${qWidth}`);
  const length = keys.length / kWidth;
  const scale = 1 / Math.sqrt(headDim);
  const out = ranges.map((r) => {
    if (r.start < 0 || r.end > length || r.start > r.end) throw new RangeError(`pieceLse: range [${r.start}, ${r.end}) outside ${length} keys`);
    return new Float64Array(rows * nHeads).fill(-Infinity);
  });
  // One pass of scores per (row, head) over the ranges' keys, then one lse per range: plain loops, no closures
  // (this is the piece split's whole CPU cost).
  const scores = new Float64Array(length);
  const qh = new Float64Array(headDim);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < nHeads; h++) {
      const qBase = r * qWidth + h * headDim;
      for (let d = 0; d < headDim; d++) qh[d] = q[qBase + d]! * scale;
      const kOff = Math.floor((h * nKvHeads) / nHeads) * headDim;
      for (let p = 0; p < ranges.length; p++) {
        const { start, end } = ranges[p]!;
        if (end <= start) continue;
        let m = -Infinity;
        for (let j = start; j < end; j++) {
          const kBase = j * kWidth + kOff;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += qh[d]! * keys[kBase + d]!;
          scores[j] = dot;
          if (dot > m) m = dot;
        }
        let sum = 0;
        for (let j = start; j < end; j++) sum += Math.exp(scores[j]! - m);
        out[p]![r * nHeads + h] = m + Math.log(sum);
      }
    }
  }
  return out;
}

/** The file lines a block holds, as fileShares needs them (BlockSpan fits). */
export interface SharedSpan {
  readonly path: string;
  readonly tokenStart: number;
  readonly tokenEnd: number;
}

/**
 * Block (and piece) shares -> per-file shares, highest first (ties by path). A block with exact piece shares
 * credits each piece to its file; a block with one file credits it whole; a multi-file block without piece
 * shares (keys not kept) is split by its pieces' token counts, an approximation. Blocks without spans (the
 * anchor) are left out: their share is the caller's to report.
 */
export function fileShares(
  blockShares: ReadonlyMap<number, number>,
  pieceShares: ReadonlyMap<number, readonly number[]>,
  spansOf: (index: number) => readonly SharedSpan[],
): { path: string; share: number }[] {
  const perFile = new Map<string, number>();
  const credit = (path: string, share: number) => perFile.set(path, (perFile.get(path) ?? 0) + share);
  for (const [index, share] of blockShares) {
    const spans = spansOf(index);
    if (spans.length === 0) continue;
    const pieces = pieceShares.get(index);
    if (pieces && pieces.length === spans.length) {
      spans.forEach((s, k) => credit(s.path, pieces[k]!));
      continue;
    }
    const tokens = spans.reduce((t, s) => t + (s.tokenEnd - s.tokenStart), 0);
    for (const s of spans) credit(s.path, tokens > 0 ? (share * (s.tokenEnd - s.tokenStart)) / tokens : share / spans.length);
  }
  return [...perFile].map(([path, share]) => ({ path, share })).sort((a, b) => b.share - a.share || (a.path < b.path ? -1 : 1));
}
