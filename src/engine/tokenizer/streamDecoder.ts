import { PieceJoiner } from './pieceJoiner';
import type { StreamDecoder, Tokenizer } from './types';
import { utf8CompleteLength, utf8Decode } from './utf8';

export interface StreamDecoderOptions {
  /** Leave special tokens (BOS, EOS, <|im_end|>) out of the text; default true, since the stream is for display. */
  readonly skipSpecial?: boolean;
}

/**
 * Turns generated ids into text as they arrive. Bytes are held back while they are a valid but
 * unfinished UTF-8 character (a `<0xE6>` byte token, or an emoji split across byte-level tokens),
 * so a chunk never ends inside a character. The concatenated chunks plus flush() equal
 * tokenizer.decode(ids, { skipSpecial }) exactly, including the SentencePiece leading-space rule.
 */
export function createStreamDecoder(tokenizer: Tokenizer, options: StreamDecoderOptions = {}): StreamDecoder {
  const joiner = new PieceJoiner(tokenizer, options.skipSpecial ?? true);
  let pending: number[] = [];
  return {
    push(id: number): string {
      for (const b of joiner.bytesFor(id)) pending.push(b);
      const ready = utf8CompleteLength(pending);
      if (ready === 0) return '';
      const text = utf8Decode(pending.slice(0, ready));
      pending = pending.slice(ready);
      return text;
    },
    flush(): string {
      // Whatever is still pending can never complete: show it as U+FFFD, as decode() does.
      const text = utf8Decode(pending);
      pending = [];
      return text;
    },
  };
}
