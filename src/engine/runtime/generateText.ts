import type { Tokenizer } from '../tokenizer/types';
import { createStreamDecoder } from '../tokenizer/streamDecoder';
import { generate, type FinishReason, type GenerateOptions } from './generate';
import type { Transformer } from './transformer';

export interface TextPiece {
  readonly id: number;
  /** Text completed by this id; '' while a multi-byte character is still incomplete. */
  readonly text: string;
}

/**
 * generate() with text: yields each id with the text it completes (never a split UTF-8
 * character). Stop ids default to the tokenizer's EOS set. Returns why generation ended and
 * whatever text the decoder still held.
 */
export async function* generateText(
  transformer: Transformer,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  opts: Omit<GenerateOptions, 'stopIds'> & { stopIds?: ReadonlySet<number> },
): AsyncGenerator<TextPiece, { finish: FinishReason; tail: string }> {
  const decoder = createStreamDecoder(tokenizer);
  const ids = generate(transformer, promptIds, { ...opts, stopIds: opts.stopIds ?? tokenizer.eos });
  for (;;) {
    const next = await ids.next();
    if (next.done) return { finish: next.value, tail: decoder.flush() };
    yield { id: next.value, text: decoder.push(next.value) };
  }
}
