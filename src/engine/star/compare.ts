import { CausalSequence, DEFAULT_PREFILL_CHUNK, prefill } from '../runtime/decode';
import type { Transformer } from '../runtime/transformer';
import type { KvDtype } from '../runtime/kvBytes';
import { encodeContext, type BlockStore } from './context';
import type { StarLayout } from './layout';
import { LocalStarHost } from './localHost';
import { StarQuery } from './query';
import { shiftBlockKv } from './shift';
import type { BlockKv } from './types';

/*
 * Star versus global attention on one token sequence: the next-token distributions at every query
 * position, star (phase 1 block-local + phase 2 global) against one ordinary causal prefill.
 * Reported as mean KL(global || star) and top-1 agreement, over the query rows that predict a
 * token of the sequence (all but the last: q-1 rows), which is how the golden case counts them.
 */

export interface CompareResult {
  readonly klMean: number;
  readonly top1Agreement: number;
  /** Query rows compared. */
  readonly positions: number;
  /** Largest |global - star| logit over the compared rows (diagnostic). */
  readonly maxLogitDiff: number;
}

/**
 * Where phase 1 puts the blocks: 'global' at their own positions (the paper's, and what a repository that fits
 * gets); 'local' each right after the anchor, then moved to its own position by re-rotating its keys, as a
 * selected block of a repository larger than the context is (selection/blockSelection.ts). Comparing the two
 * against global attention measures what local encoding costs inside the context.
 */
export type EncodePositions = 'global' | 'local';

/**
 * Logits [query rows, vocab] of the query under Star Attention (one host on `transformer`). With a `kvDtype` other
 * than f32 the blocks take the disk cache's path: encoded (where `positions` says) into an in-memory store of that
 * dtype, then read back into fresh hosts at their own positions, re-rotated and rounded again where they moved, as
 * a warm question's selected blocks are (context.ts).
 */
export async function starQueryLogits(transformer: Transformer, layout: StarLayout, hosts = 1, positions: EncodePositions = 'global', kvDtype: KvDtype = 'f32'): Promise<Float32Array> {
  if (kvDtype !== 'f32') return storedStarQueryLogits(transformer, layout, hosts, positions, kvDtype);
  const c = transformer.config;
  const hostList = Array.from({ length: hosts }, (_, i) => new LocalStarHost(transformer, { name: `host ${i}` }));
  try {
    const at = layout.anchor.length;
    const stats = await encodeContext({
      modelIdentity: 'compare',
      anchor: layout.anchor,
      blocks: positions === 'local' ? layout.blocks.map((b) => (b.index === 0 ? b : { ...b, start: at })) : layout.blocks,
      hosts: hostList,
      kvWidth: c.nKvHeads * c.headDim,
      nLayers: c.nLayers,
      shift: (kv, start) => shiftBlockKv(transformer.backend, kv, start, c.headDim, c.rope),
    });
    if (positions === 'local') {
      await Promise.all(hostList.map((host, h) => host.move(layout.blocks
        .filter((b) => b.index > 0 && stats.hostOfBlock[b.index] === h)
        .map((b) => ({ from: b.index, to: b.index, start: b.start })))));
    }
    return await queryLogits(transformer, layout, hostList);
  } finally {
    for (const h of hostList) await h.dispose();
  }
}

async function queryLogits(transformer: Transformer, layout: StarLayout, hostList: readonly LocalStarHost[]): Promise<Float32Array> {
  const query = new StarQuery(transformer, {
    contextLength: layout.contextLength,
    hosts: hostList,
    colocated: hostList[0],
    capacity: layout.query.length,
  });
  try {
    const logits = await query.forward(layout.query, 'all');
    return await transformer.backend.readAct(logits!);
  } finally {
    query.dispose();
  }
}

async function storedStarQueryLogits(transformer: Transformer, layout: StarLayout, hosts: number, positions: EncodePositions, dtype: KvDtype): Promise<Float32Array> {
  const c = transformer.config;
  const entries = new Map<string, BlockKv>();
  const store: BlockStore = {
    dtype,
    get: async (key) => entries.get(key),
    put: async (key, kv) => { entries.set(key, { ...kv, k: kv.k.map((a) => a.slice()), v: kv.v.map((a) => a.slice()) }); },
  };
  const at = layout.anchor.length;
  const pass = async (blocks: StarLayout['blocks'], answer: boolean): Promise<Float32Array | undefined> => {
    const hostList = Array.from({ length: hosts }, (_, i) => new LocalStarHost(transformer, { name: `host ${i}` }));
    try {
      await encodeContext({
        modelIdentity: 'compare', anchor: layout.anchor, blocks, hosts: hostList, store, rewriteMoved: false,
        kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
        shift: (kv, start) => shiftBlockKv(transformer.backend, kv, start, c.headDim, c.rope),
      });
      return answer ? await queryLogits(transformer, layout, hostList) : undefined;
    } finally {
      for (const h of hostList) await h.dispose();
    }
  };
  await pass(positions === 'local' ? layout.blocks.map((b) => (b.index === 0 ? b : { ...b, start: at })) : layout.blocks, false);
  return (await pass(layout.blocks, true))!;
}

/** Logits [query rows, vocab] of the query after one causal prefill of context + query. */
export async function globalQueryLogits(transformer: Transformer, ids: readonly number[], contextTokens: number, chunk = DEFAULT_PREFILL_CHUNK): Promise<Float32Array> {
  const seq = new CausalSequence(transformer, ids.length);
  try {
    await prefill(seq, ids.slice(0, contextTokens), { chunk, logits: 'none' });
    const logits = await seq.forward(ids.slice(contextTokens), 'all');
    return await transformer.backend.readAct(logits!);
  } finally {
    seq.dispose();
  }
}

export function compareDistributions(global: Float32Array, star: Float32Array, vocab: number, rows: number): CompareResult {
  let kl = 0;
  let agree = 0;
  let maxDiff = 0;
  for (let r = 0; r < rows; r++) {
    const g = global.subarray(r * vocab, (r + 1) * vocab);
    const s = star.subarray(r * vocab, (r + 1) * vocab);
    const lg = logSoftmax(g);
    const ls = logSoftmax(s);
    let k = 0;
    for (let i = 0; i < vocab; i++) {
      k += Math.exp(lg[i]!) * (lg[i]! - ls[i]!);
      maxDiff = Math.max(maxDiff, Math.abs(g[i]! - s[i]!));
    }
    kl += k;
    if (argmax(g) === argmax(s)) agree++;
  }
  return { klMean: kl / rows, top1Agreement: agree / rows, positions: rows, maxLogitDiff: maxDiff };
}

/** Star vs global over the query part of `layout` (ids = context + query). */
export async function compareStarGlobal(transformer: Transformer, ids: readonly number[], layout: StarLayout, hosts = 1, positions: EncodePositions = 'global', kvDtype: KvDtype = 'f32'): Promise<CompareResult> {
  const vocab = transformer.config.vocabSize;
  const star = await starQueryLogits(transformer, layout, hosts, positions, kvDtype);
  const global = await globalQueryLogits(transformer, ids, layout.contextLength);
  const rows = Math.max(1, layout.query.length - 1);
  return compareDistributions(global, star, vocab, rows);
}

function logSoftmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  let s = 0;
  for (const v of x) s += Math.exp(v - m);
  const lz = m + Math.log(s);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! - lz;
  return out;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

