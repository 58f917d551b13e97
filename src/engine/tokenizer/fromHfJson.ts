import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError, UnsupportedError } from '../errors';
import { BaseTokenizer, type BaseTokenizerParts } from './baseTokenizer';
import { byteLevelToBytes } from './byteLevel';
import { SPM_SPACE, spmByteValue } from './spmEncoder';
import { addWellKnownEndTokens } from './endTokens';
import type { EncodeOptions, Tokenizer } from './types';
import { utf8Encode } from './utf8';

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerJson {
  model: { type?: string; vocab?: Record<string, number> };
  added_tokens?: AddedTokenJson[];
  decoder?: unknown;
  post_processor?: unknown;
  [key: string]: unknown;
}

/**
 * Wraps a Hugging Face tokenizer.json (BPE models) in our Tokenizer interface. Encoding is done by
 * @huggingface/tokenizers; decoding is ours (from per-token bytes) so that decode() and the stream
 * decoder agree byte for byte. BOS comes from the post-processor template (or tokenizer_config's
 * add_bos_token/bos_token); EOS from tokenizer_config's eos_token plus well-known end tokens.
 * An EOS the post-processor would append is not added (prompts never end with EOS).
 */
export function tokenizerFromHfJson(tokenizerJson: unknown, tokenizerConfig: unknown | undefined, file: string): Tokenizer {
  const json = tokenizerJson as TokenizerJson;
  if (typeof json !== 'object' || json === null || typeof json.model !== 'object' || json.model === null) {
    throw new FormatError('is not a tokenizer.json (no "model" object)', file);
  }
  if (json.model.type !== 'BPE') {
    throw new UnsupportedError(`tokenizer model type "${String(json.model.type)}" is not supported (supported: BPE)`, file);
  }
  const config = (typeof tokenizerConfig === 'object' && tokenizerConfig !== null ? tokenizerConfig : {}) as Record<string, unknown>;
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  let withSpecial: HfTokenizer;
  try {
    withSpecial = new HfTokenizer({ ...json, added_tokens: added }, config);
  } catch (e) {
    throw new UnsupportedError(`cannot be loaded by @huggingface/tokenizers: ${(e as Error).message}`, file);
  }
  // Variants, built on first use: parseSpecial=false drops the special added tokens so their text is
  // spelled out like any other text; addSpacePrefix=false drops the normalizer's Prepend("\u2581")
  // (and Metaspace's prepend) so continued text gets no dummy-prefix space.
  const variants = new Map<string, HfTokenizer>([['1,1', withSpecial]]);
  const changedBy = (node: unknown): boolean => JSON.stringify(withoutPrepend(node) ?? null) !== JSON.stringify(node ?? null);
  const hasPrepend = changedBy(json['normalizer']) || changedBy(json['pre_tokenizer']);
  const variant = (parseSpecial: boolean, wantsPrefix: boolean): HfTokenizer => {
    // Byte-level vocabularies have no dummy prefix: don't build a second copy that would be identical.
    const spacePrefix = wantsPrefix || !hasPrepend;
    const key = `${Number(parseSpecial)},${Number(spacePrefix)}`;
    let t = variants.get(key);
    if (!t) {
      const changed: TokenizerJson = { ...json, added_tokens: parseSpecial ? added : added.filter((a) => !a.special) };
      if (!spacePrefix) {
        changed['normalizer'] = withoutPrepend(json['normalizer']);
        changed['pre_tokenizer'] = withoutPrepend(json['pre_tokenizer']);
      }
      t = new HfTokenizer(changed, config);
      variants.set(key, t);
    }
    return t;
  };

  const tokens: string[] = [];
  for (const [text, id] of Object.entries(json.model.vocab ?? {})) tokens[id] = text;
  for (const t of added) tokens[t.id] = t.content;
  for (let i = 0; i < tokens.length; i++) tokens[i] ??= '';
  const tokenToId = new Map<string, number>();
  tokens.forEach((t, id) => tokenToId.set(t, id));
  const special = new Set(added.filter((t) => t.special).map((t) => t.id));
  const addedIds = new Set(added.map((t) => t.id));

  const decoderTypes = componentTypes(json.decoder);
  const byteLevel = decoderTypes.some((d) => d.type === 'ByteLevel');
  const spmLike = decoderTypes.some((d) => d.type === 'ByteFallback' || d.type === 'Metaspace' || (d.type === 'Replace' && JSON.stringify(d).includes('\u2581')));
  const stripsLeadingSpace = decoderTypes.some(
    (d) => (d.type === 'Strip' && d['content'] === ' ' && Number(d['start']) >= 1) || (d.type === 'Metaspace' && d['prepend_scheme'] !== 'never' && d['add_prefix_space'] !== false),
  );
  const tokenBytes = (id: number): Uint8Array => {
    const text = tokens[id]!;
    if (addedIds.has(id)) return utf8Encode(text);
    if (byteLevel) return byteLevelToBytes(text) ?? utf8Encode(text);
    if (spmLike) {
      const byte = spmByteValue(text);
      return byte !== undefined ? Uint8Array.of(byte) : utf8Encode(text.replaceAll(SPM_SPACE, ' '));
    }
    return utf8Encode(text);
  };

  const idOf = (token: unknown): number | undefined => {
    const text = typeof token === 'string' ? token : typeof token === 'object' && token !== null ? (token as { content?: unknown }).content : undefined;
    return typeof text === 'string' ? tokenToId.get(text) : undefined;
  };
  const templateBos = bosFromPostProcessor(json.post_processor, tokenToId);
  const bos = templateBos ?? idOf(config['bos_token']);
  const addBosByDefault = bos !== undefined && (templateBos !== undefined || config['add_bos_token'] === true);
  const eos = new Set<number>();
  const configEos = idOf(config['eos_token']);
  if (configEos !== undefined) eos.add(configEos);
  addWellKnownEndTokens(eos, (t) => tokenToId.get(t), (id) => special.has(id));

  const unkToken = (json.model as { unk_token?: unknown }).unk_token;
  const unk = typeof unkToken === 'string' ? tokenToId.get(unkToken) : undefined;
  return new HfJsonTokenizer({
    kind: 'hf-json',
    file,
    texts: { length: tokens.length, get: (id) => tokens[id]! },
    tokenBytes,
    special,
    bos,
    unk,
    eos,
    addBosByDefault,
    stripsLeadingSpace,
    encodeText: (text, parseSpecial, spacePrefix) => variant(parseSpecial, spacePrefix).encode(text, { add_special_tokens: false }).ids,
  });
}

interface HfJsonParts extends BaseTokenizerParts {
  encodeText(text: string, parseSpecial: boolean, spacePrefix: boolean): number[];
}

class HfJsonTokenizer extends BaseTokenizer<HfJsonParts> {
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if ((options.addBos ?? true) && this.addBosByDefault && this.bos !== undefined) out.push(this.bos);
    if (text.length > 0) out.push(...this.parts.encodeText(text, options.parseSpecial ?? true, options.addSpacePrefix ?? true));
    return out;
  }
}

type Component = { type?: string; [key: string]: unknown };

/** A normalizer / pre-tokenizer with SentencePiece's dummy-prefix step removed (Prepend U+2581, Metaspace prepend). */
function withoutPrepend(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  const c = node as Component;
  if (c.type === 'Prepend') return null;
  if (c.type === 'Metaspace') return { ...c, prepend_scheme: 'never', add_prefix_space: false };
  for (const key of ['normalizers', 'pretokenizers']) {
    const children = c[key];
    if (Array.isArray(children)) return { ...c, [key]: children.map(withoutPrepend).filter((x) => x !== null) };
  }
  return c;
}

/** A decoder/processor and, for Sequence, its members, flattened. */
function componentTypes(node: unknown): Component[] {
  if (typeof node !== 'object' || node === null) return [];
  const c = node as Component;
  const children = (c['decoders'] ?? c['processors'] ?? c['pretokenizers'] ?? c['normalizers']) as unknown;
  return [c, ...(Array.isArray(children) ? children.flatMap(componentTypes) : [])];
}

/** BOS id when the post-processor template starts with a special token (Llama, story_hf). */
function bosFromPostProcessor(node: unknown, tokenToId: ReadonlyMap<string, number>): number | undefined {
  for (const c of componentTypes(node)) {
    if (c.type !== 'TemplateProcessing' || !Array.isArray(c['single'])) continue;
    const first = (c['single'] as Array<{ SpecialToken?: { id?: string } }>)[0];
    const name = first?.SpecialToken?.id;
    if (typeof name !== 'string') return undefined;
    const specialTokens = c['special_tokens'] as Record<string, { ids?: number[] }> | undefined;
    return specialTokens?.[name]?.ids?.[0] ?? tokenToId.get(name);
  }
  return undefined;
}
