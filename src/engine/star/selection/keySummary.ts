import { EngineError } from '../../errors';
import type { BlockKv } from '../types';

/*
 * Ranking blocks by the model's own attention, without reading their KV: Quest's page bounds (Tang et al. 2024).
 * Per block, layer and KV head, the keys of every page of `pageSize` tokens are reduced to their element-wise
 * minimum and maximum. For a query q, sum_i max(q_i min_i, q_i max_i) is an upper bound of q . k over the page, so
 * ub + log(page length) bounds the page's log attention mass from above, and the log-sum-exp of that over the
 * block's pages bounds the block's. A question is then ranked by reading these summaries only.
 *
 * Their use now: the order of the attention ranking's candidates beyond BM25's matches (twoStage.ts). Alone they
 * put the answer's block first 2 of 6 times on SmolLM2-135M where BM25 and exact attention did 6 of 6 (README).
 *
 * Why bounds and not InfLLM's representative keys: a bound needs no attention statistics from phase 1 (the hosts
 * return K and V, nothing else), is a pure function of the keys the block's cache entry already holds (so it can
 * be rebuilt from the disk entry, and kept when the entry is evicted), and cannot miss a page's strongest key.
 *
 * Size: nLayers x pages x 2 x nKvHeads x headDim float32 values (keySummaryBytes). At the default page of 256:
 * SmolLM2-135M (30 layers, 3 KV heads x 64) 46,080 bytes per page, 368,640 per 2,048-token block (0.8 % of that
 * block's f16 KV, 47.2 MB); Qwen2.5-0.5B (24 layers, 2 x 64) 24,576 per page, 196,608 per 2,048-token block.
 *
 * Positions: the bounds are taken over keys as placed, RoPE applied at the positions the block was encoded at.
 * When every block is encoded at the same local positions (right after the anchor), the bounds of all blocks are
 * in one frame, and a query rotated for position p scores each block as if it sat at those positions: the
 * relative distance is p - (encoded position), the same for every block, so the ranking does not favour a block
 * for where it happens to be stored. What it approximates: the block will be attended at its placed start, at a
 * different distance; a probe query placed at a distance typical of the placement (queryProbe.ts) keeps that
 * error to the spread of distances inside the context. Bounds over rotated keys are looser than over unrotated
 * ones (rotation mixes each dimension pair), the price of scoring with the query exactly as phase 2 forms it.
 */

/** Tokens per page: a block's keys are bounded page by page. */
export const DEFAULT_SUMMARY_PAGE = 256;

/** A block's key bounds. */
export interface KeySummary {
  readonly index: number;
  /** Tokens summarised (the block's length). */
  readonly length: number;
  readonly pageSize: number;
  /** nKvHeads * headDim. */
  readonly width: number;
  /** Per layer, [pages, 2, width]: page p's minimum at (2p) * width, its maximum at (2p + 1) * width. */
  readonly bounds: Float32Array[];
}

export interface AttentionShape {
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

export function summaryPages(length: number, pageSize: number): number {
  return Math.ceil(length / pageSize);
}

/** Bytes one block's summary takes in memory and in its cache entry (float32 values). */
export function keySummaryBytes(shape: { readonly nLayers: number; readonly nKvHeads: number; readonly headDim: number }, length: number, pageSize = DEFAULT_SUMMARY_PAGE): number {
  return shape.nLayers * summaryPages(length, pageSize) * 2 * shape.nKvHeads * shape.headDim * 4;
}

/** The key bounds of a block's KV as a host returns it (K rotated for the positions it was encoded at). */
export function summarizeKeys(kv: BlockKv, pageSize = DEFAULT_SUMMARY_PAGE): KeySummary {
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new EngineError(`summary page size must be a positive integer, got ${pageSize}`);
  if (kv.length < 1) throw new EngineError(`block ${kv.index} has no tokens to summarise`);
  const { width, length } = kv;
  const pages = summaryPages(length, pageSize);
  const bounds = kv.k.map((k, layer) => {
    if (k.length !== length * width) throw new EngineError(`block ${kv.index} layer ${layer}: K has ${k.length} values, expected ${length} x ${width}`);
    const out = new Float32Array(pages * 2 * width);
    for (let p = 0; p < pages; p++) {
      const lo = out.subarray(2 * p * width, (2 * p + 1) * width);
      const hi = out.subarray((2 * p + 1) * width, (2 * p + 2) * width);
      lo.fill(Infinity);
      hi.fill(-Infinity);
      const end = Math.min(length, (p + 1) * pageSize);
      for (let t = p * pageSize; t < end; t++) {
        const row = t * width;
        for (let i = 0; i < width; i++) {
          const x = k[row + i]!;
          if (x < lo[i]!) lo[i] = x;
          if (x > hi[i]!) hi[i] = x;
        }
      }
    }
    return out;
  });
  return { index: kv.index, length, pageSize, width, bounds };
}

/** The question's query after RoPE, per layer: [rows, nHeads * headDim] (Transformer's observeQuery). */
export interface QuestionQueries {
  readonly rows: number;
  readonly q: readonly Float32Array[];
}

export interface ScoreOptions {
  /**
   * Layers scored: from this one on (default 2, or 0 for models of fewer than 4 layers). Quest keeps the first two
   * layers dense: their attention is broad and positional, and says little about what a question is about.
   */
  readonly firstLayer?: number;
  /**
   * How the (layer, head) votes make a block's score (default 'head'):
   * - 'head': the largest share any one (layer, head) gives the block above an even share (1 / blocks), averaged
   *   over the question's rows. Few heads retrieve; averaged over all of them their signal drowns in the broad,
   *   content-blind attention of the rest (measured on SmolLM2-135M, 8 blocks, 6 questions: the right block ranked
   *   first for 6 of 6 with exact attention mass, against 1 of 6 for the mean).
   * - 'mean': the block's share averaged over layers, heads and rows (the scores sum to 1): the attention mass phase 2
   *   would give it.
   */
  readonly aggregate?: 'head' | 'mean';
}

/** Layers scored by default: from 2 on, or all for models of fewer than 4 layers (ScoreOptions.firstLayer). */
export function defaultFirstLayer(nLayers: number): number {
  return nLayers < 4 ? 0 : 2;
}

/**
 * Scores every summarised block for the question by its log-mass bounds (log-sum-exp over its pages of
 * ub/sqrt(headDim) + log page length), through scoreLogMasses. Returns the blocks best first (ties: input order).
 */
export function scoreSummaries(summaries: readonly KeySummary[], queries: QuestionQueries, shape: AttentionShape, options: ScoreOptions = {}): { index: number; score: number }[] {
  const { nHeads, nKvHeads, headDim } = shape;
  const width = nKvHeads * headDim;
  const qWidth = nHeads * headDim;
  const nLayers = queries.q.length;
  const rows = queries.rows;
  if (nHeads % nKvHeads !== 0) throw new EngineError(`${nHeads} query heads do not group evenly over ${nKvHeads} KV heads`);
  for (const s of summaries) {
    if (s.width !== width) throw new EngineError(`block ${s.index}'s summary is ${s.width} wide, the model's keys ${width}`);
    if (s.bounds.length !== nLayers) throw new EngineError(`block ${s.index}'s summary has ${s.bounds.length} layers, the queries ${nLayers}`);
  }
  queries.q.forEach((q, l) => {
    if (q.length !== rows * qWidth) throw new EngineError(`layer ${l}'s queries have ${q.length} values, expected ${rows} x ${qWidth}`);
  });
  return scoreLogMasses(summaries.map((s) => s.index), nLayers, nHeads, rows,
    (b, layer, out) => { blockLogMassBound(summaries[b]!, layer, queries.q[layer]!, rows, shape, out); }, options);
}

/**
 * Scores blocks from their log attention masses (exact, or bounds): per scored layer, query head and question row,
 * the masses become shares by a softmax over the blocks (the attention the row would give each block). A softmax per
 * row, not raw masses, because heads and layers differ in scale. The shares are then aggregated
 * (ScoreOptions.aggregate: by default the best (layer, head) per block). `fill(b, layer, out)` writes block b's log
 * masses at `layer`, [nHeads * rows] (head-major). Returns the blocks best first (ties: input order).
 */
export function scoreLogMasses(indices: readonly number[], nLayers: number, nHeads: number, rows: number,
  fill: (b: number, layer: number, out: Float64Array) => void, options: ScoreOptions = {}): { index: number; score: number }[] {
  const nBlocks = indices.length;
  if (nBlocks === 0) return [];
  const firstLayer = Math.min(options.firstLayer ?? defaultFirstLayer(nLayers), nLayers - 1);
  const byHead = (options.aggregate ?? 'head') === 'head';
  const votes = nHeads * rows;
  const scores = new Float64Array(nBlocks).fill(byHead ? -Infinity : 0);
  const logMass = indices.map(() => new Float64Array(votes));
  const headShare = new Float64Array(nBlocks);
  for (let l = firstLayer; l < nLayers; l++) {
    logMass.forEach((out, b) => fill(b, l, out));
    for (let h = 0; h < nHeads; h++) {
      headShare.fill(0);
      for (let r = 0; r < rows; r++) {
        const v = h * rows + r;
        let max = -Infinity;
        for (let b = 0; b < nBlocks; b++) max = Math.max(max, logMass[b]![v]!);
        let sum = 0;
        for (let b = 0; b < nBlocks; b++) sum += Math.exp(logMass[b]![v]! - max);
        for (let b = 0; b < nBlocks; b++) headShare[b] = headShare[b]! + Math.exp(logMass[b]![v]! - max) / sum;
      }
      for (let b = 0; b < nBlocks; b++) {
        scores[b] = byHead ? Math.max(scores[b]!, headShare[b]! / rows - 1 / nBlocks) : scores[b]! + headShare[b]!;
      }
    }
  }
  const count = byHead ? 1 : (nLayers - firstLayer) * votes;
  const ranked = indices.map((index, b) => ({ index, score: scores[b]! / count, b }));
  ranked.sort((x, y) => y.score - x.score || x.b - y.b);
  return ranked.map(({ index, score }) => ({ index, score }));
}

/**
 * The block's log attention-mass bound at `layer` for every query head and row: out[h * rows + r] >= the log-sum-exp
 * of q_{r,h} . k / sqrt(headDim) over the block's keys (equal when pages are one token).
 */
export function blockLogMassBound(summary: KeySummary, layer: number, q: Float32Array, rows: number, shape: AttentionShape, out: Float64Array = new Float64Array(shape.nHeads * rows)): Float64Array {
  const { nHeads, nKvHeads, headDim } = shape;
  const width = nKvHeads * headDim;
  const qWidth = nHeads * headDim;
  const scale = 1 / Math.sqrt(headDim);
  const group = nHeads / nKvHeads;
  const bounds = summary.bounds[layer]!;
  const pages = summaryPages(summary.length, summary.pageSize);
  out.fill(-Infinity);
  for (let p = 0; p < pages; p++) {
    const logLen = Math.log(Math.min(summary.length, (p + 1) * summary.pageSize) - p * summary.pageSize);
    const lo = 2 * p * width;
    const hi = lo + width;
    for (let h = 0; h < nHeads; h++) {
      const kv = Math.floor(h / group) * headDim;
      for (let r = 0; r < rows; r++) {
        const qo = r * qWidth + h * headDim;
        let ub = 0;
        for (let i = 0; i < headDim; i++) {
          const qi = q[qo + i]!;
          ub += qi > 0 ? qi * bounds[hi + kv + i]! : qi * bounds[lo + kv + i]!;
        }
        const x = ub * scale + logLen;
        const at = h * rows + r;
        const m = out[at]!;
        // Running log-sum-exp over the block's pages.
        out[at] = m === -Infinity ? x : Math.max(m, x) + Math.log1p(Math.exp(-Math.abs(m - x)));
      }
    }
  }
  return out;
}
