import { EngineError, throwIfAborted } from '../errors';
import type { Act } from '../backend/types';
import { createRandom } from './random';
import type { Transformer } from './transformer';
import type { KvCache } from './types';

export interface GenerateOptions {
  readonly maxTokens: number;
  /** 0 = greedy (argmax on the backend). */
  readonly temperature: number;
  /** Nucleus mass for sampling (default 1: the whole distribution). */
  readonly topP?: number;
  /** Seed of the sampling PRNG (default 0). */
  readonly seed?: number;
  readonly signal?: AbortSignal;
  /** Ids that end generation; they are not yielded. */
  readonly stopIds: ReadonlySet<number>;
  /** Prompt rows per prefill forward (bounds activation memory; default 256). */
  readonly prefillChunk?: number;
  /** Called once the prompt is prefilled, with the time it took (for tokens/s). */
  readonly onPrefill?: (ms: number) => void;
}

export type FinishReason = 'stop' | 'length';

/**
 * How many tokens generation after a prompt of `promptTokens` may produce: `maxTokens`, capped where the sequence
 * reaches the model's context (positions beyond it were never trained, and each token costs more than the last).
 * The last token may sit at position contextLength (it is chosen, never fed back). Callers that cap say so.
 */
export function generatedTokensLimit(contextLength: number, promptTokens: number, maxTokens: number): number {
  return Math.max(0, Math.min(maxTokens, contextLength - promptTokens + 1));
}

/**
 * Generates up to maxTokens ids after `promptIds`, yielding each as soon as it is chosen. The
 * sequence's KV lives on the transformer's backend and is released at the end. Returns why it
 * stopped. Throws CancelledError when `signal` aborts.
 */
export async function* generate(
  transformer: Transformer,
  promptIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<number, FinishReason> {
  if (promptIds.length === 0) throw new EngineError('generate: the prompt is empty (no BOS either)');
  const limit = transformer.config.contextLength;
  if (promptIds.length > limit) {
    throw new EngineError(`the prompt has ${promptIds.length} tokens; the model's context is ${limit}`);
  }
  const maxTokens = generatedTokensLimit(limit, promptIds.length, opts.maxTokens);
  // The last token chosen is never fed back, so it needs no room in the cache.
  const cache = transformer.newCache(promptIds.length + Math.max(0, maxTokens - 1));
  try {
    const started = performance.now();
    let logits = await prefill(transformer, promptIds, cache, opts);
    opts.onPrefill?.(performance.now() - started);
    const random = createRandom(opts.seed ?? 0);
    const ids = new Int32Array(1);
    const positions = new Int32Array(1);
    for (let produced = 0; produced < maxTokens; produced++) {
      const next = await pick(transformer, logits, opts, random);
      throwIfAborted(opts.signal);
      if (opts.stopIds.has(next)) return 'stop';
      yield next;
      if (produced + 1 === maxTokens) break;
      ids[0] = next;
      positions[0] = cache.length;
      logits = (await transformer.forward(ids, positions, cache, { logits: 'last', signal: opts.signal }))!;
    }
    return 'length';
  } finally {
    transformer.releaseCache(cache);
  }
}

async function prefill(transformer: Transformer, promptIds: readonly number[], cache: KvCache, opts: GenerateOptions): Promise<Act> {
  const chunk = Math.max(1, opts.prefillChunk ?? 256);
  let logits: Act | null = null;
  for (let startRow = 0; startRow < promptIds.length; startRow += chunk) {
    const end = Math.min(promptIds.length, startRow + chunk);
    const ids = Int32Array.from(promptIds.slice(startRow, end));
    const positions = new Int32Array(end - startRow);
    for (let i = 0; i < positions.length; i++) positions[i] = cache.length + i;
    logits = await transformer.forward(ids, positions, cache, {
      logits: end === promptIds.length ? 'last' : 'none',
      signal: opts.signal,
    });
  }
  return logits!;
}

async function pick(transformer: Transformer, logits: Act, opts: GenerateOptions, random: () => number): Promise<number> {
  if (opts.temperature <= 0) return (await transformer.backend.argmax(logits))[0]!;
  return transformer.backend.sampleTopP(logits, opts.temperature, opts.topP ?? 1, random());
}
