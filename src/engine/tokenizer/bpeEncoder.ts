import { mergeSymbols } from './bigramQueue';
import { BYTE_TO_CHAR } from './byteLevel';
import { splitPreTokens } from './preTokenizers';
import { utf8Encode } from './utf8';
import { FormatError } from '../errors';

const WORD_CACHE_LIMIT = 65536;

/**
 * Byte-level BPE (GPT-2 family: Llama 3, Qwen2) as llama.cpp's llm_tokenizer_bpe runs it: split text
 * with the pre-tokenizer regex, map each piece's UTF-8 bytes to GPT-2 characters, then apply the
 * lowest-ranked merge among adjacent pairs until none applies.
 */
export class ByteLevelBpeEncoder {
  private readonly cache = new Map<string, readonly number[]>();

  constructor(
    private readonly tokenToId: ReadonlyMap<string, number>,
    /** "left right" → rank (position in tokenizer.ggml.merges). */
    private readonly mergeRanks: ReadonlyMap<string, number>,
    /** The pre-tokenizer's expressions, applied in turn (preTokenizerRegexes). */
    private readonly pattern: readonly RegExp[],
    /** Llama 3: a piece that is already a token is emitted whole without merging. */
    private readonly ignoreMerges: boolean,
    private readonly unkId: number | undefined,
    private readonly file: string,
  ) {}

  encode(text: string, out: number[]): void {
    for (const word of splitPreTokens(this.pattern, text)) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.encodeWord(word);
        if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
        this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private encodeWord(word: string): number[] {
    let chars = '';
    for (const b of utf8Encode(word)) chars += BYTE_TO_CHAR[b];
    if (this.ignoreMerges) {
      const whole = this.tokenToId.get(chars);
      if (whole !== undefined) return [whole];
    }
    // Every byte character is one UTF-16 unit, so symbol i starts at string index i.
    const n = chars.length;
    const len = new Int32Array(n).fill(1);
    const next = mergeSymbols(len, (left, right) => this.mergeRanks.get(chars.substr(left, len[left]!) + ' ' + chars.substr(right, len[right]!)));
    const ids: number[] = [];
    for (let i = 0; i >= 0 && n > 0; i = next[i]!) {
      const piece = chars.substr(i, len[i]!);
      const id = this.tokenToId.get(piece);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // A merge result missing from the vocabulary: fall back to its single-byte tokens.
      for (const ch of piece) ids.push(this.byteToken(ch));
    }
    return ids;
  }

  private byteToken(ch: string): number {
    const id = this.tokenToId.get(ch) ?? this.unkId;
    if (id === undefined) throw new FormatError(`byte-level vocabulary lacks the byte token "${ch}"`, this.file);
    return id;
  }
}
