// Opens a model — one GGUF file, or a Hugging Face folder (config.json + safetensors + tokenizer.json) —
// into config, weight table, tokenizer and identity. Reads headers only; weights are read on demand.
import type { ByteSource, FileSet } from '../io/byteSource';
import type { LoadedModel, ModelConfig, TensorInfo, WeightStore } from './types';
import type { Tokenizer } from '../tokenizer/types';
import { FormatError, UnsupportedError } from '../errors';
import { ConcatByteSource } from '../io/concatByteSource';
import { parseGguf } from './gguf';
import { PackedStrings } from '../util/packedStrings';
import { parseSafetensors, canonicalTensors } from './safetensors';
import { configFromGguf, configFromHfJson } from './config';
import { dequantize } from '../quant/dequantize';
import { Sha256 } from '../util/hash';
import { dataFingerprint } from './fingerprint';
import { tokenizerFromGguf } from '../tokenizer/fromGguf';
import { tokenizerFromHfJson } from '../tokenizer/fromHfJson';

/** Metadata arrays longer than this (vocabularies, merges) are left out of LoadedModel.metadata. */
const METADATA_ARRAY_LIMIT = 64;

export async function loadModel(source: ByteSource | FileSet): Promise<LoadedModel> {
  return 'open' in source ? loadHfFolder(source) : loadGguf(source);
}

export async function loadGguf(source: ByteSource): Promise<LoadedModel> {
  const file = source.name;
  const header = await parseGguf(source);
  const tensors = new Map(header.tensors.map((t) => [t.name, t] as const));
  const weights = weightStore(source, tensors);
  const ropeFreqsInfo = tensors.get('rope_freqs.weight');
  const ropeFreqs = ropeFreqsInfo
    ? dequantize(ropeFreqsInfo.type, await weights.read('rope_freqs.weight'), ropeFreqsInfo.shape[0]!)
    : undefined;
  const config = configFromGguf(header.metadata, tensors, file, ropeFreqs);
  checkTensors(config, tensors, file);
  if (typeof header.metadata['tokenizer.ggml.model'] !== 'string') {
    throw new FormatError('no tokenizer in this GGUF file (metadata tokenizer.ggml.model is missing)', file);
  }
  const tokenizer = tokenizerFromGguf(header.metadata, file);
  checkVocab(config, tokenizer, file);
  const chatTemplate = header.metadata['tokenizer.chat_template'];
  return {
    config,
    weights,
    tokenizer,
    ...(typeof chatTemplate === 'string' ? { chatTemplate } : {}),
    identity: new Sha256().updateText(`gguf\0${source.size}\0`).update(header.headerBytes)
      .updateText(`\0${await dataFingerprint(source, header.dataOffset)}`).hex(),
    name: baseName(file),
    format: 'gguf',
    metadata: withoutLargeArrays(header.metadata),
    source,
  };
}

export async function loadHfFolder(folder: FileSet): Promise<LoadedModel> {
  const dir = folder.name;
  const configJson = await readJson(folder, 'config.json', true);
  const index = await readJson(folder, 'model.safetensors.index.json', false);
  const shardNames = index ? shardList(index.value, `${dir}/model.safetensors.index.json`) : ['model.safetensors'];
  const shards: ByteSource[] = [];
  for (const shard of shardNames) {
    const s = await folder.open(shard);
    if (!s) throw new FormatError(`model weights ${shard} not found in the model folder`, dir);
    shards.push(s);
  }
  const source = shards.length === 1 ? shards[0]! : new ConcatByteSource(dir, shards);
  const hash = new Sha256().updateText(`safetensors\0${source.size}\0`).update(configJson!.bytes);
  const hfTensors = new Map<string, TensorInfo>();
  for (let i = 0; i < shards.length; i++) {
    const base = source instanceof ConcatByteSource ? source.start(i) : 0;
    const h = await parseSafetensors(source, base, shards[i]!.size, shards[i]!.name);
    hash.update(h.headerBytes);
    for (const [k, v] of h.tensors) hfTensors.set(k, v);
  }
  const configFile = `${dir}/config.json`;
  const cj = configJson!.value as Record<string, unknown>;
  const tiedGuess = cj['tie_word_embeddings'] === true || !hfTensors.has('lm_head.weight');
  const tensors = canonicalTensors(hfTensors, tiedGuess, shards[0]!.name);
  const config = configFromHfJson(cj, configFile, tensors.get('token_embd.weight')?.shape[1]);
  if (config.tiedEmbeddings !== tiedGuess) {
    throw new FormatError(`tie_word_embeddings is ${cj['tie_word_embeddings']} but lm_head.weight is ${hfTensors.has('lm_head.weight') ? 'present' : 'missing'}`, configFile);
  }
  checkTensors(config, tensors, shards[0]!.name);

  const tokenizerJson = await readJson(folder, 'tokenizer.json', false);
  if (!tokenizerJson) throw new FormatError('no tokenizer: tokenizer.json not found in the model folder', dir);
  const tokenizerConfig = await readJson(folder, 'tokenizer_config.json', false);
  const tokenizer = tokenizerFromHfJson(tokenizerJson.value, tokenizerConfig?.value, `${dir}/tokenizer.json`);
  checkVocab(config, tokenizer, `${dir}/tokenizer.json`);
  const chatTemplate = hfChatTemplate(tokenizerConfig?.value);
  return {
    config,
    weights: weightStore(source, tensors),
    tokenizer,
    ...(chatTemplate ? { chatTemplate } : {}),
    // The shards' headers are hashed above; the fingerprint covers their data (and headers again, harmlessly).
    identity: hash.updateText(`\0${await dataFingerprint(source, 0)}`).hex(),
    name: baseName(dir),
    format: 'safetensors',
    metadata: withoutLargeArrays(cj),
    source,
  };
}

function weightStore(source: ByteSource, tensors: ReadonlyMap<string, TensorInfo>): WeightStore {
  return {
    tensors,
    async read(name: string): Promise<Uint8Array> {
      const t = tensors.get(name);
      if (!t) throw new FormatError(`no tensor named "${name}"`, source.name);
      return source.read(t.offset, t.byteLength);
    },
    ...(source.readInto ? {
      async readInto(name: string, dst: Uint8Array): Promise<void> {
        const t = tensors.get(name);
        if (!t) throw new FormatError(`no tensor named "${name}"`, source.name);
        if (dst.length > t.byteLength) throw new RangeError(`${name}: ${dst.length} bytes asked of a ${t.byteLength}-byte tensor`);
        await source.readInto!(t.offset, dst);
      },
    } : {}),
  };
}

/** Every tensor the forward pass uses must exist with the shape the config implies (GGML order). */
function checkTensors(c: ModelConfig, tensors: ReadonlyMap<string, TensorInfo>, file: string): void {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const want: [string, number[]][] = [['token_embd.weight', [c.dim, c.vocabSize]], ['output_norm.weight', [c.dim]]];
  if (!c.tiedEmbeddings) want.push(['output.weight', [c.dim, c.vocabSize]]);
  for (let i = 0; i < c.nLayers; i++) {
    const b = `blk.${i}.`;
    want.push(
      [`${b}attn_norm.weight`, [c.dim]], [`${b}attn_q.weight`, [c.dim, q]], [`${b}attn_k.weight`, [c.dim, kv]],
      [`${b}attn_v.weight`, [c.dim, kv]], [`${b}attn_output.weight`, [q, c.dim]], [`${b}ffn_norm.weight`, [c.dim]],
      [`${b}ffn_gate.weight`, [c.dim, c.ffnDim]], [`${b}ffn_up.weight`, [c.dim, c.ffnDim]], [`${b}ffn_down.weight`, [c.ffnDim, c.dim]],
    );
    if (c.qkvBias) want.push([`${b}attn_q.bias`, [q]], [`${b}attn_k.bias`, [kv]], [`${b}attn_v.bias`, [kv]]);
  }
  for (const [name, shape] of want) {
    const t = tensors.get(name);
    if (!t) throw new FormatError(`tensor "${name}" is missing`, file);
    const got = t.shape.length === shape.length + 1 && t.shape[t.shape.length - 1] === 1 ? t.shape.slice(0, -1) : t.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new FormatError(`tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`, file);
    }
    if (shape.length === 1 && (name.includes('norm') || name.endsWith('.bias')) && t.type !== 'F32' && t.type !== 'F16' && t.type !== 'BF16') {
      throw new UnsupportedError(`tensor "${name}" is ${t.type}; norms and biases must be float`, file);
    }
  }
}

function checkVocab(c: ModelConfig, tokenizer: Tokenizer, file: string): void {
  if (tokenizer.vocabSize > c.vocabSize) {
    throw new FormatError(`tokenizer has ${tokenizer.vocabSize} tokens but the embedding table only ${c.vocabSize} rows`, file);
  }
}

async function readJson(folder: FileSet, name: string, required: boolean): Promise<{ value: unknown; bytes: Uint8Array } | undefined> {
  const s = await folder.open(name);
  if (!s) {
    if (required) throw new FormatError(`${name} not found in the model folder`, folder.name);
    return undefined;
  }
  const bytes = await s.read(0, s.size);
  try {
    return { value: JSON.parse(new TextDecoder().decode(bytes)) as unknown, bytes };
  } catch (err) {
    throw new FormatError(`not valid JSON (${(err as Error).message})`, s.name);
  }
}

function shardList(index: unknown, file: string): string[] {
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (typeof map !== 'object' || map === null) throw new FormatError('has no weight_map', file);
  const names = [...new Set(Object.values(map as Record<string, unknown>))];
  if (!names.every((n): n is string => typeof n === 'string' && !n.includes('..'))) throw new FormatError('weight_map has invalid file names', file);
  return names.sort();
}

function hfChatTemplate(tokenizerConfig: unknown): string | undefined {
  const t = (tokenizerConfig as { chat_template?: unknown } | undefined)?.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const def = named.find((x) => x.name === 'default') ?? named[0];
    return typeof def?.template === 'string' ? def.template : undefined;
  }
  return undefined;
}

function withoutLargeArrays(metadata: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!((Array.isArray(v) || v instanceof PackedStrings) && v.length > METADATA_ARRAY_LIMIT)) out[k] = v;
  }
  return out;
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}
