import { EngineError, throwIfAborted } from '../../errors';
import type { Transformer } from '../../runtime/transformer';
import type { KvCache } from '../../runtime/types';
import type { BlockKv } from '../types';
import type { QuestionQueries } from './keySummary';

/*
 * The question's per-layer queries for the attention ranking, before any block is chosen: one forward of the
 * question over a small context (the anchor, optionally a few lexically best blocks), recording q after RoPE in
 * every layer (Transformer's observeQuery). Its KV is thrown away; phase 2 runs the question again over the
 * selected blocks.
 *
 * Exact where it matters least: layer 0's queries depend only on the question's tokens and positions; later layers'
 * queries carry what the question read in earlier layers, here only the probe's context, not the repository. That
 * is the approximation (InfLLM makes the same one: the current chunk's queries, formed over what is resident, pick
 * the memory units to bring in). The cost is one question prefill over the anchor: the question's tokens times the
 * anchor's, no block KV read.
 *
 * Positions: pass the position the question would have after a typical placement (e.g. anchor + the attention
 * budget), so that a key summary taken at local positions (every block right after the anchor) is scored at the
 * distance a placed block has from the question (keySummary.ts).
 */

export interface ProbeOptions {
  /** The question's first position. Default: right after the probe's context. */
  readonly position?: number;
  readonly signal?: AbortSignal;
}

/**
 * Runs `question` over `context` (plain KV, the anchor first; each block's keys as rotated at its encoding) on
 * `transformer`'s backend and returns its queries per layer. Nothing is kept on the device afterwards.
 */
export async function probeQuestionQueries(
  transformer: Transformer,
  context: readonly BlockKv[],
  question: readonly number[],
  options: ProbeOptions = {},
): Promise<QuestionQueries> {
  const c = transformer.config;
  if (question.length === 0) throw new EngineError('the question encodes to no tokens');
  const width = c.nKvHeads * c.headDim;
  for (const kv of context) {
    if (kv.width !== width || kv.k.length !== c.nLayers || kv.v.length !== c.nLayers) {
      throw new EngineError(`block ${kv.index}'s KV (${kv.k.length} layers x ${kv.width}) does not match the model (${c.nLayers} x ${width})`);
    }
  }
  const contextTokens = context.reduce((n, kv) => n + kv.length, 0);
  const position = options.position ?? contextTokens;
  if (position + question.length > c.contextLength) {
    throw new EngineError(`the probe's question at position ${position} (${question.length} tokens) runs past the model's context of ${c.contextLength}`);
  }
  const caches: KvCache[] = [];
  const own = transformer.newCache(question.length);
  try {
    for (const kv of context) caches.push(upload(transformer, kv));
    throwIfAborted(options.signal);
    const positions = new Int32Array(question.length);
    for (let i = 0; i < question.length; i++) positions[i] = position + i;
    const q: Float32Array[] = new Array(c.nLayers);
    await transformer.forward(Int32Array.from(question), positions, own, {
      context: caches,
      logits: 'none',
      signal: options.signal,
      observeQuery: (layer, rowsQ) => { q[layer] = rowsQ.slice(); },
    });
    return { rows: question.length, q };
  } finally {
    transformer.releaseCache(own);
    for (const cache of caches) transformer.releaseCache(cache);
  }
}

function upload(transformer: Transformer, kv: BlockKv): KvCache {
  const cache = transformer.newCache(kv.length);
  cache.layers.forEach((l, i) => {
    transformer.backend.writeKv(l.k, 0, kv.k[i]!);
    transformer.backend.writeKv(l.v, 0, kv.v[i]!);
  });
  cache.length = kv.length;
  return cache;
}
