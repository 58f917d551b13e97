import { EngineError } from '../errors';
import { PieceJoiner } from './pieceJoiner';
import type { EncodeOptions, Tokenizer, TokenizerKind } from './types';
import { utf8Decode } from './utf8';

/** A vocabulary's token texts by id (a StringTable, or an array's view). */
export interface TokenTexts {
  readonly length: number;
  get(id: number): string;
}

/** What every vocabulary-backed tokenizer knows about its tokens; encoding is left to the subclass. */
export interface BaseTokenizerParts {
  readonly kind: TokenizerKind;
  readonly file: string;
  /** Token text as stored, by id. */
  readonly texts: TokenTexts;
  /** Raw bytes an id decodes to (special tokens: their text); called once per id, on first use. */
  tokenBytes(id: number): Uint8Array;
  /** Ids dropped by decode(skipSpecial) and that reset the leading-space rule. */
  readonly special: ReadonlySet<number>;
  readonly bos?: number;
  readonly unk?: number;
  readonly eos: ReadonlySet<number>;
  readonly addBosByDefault: boolean;
  readonly stripsLeadingSpace: boolean;
}

/**
 * Decoding and token lookup over an explicit vocabulary, shared by the GGUF and tokenizer.json
 * tokenizers: decode() goes through the per-token bytes so that it and the stream decoder agree byte for byte.
 */
export abstract class BaseTokenizer<P extends BaseTokenizerParts> implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bos?: number;
  readonly unk?: number;
  readonly eos: ReadonlySet<number>;
  readonly addBosByDefault: boolean;
  readonly stripsLeadingSpace: boolean;

  /** Filled lazily: converting a 150k-token vocabulary up front costs a noticeable part of model load. */
  private readonly bytesCache: (Uint8Array | undefined)[] = [];

  constructor(protected readonly parts: P) {
    this.kind = parts.kind;
    this.vocabSize = parts.texts.length;
    if (parts.bos !== undefined) this.bos = parts.bos;
    if (parts.unk !== undefined) this.unk = parts.unk;
    this.eos = parts.eos;
    this.addBosByDefault = parts.addBosByDefault;
    this.stripsLeadingSpace = parts.stripsLeadingSpace;
  }

  abstract encode(text: string, options?: EncodeOptions): number[];

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
    return this.parts.texts.get(this.checkId(id));
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
