import type { Tokenizer } from './types';

/**
 * Encodes a rendered chat prompt: special-token text becomes special tokens, and BOS is added only
 * when the tokenizer adds it by default and the template did not already write it (Llama 3's
 * template starts with {{ bos_token }}; adding another would double it).
 */
export function encodeRenderedPrompt(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text, { addBos: false, parseSpecial: true });
  if (tokenizer.addBosByDefault && tokenizer.bos !== undefined && ids[0] !== tokenizer.bos) ids.unshift(tokenizer.bos);
  return ids;
}
