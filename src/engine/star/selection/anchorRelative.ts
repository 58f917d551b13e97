import { EngineError } from '../../errors';
import type { BlockKv } from '../types';
import type { AttentionShape, QuestionQueries } from './keySummary';

/*
 * Candidate-independent attention scores: each block is scored from its own keys alone, against the anchor's (the
 * one block every selection attends), never against the other candidates. The two-stage ranking (twoStage.ts)
 * scores a block by its share of a softmax over the candidate set, so the same block scores differently beside
 * other candidates; these scores do not move when the set does.
 *
 * Per (layer >= firstLayer, query head, question row): the block's log-sum-exp of q . k / sqrt(headDim) over its
 * keys (its log attention mass, as blockLogMasses) and its largest q . k / sqrt(headDim), each minus the anchor's
 * (a per-head offset, so heads of larger logits do not drown the others). Aggregated two ways: the mean over every
 * (layer, head, row), or the best (layer, head)'s mean over rows. `bench rank` measures them against BM25.
 */

/** Per layer from firstLayer on (earlier undefined): [nHeads * rows] log mass and max logit of one block's keys. */
export interface BlockAttentionStats {
  /** Question rows (each head's rows are contiguous: [head][row]). */
  readonly rows: number;
  readonly lse: (Float64Array | undefined)[];
  readonly max: (Float64Array | undefined)[];
}

/** `layerStep` > 1 takes every layerStep-th layer from firstLayer on (the others undefined), to bound the cost. */
export function blockAttentionStats(kv: BlockKv, queries: QuestionQueries, shape: AttentionShape, firstLayer: number, layerStep = 1): BlockAttentionStats {
  const { nHeads, nKvHeads, headDim } = shape;
  const width = nKvHeads * headDim;
  const qWidth = nHeads * headDim;
  const rows = queries.rows;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  if (kv.width !== width) throw new EngineError(`block ${kv.index}'s keys are ${kv.width} wide, the model's ${width}`);
  if (kv.k.length !== queries.q.length) throw new EngineError(`block ${kv.index} has ${kv.k.length} layers of keys, the queries ${queries.q.length}`);
  if (kv.length < 1) throw new EngineError(`block ${kv.index} has no tokens to attend to`);
  const dots = new Float64Array(kv.length);
  const lse: (Float64Array | undefined)[] = [];
  const maxes: (Float64Array | undefined)[] = [];
  kv.k.forEach((k, layer) => {
    if (layer < firstLayer || (layer - firstLayer) % layerStep !== 0) {
      lse.push(undefined);
      maxes.push(undefined);
      return;
    }
    const q = queries.q[layer]!;
    const outL = new Float64Array(nHeads * rows);
    const outM = new Float64Array(nHeads * rows);
    for (let h = 0; h < nHeads; h++) {
      const ko = Math.floor(h / group) * headDim;
      for (let r = 0; r < rows; r++) {
        const qo = r * qWidth + h * headDim;
        let max = -Infinity;
        for (let t = 0; t < kv.length; t++) {
          const row = t * width + ko;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[qo + i]! * k[row + i]!;
          dots[t] = dot * scale;
          if (dots[t]! > max) max = dots[t]!;
        }
        let sum = 0;
        for (let t = 0; t < kv.length; t++) sum += Math.exp(dots[t]! - max);
        outL[h * rows + r] = max + Math.log(sum);
        outM[h * rows + r] = max;
      }
    }
    lse.push(outL);
    maxes.push(outM);
  });
  return { rows, lse, max: maxes };
}

export type IndependentScore = 'lse-sum' | 'lse-max-head' | 'lse-mean-sum' | 'maxdot-sum' | 'maxdot-max-head';

/** Each block's score, against the anchor's stats: higher is better. `length` is the block's token count. */
export function independentScore(kind: IndependentScore, block: BlockAttentionStats, anchor: BlockAttentionStats, length: number): number {
  const useMax = kind.startsWith('maxdot');
  const perHead = kind.endsWith('max-head');
  const mine = useMax ? block.max : block.lse;
  const base = useMax ? anchor.max : anchor.lse;
  const offset = kind === 'lse-mean-sum' ? Math.log(length) : 0;
  let total = 0;
  let count = 0;
  let best = -Infinity;
  const headRows = block.rows;
  mine.forEach((m, layer) => {
    const a = base[layer];
    if (!m || !a) return;
    if (!perHead) {
      for (let v = 0; v < m.length; v++) total += m[v]! - a[v]! - offset;
      count += m.length;
      return;
    }
    for (let h = 0; h * headRows < m.length; h++) {
      let s = 0;
      for (let r = 0; r < headRows; r++) s += m[h * headRows + r]! - a[h * headRows + r]!;
      best = Math.max(best, s / headRows);
    }
  });
  if (perHead) return best;
  return count > 0 ? total / count : -Infinity;
}

/** Every independent score's order of the blocks in `stats` (best first; ties: input order). */
export function independentScores(stats: ReadonlyMap<number, BlockAttentionStats>, anchor: BlockAttentionStats, lengths: readonly number[]): Record<IndependentScore, number[]> {
  const kinds: IndependentScore[] = ['lse-sum', 'lse-max-head', 'lse-mean-sum', 'maxdot-sum', 'maxdot-max-head'];
  const out = {} as Record<IndependentScore, number[]>;
  for (const kind of kinds) {
    const scored = [...stats].map(([index, s], at) => ({ index, at, score: independentScore(kind, s, anchor, lengths[index]!) }));
    scored.sort((x, y) => y.score - x.score || x.at - y.at);
    out[kind] = scored.map((s) => s.index);
  }
  return out;
}

/** Reciprocal rank fusion (Cormack et al. 2009, k = 60) of full orders of the same blocks: best first. */
export function fuseRanks(orders: readonly (readonly number[])[], k = 60): number[] {
  const score = new Map<number, number>();
  for (const order of orders) order.forEach((index, rank) => score.set(index, (score.get(index) ?? 0) + 1 / (k + rank + 1)));
  const first = orders[0] ?? [];
  return [...score.keys()].sort((x, y) => score.get(y)! - score.get(x)! || first.indexOf(x) - first.indexOf(y));
}
