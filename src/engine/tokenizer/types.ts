export type TokenizerKind = 'llama-spm' | 'gpt2-bpe' | 'hf-json';

export interface EncodeOptions {
  /** Prepend BOS when the tokenizer's rules say so (default true). */
  readonly addBos?: boolean;
  /** Recognize special-token text such as "<|im_start|>" as single tokens (default true: prompts are built from templates). */
  readonly parseSpecial?: boolean;
  /**
   * SentencePiece vocabularies (add_space_prefix / a Prepend-U+2581 normalizer) put a space before the
   * text, as if it began a sentence (default true). Pass false when the text continues earlier text
   * that was encoded separately (a file block after the prompt prefix, the query after the context).
   * Byte-level BPE vocabularies ignore it. Optional: added after the first version of this interface.
   */
  readonly addSpacePrefix?: boolean;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bos?: number;
  /** Every id that ends generation (EOS, and e.g. <|eot_id|>, <|im_end|>). */
  readonly eos: ReadonlySet<number>;
  /** Whether encode() adds BOS by default (GGUF `tokenizer.ggml.add_bos_token`, tokenizer.json post-processor). */
  readonly addBosByDefault: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes whole ids to text (byte-fallback bytes joined, invalid UTF-8 replaced). */
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  /** Raw bytes that one id stands for (special tokens: their text). */
  tokenBytes(id: number): Uint8Array;
  /** Token text as stored in the vocabulary, for display. */
  tokenText(id: number): string;
  isSpecial(id: number): boolean;
  /**
   * SentencePiece rule: encode adds a space at the start and after each special token
   * (add_space_prefix), so decode drops one leading space from the first text piece and from a piece
   * right after a special token it shows (see pieceJoiner.ts). Absent means false. Optional so that
   * other Tokenizer implementations stay valid; the stream decoder reads it.
   */
  readonly stripsLeadingSpace?: boolean;
  /** The unknown-token id, if any. Optional (added for the decoders: <unk> is special but is not a text boundary). */
  readonly unk?: number;
}

/** Streaming decode: push ids one by one, get text that never splits a UTF-8 character. */
export interface StreamDecoder {
  push(id: number): string;
  flush(): string;
}
