import type { Tokenizer } from './types';

const EMPTY = new Uint8Array(0);

/**
 * The one place that decides which bytes each id adds to decoded text, shared by decode() and the
 * stream decoder so both produce the same string.
 *
 * SentencePiece leading space (tokenizer.stripsLeadingSpace): encode put a space before the text and
 * after each special token, so decode drops one leading space from the first text piece and from a
 * piece right after a special token that is shown. After a special token that is skipped, the space
 * stays: "Hi</s> there" displays as "Hi there", as llama.cpp and Hugging Face show it.
 */
export class PieceJoiner {
  private atStart = true;
  private afterShownSpecial = false;

  constructor(
    private readonly tokenizer: Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'stripsLeadingSpace' | 'unk'>,
    private readonly skipSpecial: boolean,
  ) {}

  bytesFor(id: number): Uint8Array {
    if (this.tokenizer.isSpecial(id)) {
      if (this.skipSpecial) return EMPTY;
      // <unk> stands for text the vocabulary lacks; encode did not start a new fragment there.
      if (id !== this.tokenizer.unk) this.afterShownSpecial = true;
      this.atStart = false;
      return this.tokenizer.tokenBytes(id);
    }
    let bytes = this.tokenizer.tokenBytes(id);
    if ((this.atStart || this.afterShownSpecial) && this.tokenizer.stripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.atStart = false;
    this.afterShownSpecial = false;
    return bytes;
  }
}
