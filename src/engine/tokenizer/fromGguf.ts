import { FormatError, UnsupportedError } from '../errors';
import { ByteLevelBpeEncoder } from './bpeEncoder';
import { MergeTable } from './mergeTable';
import { byteLevelToBytes } from './byteLevel';
import { addWellKnownEndTokens } from './endTokens';
import { preTokenizerRegexes, SUPPORTED_PRE_TOKENIZERS } from './preTokenizers';
import { SpecialTokenMatcher, type SpecialTokenEntry } from './specialTokens';
import { SPM_SPACE, SpmEncoder, spmByteValue } from './spmEncoder';
import { StringTable } from './stringTable';
import { PackedStrings } from '../util/packedStrings';
import type { Tokenizer } from './types';
import { utf8Encode } from './utf8';
import { VocabTokenizer } from './vocabTokenizer';

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/**
 * Builds the tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), following llama.cpp:
 * `llama` = SentencePiece BPE with scores, `gpt2` = byte-level BPE with merges and a named
 * pre-tokenizer. `file` is only used to name the file in errors.
 */
export function tokenizerFromGguf(metadata: Record<string, unknown>, file: string): Tokenizer {
  const model = metadata['tokenizer.ggml.model'];
  if (typeof model !== 'string') throw new UnsupportedError('has no tokenizer (tokenizer.ggml.model is missing)', file);
  if (model !== 'llama' && model !== 'gpt2') {
    throw new UnsupportedError(`tokenizer model "${model}" is not supported (supported: llama, gpt2)`, file);
  }
  // The tokenizer holds typed arrays only: no JS string per token or merge (PackedStrings from the GGUF reader).
  const vocab = new StringTable(stringArray(metadata, 'tokenizer.ggml.tokens', file));
  const types = optionalNumberArray(metadata, 'tokenizer.ggml.token_type', vocab.length, file, Int32Array);
  const typeOf = (id: number): number => (types ? types[id]! : TokenType.Normal);
  const idOf = (text: string): number | undefined => {
    const id = vocab.find(text);
    return id >= 0 ? id : undefined;
  };

  const special = new Set<number>();
  const entries: SpecialTokenEntry[] = [];
  for (let id = 0; id < vocab.length; id++) {
    const type = typeOf(id);
    if (type === TokenType.Control || type === TokenType.Unknown) {
      special.add(id);
      entries.push({ text: vocab.get(id), id, always: false });
    } else if (type === TokenType.UserDefined) {
      entries.push({ text: vocab.get(id), id, always: true });
    }
  }

  const bos = optionalId(metadata, 'tokenizer.ggml.bos_token_id', vocab.length);
  // llama.cpp's SentencePiece default: <unk> is id 0 when the file does not say.
  const unk = optionalId(metadata, 'tokenizer.ggml.unknown_token_id', vocab.length) ?? (model === 'llama' && vocab.length > 0 ? 0 : undefined);
  const eos = new Set<number>();
  for (const key of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']) {
    const id = optionalId(metadata, key, vocab.length);
    if (id !== undefined) eos.add(id);
  }
  addWellKnownEndTokens(eos, idOf, (id) => typeOf(id) === TokenType.Control || typeOf(id) === TokenType.UserDefined);
  const addBosKey = metadata['tokenizer.ggml.add_bos_token'];
  const specials = new SpecialTokenMatcher(entries);

  if (model === 'llama') {
    const scores = optionalNumberArray(metadata, 'tokenizer.ggml.scores', vocab.length, file, Float64Array) ?? new Float64Array(vocab.length);
    const byteTokens = new Int32Array(256).fill(-1);
    const byteOf = (id: number): number | undefined => (types === undefined || typeOf(id) === TokenType.Byte ? spmByteValue(vocab.get(id)) : undefined);
    for (let id = 0; id < vocab.length; id++) {
      const b = vocab.get(id).startsWith('<0x') ? byteOf(id) : undefined;
      if (b !== undefined && byteTokens[b] === -1) byteTokens[b] = id;
    }
    const tokenBytes = (id: number): Uint8Array => {
      const b = byteOf(id);
      if (b !== undefined) return Uint8Array.of(b);
      const text = vocab.get(id);
      return utf8Encode(typeOf(id) === TokenType.Normal ? text.replaceAll(SPM_SPACE, ' ') : text);
    };
    const addSpacePrefix = metadata['tokenizer.ggml.add_space_prefix'] !== false;
    const encoder = new SpmEncoder(vocab, scores, byteTokens, unk);
    return new VocabTokenizer({
      kind: 'llama-spm',
      file,
      texts: vocab,
      tokenBytes,
      special,
      bos,
      unk,
      eos,
      addBosByDefault: addBosKey !== false && bos !== undefined,
      stripsLeadingSpace: addSpacePrefix,
      specials,
      encodeText(text, afterSpecial, out) {
        const spaced = addSpacePrefix && afterSpecial ? ' ' + text : text;
        encoder.encode(spaced.replaceAll(' ', SPM_SPACE), out);
      },
    });
  }

  const pre = typeof metadata['tokenizer.ggml.pre'] === 'string' ? (metadata['tokenizer.ggml.pre'] as string) : 'default';
  const pattern = preTokenizerRegexes(pre);
  if (!pattern) {
    throw new UnsupportedError(
      `byte-level BPE pre-tokenizer "${pre}" (tokenizer.ggml.pre) is not supported (supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')})`,
      file,
    );
  }
  const merges = new MergeTable(stringArray(metadata, 'tokenizer.ggml.merges', file), vocab);
  const tokenBytes = (id: number): Uint8Array => {
    const type = typeOf(id);
    const text = vocab.get(id);
    if (type === TokenType.Normal || type === TokenType.Byte) return byteLevelToBytes(text) ?? utf8Encode(text);
    return utf8Encode(text);
  };
  // llama.cpp sets ignore_merges for the Llama 3 pre-tokenizer (its tokenizer.json says so too).
  const ignoreMerges = pre === 'llama-bpe' || pre === 'llama3' || pre === 'llama-v3';
  const encoder = new ByteLevelBpeEncoder(vocab, merges, pattern, ignoreMerges, unk, file);
  return new VocabTokenizer({
    kind: 'gpt2-bpe',
    file,
    texts: vocab,
    tokenBytes,
    special,
    bos,
    eos,
    addBosByDefault: addBosKey === true && bos !== undefined,
    stripsLeadingSpace: false,
    specials,
    encodeText(text, _afterSpecial, out) {
      encoder.encode(text, out);
    },
  });
}

function stringArray(metadata: Record<string, unknown>, key: string, file: string): PackedStrings {
  const v = metadata[key];
  if (v instanceof PackedStrings) return v;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new FormatError(`${key} is missing or not a string array`, file);
  return PackedStrings.from(v as string[]);
}

function optionalNumberArray<T extends Int32Array | Float64Array>(
  metadata: Record<string, unknown>, key: string, length: number, file: string, kind: { from(values: ArrayLike<number>): T },
): T | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  const arr = v as ArrayLike<unknown>;
  if (typeof arr !== 'object' || arr === null || typeof arr.length !== 'number') throw new FormatError(`${key} is not an array`, file);
  if (arr.length !== length) throw new FormatError(`${key} has ${arr.length} entries but there are ${length} tokens`, file);
  return kind.from(Array.from(arr, Number));
}

/** A token id from metadata; absent, -1 or 0xFFFFFFFF ("none") and out-of-range values give undefined. */
function optionalId(metadata: Record<string, unknown>, key: string, vocabSize: number): number | undefined {
  const v = metadata[key];
  if (typeof v !== 'number' && typeof v !== 'bigint') return undefined;
  const id = Number(v);
  return Number.isInteger(id) && id >= 0 && id < vocabSize ? id : undefined;
}
