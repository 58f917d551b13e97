import { mergeSymbols } from './bigramQueue';
import type { StringTable } from './stringTable';
import { utf8Encode } from './utf8';

const WORD_CACHE_LIMIT = 65536;

/** SentencePiece's visible space: token text spells ' ' as U+2581. */
export const SPM_SPACE = '\u2581';

/** The byte a SentencePiece byte token (`<0xNN>`) stands for; undefined for any other token text. */
export function spmByteValue(text: string): number | undefined {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
  return byte ? parseInt(byte[1]!, 16) : undefined;
}

/**
 * SentencePiece BPE as llama.cpp runs it for `tokenizer.ggml.model = llama` (llm_tokenizer_spm):
 * start from single characters and repeatedly merge the adjacent pair whose concatenation is a
 * vocabulary token with the highest score; characters no token covers fall back to `<0xNN>` bytes.
 * The caller has already replaced spaces with U+2581 and added the leading space where due.
 *
 * Speed-up that keeps the result exact: no merge can join two neighbouring characters unless that
 * character pair occurs inside some vocabulary token, so the text is cut at every other boundary and
 * the pieces (mostly words) are encoded independently and cached, as byte-level BPE caches words.
 */
export class SpmEncoder {
  private pairs: Set<string> | undefined;
  private readonly cache = new Map<string, readonly number[]>();

  constructor(
    private readonly vocab: StringTable,
    private readonly scores: ArrayLike<number>,
    /** id of `<0xNN>` for each byte, or -1 where the vocabulary has none. */
    private readonly byteTokens: Int32Array,
    private readonly unkId: number | undefined,
  ) {}

  encode(text: string, out: number[]): void {
    const pairs = (this.pairs ??= this.buildPairs());
    let start = 0;
    let prev = '';
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const ch = cp > 0xffff ? text.substr(i, 2) : text[i]!;
      if (i > 0 && !pairs.has(prev + ch)) {
        this.encodePiece(text.slice(start, i), out);
        start = i;
      }
      prev = ch;
      i += ch.length;
    }
    this.encodePiece(text.slice(start), out);
  }

  /** Every pair of adjacent characters inside a vocabulary token: the only places merges can join. */
  private buildPairs(): Set<string> {
    const pairs = new Set<string>();
    for (let id = 0; id < this.vocab.length; id++) {
      const token = this.vocab.get(id);
      let prev = '';
      for (const ch of token) {
        if (prev) pairs.add(prev + ch);
        prev = ch;
      }
    }
    return pairs;
  }

  private encodePiece(piece: string, out: number[]): void {
    let ids = this.cache.get(piece);
    if (!ids) {
      const fresh: number[] = [];
      this.mergePiece(piece, fresh);
      ids = fresh;
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(piece, ids);
    }
    for (const id of ids) out.push(id);
  }

  private mergePiece(text: string, out: number[]): void {
    if (text.length === 0) return;
    // Symbols are code points, kept as [start, end) ranges into `text` in a doubly linked list.
    const starts: number[] = [];
    for (let i = 0; i < text.length; ) {
      starts.push(i);
      i += text.codePointAt(i)! > 0xffff ? 2 : 1;
    }
    const n = starts.length;
    const start = Int32Array.from(starts);
    const len = new Int32Array(n);
    for (let i = 0; i < n; i++) len[i] = (i + 1 < n ? start[i + 1]! : text.length) - start[i]!;
    const next = mergeSymbols(len, (left, right) => {
      const id = this.vocab.findIn(text, start[left]!, start[left]! + len[left]! + len[right]!);
      return id < 0 ? undefined : -this.scores[id]!;
    });

    for (let i = 0; i >= 0; i = next[i]!) {
      const id = this.vocab.findIn(text, start[i]!, start[i]! + len[i]!);
      if (id >= 0) {
        out.push(id);
        continue;
      }
      // Only single characters can be left without a token (merges always form tokens).
      this.byteFallback(text.substr(start[i]!, len[i]!), out);
    }
  }

  private byteFallback(piece: string, out: number[]): void {
    const bytes = utf8Encode(piece);
    const ids: number[] = [];
    for (const b of bytes) {
      const id = this.byteTokens[b]!;
      if (id < 0) {
        // No byte tokens (e.g. a vocabulary converted without them): one <unk> for the character,
        // as Hugging Face's fuse_unk does, rather than one per byte.
        if (this.unkId !== undefined) out.push(this.unkId);
        return;
      }
      ids.push(id);
    }
    out.push(...ids);
  }
}
