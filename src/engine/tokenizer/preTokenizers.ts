/**
 * Pre-tokenizer regexes for byte-level BPE, chosen by GGUF `tokenizer.ggml.pre` (llama.cpp's names).
 * Written for JavaScript: `\s` is spelled out as Unicode White_Space (what Oniguruma and Rust's
 * regex mean by it; JavaScript's `\s` also matches U+FEFF and misses U+0085), and the
 * case-insensitive contraction group `(?i:'s|...)` is expanded because Node 20 lacks `(?i:)`.
 */
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const CONTRACTIONS_CI = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";

/** Llama 3: letters with one leading non-letter, numbers in groups of up to three. */
const LLAMA3 =
  `(?:${CONTRACTIONS_CI})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|[${WS}]*[\\r\\n]+|[${WS}]+(?![^${WS}])|[${WS}]+`;
/** Qwen2: as Llama 3 but every digit is its own piece. */
const QWEN2 =
  `(?:${CONTRACTIONS_CI})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|[${WS}]*[\\r\\n]+|[${WS}]+(?![^${WS}])|[${WS}]+`;
/** GPT-2 (also what `default` means here). */
const GPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`;
/** Every digit its own piece, before the next expression splits what is left (HF `Digits(individual_digits)`). */
const DIGITS = '\\p{N}';

/**
 * Each pre-tokenizer is a sequence of expressions, as llama.cpp's `regex_exprs`: the first splits the text, each
 * next one splits every piece of the one before (a sequence is not one alternation: `\s+(?!\S)` sees the end of
 * a piece where the joined text has a digit).
 */
const BY_NAME: Readonly<Record<string, readonly string[]>> = {
  'llama-bpe': [LLAMA3],
  'llama3': [LLAMA3],
  'llama-v3': [LLAMA3],
  'qwen2': [QWEN2],
  'deepseek-r1-qwen': [QWEN2],
  'default': [GPT2],
  'gpt2': [GPT2],
  'gpt-2': [GPT2],
  // SmolLM (and llama.cpp's starcoder, refact, command-r, codeshell, exaone, minerva): digits, then GPT-2.
  'smollm': [DIGITS, GPT2],
  'starcoder': [DIGITS, GPT2],
  'refact': [DIGITS, GPT2],
  'command-r': [DIGITS, GPT2],
  'codeshell': [DIGITS, GPT2],
  'exaone': [DIGITS, GPT2],
  'minerva-7b': [DIGITS, GPT2],
};

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(BY_NAME);

/** Fresh global regexes, in order, for the named pre-tokenizer, or undefined if unknown. */
export function preTokenizerRegexes(pre: string): RegExp[] | undefined {
  return BY_NAME[pre]?.map((src) => new RegExp(src, 'gu'));
}

/** Splits text into pre-tokens by each regex in turn; text a regex does not match stays as its own piece (HF "Isolated"). */
export function splitPreTokens(res: readonly RegExp[], text: string): string[] {
  let pieces = [text];
  for (const re of res) pieces = pieces.flatMap((piece) => splitByRegex(re, piece));
  return pieces;
}

function splitByRegex(re: RegExp, text: string): string[] {
  const out: string[] = [];
  let last = 0;
  re.lastIndex = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > last) out.push(text.slice(last, m.index));
    if (m[0].length > 0) out.push(m[0]);
    last = m.index! + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
