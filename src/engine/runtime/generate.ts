import { EngineError } from '../errors';
import { fitAnswer } from './answerBudget';
import { CausalSequence, decode, prefill, type DecodeOptions, type FinishReason } from './decode';
import type { Transformer } from './transformer';

export type { FinishReason } from './decode';

export interface GenerateOptions extends DecodeOptions {
  /** Prompt rows per prefill forward (bounds activation memory; default DEFAULT_PREFILL_CHUNK). */
  readonly prefillChunk?: number;
  /** Called once the prompt is prefilled, with the time it took (for tokens/s). */
  readonly onPrefill?: (ms: number) => void;
}

/**
 * Generates up to maxTokens ids after `promptIds` (fewer where the context ends: fitAnswer), yielding each as soon
 * as it is chosen. The sequence's KV lives on the transformer's backend and is released at the end. Returns why it
 * stopped. Throws CancelledError when `signal` aborts, and an EngineError when the prompt leaves no room.
 */
export async function* generate(
  transformer: Transformer,
  promptIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<number, FinishReason> {
  if (promptIds.length === 0) throw new EngineError('generate: the prompt is empty (no BOS either)');
  const { maxTokens } = fitAnswer(transformer.config.contextLength, promptIds.length, opts.maxTokens, `the prompt's ${promptIds.length} tokens`);
  // The last token chosen is never fed back, so it needs no room in the cache.
  const seq = new CausalSequence(transformer, promptIds.length + Math.max(0, maxTokens - 1));
  try {
    const started = performance.now();
    const first = (await prefill(seq, promptIds, { chunk: opts.prefillChunk, signal: opts.signal }))!;
    opts.onPrefill?.(performance.now() - started);
    return yield* decode(seq, first, { ...opts, maxTokens });
  } finally {
    seq.dispose();
  }
}
