import { BaseTokenizer, type BaseTokenizerParts } from './baseTokenizer';
import type { SpecialTokenMatcher } from './specialTokens';
import type { EncodeOptions } from './types';

export interface VocabTokenizerParts extends BaseTokenizerParts {
  readonly specials: SpecialTokenMatcher;
  /** Encodes plain text (no special tokens in it); `afterSpecial`: at the start or right after a special token. */
  encodeText(text: string, afterSpecial: boolean, out: number[]): void;
}

/** A Tokenizer over an explicit vocabulary; the model-specific part is `encodeText`. */
export class VocabTokenizer extends BaseTokenizer<VocabTokenizerParts> {
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if ((options.addBos ?? true) && this.addBosByDefault && this.bos !== undefined) out.push(this.bos);
    // The dummy-prefix space goes at the start (unless the text continues earlier text) and after each special token.
    let afterSpecial = options.addSpacePrefix ?? true;
    for (const fragment of this.parts.specials.split(text, options.parseSpecial ?? true)) {
      if (typeof fragment === 'number') {
        out.push(fragment);
        afterSpecial = true;
      } else {
        this.parts.encodeText(fragment, afterSpecial, out);
        afterSpecial = false;
      }
    }
    return out;
  }
}
