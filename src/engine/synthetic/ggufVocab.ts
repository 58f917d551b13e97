// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) as the `tokenizer.ggml.*`
// metadata llama.cpp's convert_hf_to_gguf.py writes for it (get_vocab_base / _set_vocab_gpt2):
// tokens by id, padded with "[PAD<id>]" (UNUSED) up to the embedding rows; added tokens CONTROL when special
// or when they look special (<|...|>), else USER_DEFINED; merges as "a b" strings.
import { FormatError } from '../errors';
import type { GgufValue } from '../model/gguf';

/** llama.cpp's llama_token_type. */
const NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5;

export interface HfTokenizerFiles {
  readonly tokenizer: unknown;
  readonly config: unknown;
}

export interface GgufVocabOptions {
  /** Rows of the embedding table (token list length). */
  readonly vocabSize: number;
  /** tokenizer.ggml.pre, e.g. "qwen2" or "llama-bpe". */
  readonly pre: string;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken?: string;
  readonly addBos: boolean;
  /** Used to name the source in errors. */
  readonly file: string;
}

interface AddedToken { id: number; content: string; special?: boolean }

function looksSpecial(text: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text) || (text.startsWith('<|') && text.endsWith('|>'))
    || (text.startsWith('<unused') && text.endsWith('>'));
}

export function ggufVocabFromHf(files: HfTokenizerFiles, o: GgufVocabOptions): Record<string, GgufValue> {
  const tok = files.tokenizer as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | string[])[] }; added_tokens?: AddedToken[] };
  const config = files.config as { chat_template?: unknown };
  if (tok.model?.type !== 'BPE' || !tok.model.vocab || !tok.model.merges) throw new FormatError('not a byte-level BPE tokenizer.json', o.file);
  const tokens: string[] = new Array<string>(o.vocabSize);
  const types: number[] = new Array<number>(o.vocabSize);
  for (let i = 0; i < o.vocabSize; i++) { tokens[i] = `[PAD${i}]`; types[i] = UNUSED; }
  const place = (id: number, text: string, type: number): void => {
    if (id >= o.vocabSize) throw new FormatError(`token ${id} (${JSON.stringify(text)}) is past the ${o.vocabSize} embedding rows`, o.file);
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(tok.model.vocab)) place(id, text, NORMAL);
  for (const a of tok.added_tokens ?? []) place(a.id, a.content, a.special || looksSpecial(a.content) ? CONTROL : USER_DEFINED);
  const idOf = (text: string): number => {
    const id = tokens.indexOf(text);
    if (id < 0) throw new FormatError(`token ${JSON.stringify(text)} is not in the vocabulary`, o.file);
    return id;
  };
  if (typeof config.chat_template !== 'string') throw new FormatError('tokenizer_config.json has no chat_template', o.file);
  const meta: Record<string, GgufValue> = {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': o.pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': tok.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
    'tokenizer.ggml.bos_token_id': idOf(o.bosToken),
    'tokenizer.ggml.eos_token_id': idOf(o.eosToken),
  };
  if (o.padToken) meta['tokenizer.ggml.padding_token_id'] = idOf(o.padToken);
  meta['tokenizer.ggml.add_bos_token'] = o.addBos;
  meta['tokenizer.chat_template'] = config.chat_template;
  return meta;
}
