import { EngineError } from '../errors';
import { PieceJoiner } from './pieceJoiner';
import type { SpecialTokenMatcher } from './specialTokens';
import type { EncodeOptions, Tokenizer, TokenizerKind } from './types';
import { utf8Decode } from './utf8';

export interface VocabTokenizerParts {
  readonly kind: TokenizerKind;
  readonly file: string;
  /** Token text as stored, by id. */
  readonly tokens: readonly string[];
  /** Raw bytes an id decodes to (special tokens: their text); called once per id, on first use. */
  tokenBytes(id: number): Uint8Array;
  /** Ids dropped by decode(skipSpecial) and that reset the leading-space rule. */
  readonly special: ReadonlySet<number>;
  readonly bos?: number;
  readonly unk?: number;
  readonly eos: ReadonlySet<number>;
  readonly addBosByDefault: boolean;
  readonly stripsLeadingSpace: boolean;
  readonly specials: SpecialTokenMatcher;
  /** Encodes plain text (no special tokens in it); `afterSpecial`: at the start or right after a special token. */
  encodeText(text: string, afterSpecial: boolean, out: number[]): void;
}

/** A Tokenizer over an explicit vocabulary; the model-specific part is `encodeText`. */
export class VocabTokenizer implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bos?: number;
  readonly unk?: number;
  readonly eos: ReadonlySet<number>;
  readonly addBosByDefault: boolean;
  readonly stripsLeadingSpace: boolean;

  /** Filled lazily: converting a 150k-token vocabulary up front costs a noticeable part of model load. */
  private readonly bytesCache: (Uint8Array | undefined)[] = [];

  constructor(private readonly parts: VocabTokenizerParts) {
    this.kind = parts.kind;
    this.vocabSize = parts.tokens.length;
    if (parts.bos !== undefined) this.bos = parts.bos;
    if (parts.unk !== undefined) this.unk = parts.unk;
    this.eos = parts.eos;
    this.addBosByDefault = parts.addBosByDefault;
    this.stripsLeadingSpace = parts.stripsLeadingSpace;
  }

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

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    const joiner = new PieceJoiner(this, options.skipSpecial ?? false);
    const bytes: number[] = [];
    for (const id of ids) for (const b of joiner.bytesFor(id)) bytes.push(b);
    return utf8Decode(bytes);
  }

  tokenBytes(id: number): Uint8Array {
    const checked = this.checkId(id);
    return (this.bytesCache[checked] ??= this.parts.tokenBytes(checked));
  }

  tokenText(id: number): string {
    return this.parts.tokens[this.checkId(id)]!;
  }

  isSpecial(id: number): boolean {
    return this.parts.special.has(id);
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new EngineError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`, this.parts.file);
    }
    return id;
  }
}
