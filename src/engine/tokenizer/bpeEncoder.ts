import { mergeSymbols } from './bigramQueue';
import { BYTE_TO_CHAR } from './byteLevel';
import type { MergeTable } from './mergeTable';
import { splitPreTokens } from './preTokenizers';
import type { StringTable } from './stringTable';
import { utf8Encode } from './utf8';
import { FormatError } from '../errors';

const WORD_CACHE_LIMIT = 65536;

/**
 * Byte-level BPE (GPT-2 family: Llama 3, Qwen2) as llama.cpp's llm_tokenizer_bpe runs it: split text
 * with the pre-tokenizer regex, map each piece's UTF-8 bytes to GPT-2 characters, then apply the
 * lowest-ranked merge among adjacent pairs until none applies. The merge loop runs on symbol ids
 * (mergeTable.ts), never building the characters' strings.
 */
export class ByteLevelBpeEncoder {
  private readonly cache = new Map<string, readonly number[]>();
  /** Token of each byte's character, else the unknown token, else -1 (an error where it is needed). */
  private readonly byteTokens = new Int32Array(256);

  constructor(
    private readonly vocab: StringTable,
    private readonly merges: MergeTable,
    /** The pre-tokenizer's expressions, applied in turn (preTokenizerRegexes). */
    private readonly pattern: readonly RegExp[],
    /** Llama 3: a piece that is already a token is emitted whole without merging. */
    private readonly ignoreMerges: boolean,
    unkId: number | undefined,
    private readonly file: string,
  ) {
    for (let b = 0; b < 256; b++) {
      const id = vocab.find(BYTE_TO_CHAR[b]!);
      this.byteTokens[b] = id >= 0 ? id : unkId ?? -1;
    }
  }

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
    const bytes = utf8Encode(word);
    const n = bytes.length;
    if (this.ignoreMerges) {
      let chars = '';
      for (const b of bytes) chars += BYTE_TO_CHAR[b];
      const whole = this.vocab.find(chars);
      if (whole >= 0) return [whole];
    }
    const merges = this.merges;
    const symbol = new Int32Array(n);
    for (let i = 0; i < n; i++) symbol[i] = merges.byteSymbol[bytes[i]!]!;
    const len = new Int32Array(n).fill(1);
    const next = mergeSymbols(
      len,
      (left, right) => {
        const rank = merges.rank(symbol[left]!, symbol[right]!);
        return rank < 0 ? undefined : rank;
      },
      (left, _right, rank) => {
        symbol[left] = merges.merged(rank);
      },
    );
    const ids: number[] = [];
    for (let i = 0; i >= 0 && n > 0; i = next[i]!) {
      const id = symbol[i]!;
      if (id < this.vocab.length) {
        ids.push(id);
        continue;
      }
      // A merge result missing from the vocabulary: fall back to its single-byte tokens.
      for (let k = i; k < i + len[i]!; k++) ids.push(this.byteToken(bytes[k]!));
    }
    return ids;
  }

  private byteToken(b: number): number {
    const id = this.byteTokens[b]!;
    if (id < 0) throw new FormatError(`byte-level vocabulary lacks the byte token "${BYTE_TO_CHAR[b]}"`, this.file);
    return id;
  }
}
