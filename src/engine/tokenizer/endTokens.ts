/** End-of-turn tokens of common chat models; they stop generation when present as special tokens. */
const WELL_KNOWN_END_TOKENS = ['<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<|endoftext|>', '<|end_of_text|>', '<end_of_turn>', '<|end|>'];

/**
 * Adds to `eos` the well-known end-of-turn tokens the vocabulary has (`idOf`: a text's id, or undefined), where
 * `isSpecial` says the id is a special token.
 */
export function addWellKnownEndTokens(eos: Set<number>, idOf: (text: string) => number | undefined, isSpecial: (id: number) => boolean): void {
  for (const text of WELL_KNOWN_END_TOKENS) {
    const id = idOf(text);
    if (id !== undefined && isSpecial(id)) eos.add(id);
  }
}
