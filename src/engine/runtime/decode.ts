import { throwIfAborted } from '../errors';
import type { Act } from '../backend/types';
import { createYieldPoint } from '../util/yieldPoint';
import { createRandom } from './random';
import type { Transformer } from './transformer';
import type { KvCache } from './types';

/*
 * The one prefill and the one decode loop. Everything that generates runs them: `generate` (the CLI's generate,
 * the global baseline of ask, bench and compare) over a CausalSequence, and Star Attention's phase 2 (answer.ts)
 * over a StarQuery. What differs between those is only where a token's attention goes, which the sequence's
 * forward hides.
 */

/** Tokens appended one forward at a time, each attending to what came before (and, for a StarQuery, the context). */
export interface TokenSequence {
  readonly transformer: Transformer;
  /** The sequence's own KV: its length is the tokens run so far, its capacity the most it can hold. */
  readonly cache: KvCache;
  forward(ids: readonly number[], logits: 'none' | 'last' | 'all', signal?: AbortSignal): Promise<Act | null>;
}

/** An ordinary causal sequence from position 0 on one transformer (what llama.cpp runs). */
export class CausalSequence implements TokenSequence {
  readonly cache: KvCache;

  constructor(readonly transformer: Transformer, capacity: number) {
    this.cache = transformer.newCache(capacity);
  }

  forward(ids: readonly number[], logits: 'none' | 'last' | 'all', signal?: AbortSignal): Promise<Act | null> {
    const positions = new Int32Array(ids.length);
    for (let i = 0; i < positions.length; i++) positions[i] = this.cache.length + i;
    return this.transformer.forward(Int32Array.from(ids), positions, this.cache, { logits, signal });
  }

  dispose(): void {
    this.transformer.releaseCache(this.cache);
  }
}

/** Prompt rows per prefill forward by default: bounds activation memory, large enough to fill the matmuls. */
export const DEFAULT_PREFILL_CHUNK = 256;

/** Runs `ids` through `seq` in forwards of at most `chunk` rows; the last forward's logits (of its last row by default). */
export async function prefill(
  seq: TokenSequence,
  ids: readonly number[],
  o: { readonly chunk?: number; readonly logits?: 'none' | 'last'; readonly signal?: AbortSignal } = {},
): Promise<Act | null> {
  const chunk = Math.max(1, o.chunk ?? DEFAULT_PREFILL_CHUNK);
  let logits: Act | null = null;
  for (let start = 0; start < ids.length; start += chunk) {
    const end = Math.min(ids.length, start + chunk);
    logits = await seq.forward(ids.slice(start, end), end === ids.length ? (o.logits ?? 'last') : 'none', o.signal);
  }
  return logits;
}

export interface DecodeOptions {
  /** Most tokens to choose (the caller has fitted it to the context: fitAnswer). */
  readonly maxTokens: number;
  /** 0 = greedy (argmax on the backend). */
  readonly temperature: number;
  /** Nucleus mass for sampling (default 1: the whole distribution). */
  readonly topP?: number;
  /** Seed of the sampling PRNG (default 0). */
  readonly seed?: number;
  /** Ids that end generation; they are not yielded. */
  readonly stopIds: ReadonlySet<number>;
  readonly signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

/**
 * Chooses a token from `first` (the prompt's last logits), yields it, feeds it back, until a stop id, maxTokens or
 * the sequence's capacity. The last token chosen is never fed back. Throws CancelledError when `signal` aborts.
 */
export async function* decode(seq: TokenSequence, first: Act, o: DecodeOptions): AsyncGenerator<number, FinishReason> {
  const backend = seq.transformer.backend;
  const random = createRandom(o.seed ?? 0);
  // Lets a worker's event loop take a cancel between tokens (a CPU forward never yields on its own).
  const yieldPoint = createYieldPoint();
  let logits = first;
  for (let produced = 0; produced < o.maxTokens; produced++) {
    const next = o.temperature <= 0
      ? (await backend.argmax(logits))[0]!
      : await backend.sampleTopP(logits, o.temperature, o.topP ?? 1, random());
    throwIfAborted(o.signal);
    if (o.stopIds.has(next)) return 'stop';
    yield next;
    if (produced + 1 === o.maxTokens || seq.cache.length >= seq.cache.capacity) break;
    await yieldPoint();
    logits = (await seq.forward([next], 'last', o.signal))!;
  }
  return 'length';
}

export interface DecodeResult {
  readonly ids: number[];
  readonly finish: FinishReason;
  /** From `started` (the start of the prompt's prefill, or earlier) to the first token chosen. */
  readonly ttftMs: number;
  /** Generated tokens after the first, per second of decoding (0 when fewer than 2 tokens). */
  readonly decodeTokensPerSec: number;
}

/** Runs a decode to its end, handing each id to `onToken` as it comes, and times it from `started`. */
export async function collectDecode(
  tokens: AsyncGenerator<number, FinishReason>,
  started: number,
  onToken?: (id: number) => void,
): Promise<DecodeResult> {
  const ids: number[] = [];
  let firstAt = 0;
  for (;;) {
    const next = await tokens.next();
    firstAt ||= performance.now();
    if (next.done) {
      const decodeMs = performance.now() - firstAt;
      return {
        ids,
        finish: next.value,
        ttftMs: firstAt - started,
        decodeTokensPerSec: ids.length > 1 && decodeMs > 0 ? ((ids.length - 1) * 1000) / decodeMs : 0,
      };
    }
    ids.push(next.value);
    onToken?.(next.value);
  }
}
