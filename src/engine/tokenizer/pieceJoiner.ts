import type { Tokenizer } from './types';

const EMPTY = new Uint8Array(0);

/**
 * The one place that decides which bytes each id adds to decoded text, shared by decode() and the
 * stream decoder so both produce the same string: special tokens are kept or skipped, and on
 * SentencePiece vocabularies the space encode added at the start / after a special token is removed.
 */
export class PieceJoiner {
  private afterSpecial = true;

  constructor(
    private readonly tokenizer: Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'stripsLeadingSpace' | 'unk'>,
    private readonly skipSpecial: boolean,
  ) {}

  bytesFor(id: number): Uint8Array {
    if (this.tokenizer.isSpecial(id)) {
      // <unk> stands for text the vocabulary lacks; encode did not start a new fragment there.
      if (id !== this.tokenizer.unk) this.afterSpecial = true;
      return this.skipSpecial ? EMPTY : this.tokenizer.tokenBytes(id);
    }
    let bytes = this.tokenizer.tokenBytes(id);
    if (this.afterSpecial && this.tokenizer.stripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.afterSpecial = false;
    return bytes;
  }
}
