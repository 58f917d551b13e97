// GGUF metadata -> ModelConfig for the architectures the engine runs.
//
// Supported: `llama` (RoPE on adjacent pairs: llama.cpp's converter permutes Q/K rows for that) and
// `qwen2` (NeoX rotate-half RoPE, q/k/v biases). Keys follow llama.cpp's `<arch>.*` names.
// RoPE scaling supported: Llama 3 ("llama3") frequency scaling only. GGUF files from llama.cpp's converter
// carry it as a `rope_freqs.weight` tensor of per-frequency divisors (no scaling-type key); we recover
// factor/low/high/original-context from it by checking it against the llama3 formula (factor = its
// largest value, original context from `<arch>.rope.scaling.original_context_length` or 8192, low/high
// frequency factors 1 and 4 as in every Llama 3.x release) and reject files where that does not
// reproduce the tensor. `<arch>.rope.scaling.type` of linear/yarn is rejected as unsupported.
import type { Architecture, Llama3RopeScaling, ModelConfig, RopeLayout, TensorInfo } from './types';
import { FormatError, UnsupportedError } from '../errors';
import { PackedStrings } from '../util/packedStrings';

const ARCHITECTURES: Record<Architecture, { layout: RopeLayout; qkvBias: boolean }> = {
  llama: { layout: 'adjacent', qkvBias: false },
  qwen2: { layout: 'halves', qkvBias: true },
};

export function isSupportedArchitecture(arch: string): arch is Architecture {
  return Object.prototype.hasOwnProperty.call(ARCHITECTURES, arch);
}

/**
 * Builds the config from GGUF metadata and the tensor table.
 * `ropeFreqs`: the values of `rope_freqs.weight` when the file has that tensor (read by the caller).
 */
export function configFromGguf(
  metadata: Readonly<Record<string, unknown>>,
  tensors: ReadonlyMap<string, TensorInfo>,
  file: string,
  ropeFreqs?: Float32Array,
): ModelConfig {
  const arch = metadata['general.architecture'];
  if (typeof arch !== 'string') throw new FormatError('GGUF metadata has no general.architecture', file);
  if (!isSupportedArchitecture(arch)) {
    throw new UnsupportedError(`architecture "${arch}" is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`, file);
  }
  const num = (key: string, fallback?: number): number => {
    const v = metadata[`${arch}.${key}`];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (v === undefined && fallback !== undefined) return fallback;
    throw new FormatError(`GGUF metadata ${arch}.${key} is ${v === undefined ? 'missing' : `not a number (${JSON.stringify(v)})`}`, file);
  };
  const dim = num('embedding_length');
  const nHeads = num('attention.head_count');
  const nKvHeads = num('attention.head_count_kv', nHeads);
  const headDim = num('attention.key_length', dim / nHeads);
  const embd = tensors.get('token_embd.weight');
  const tokens = metadata['tokenizer.ggml.tokens'];
  const vocabSize = embd?.shape[1] ?? num('vocab_size', Array.isArray(tokens) || tokens instanceof PackedStrings ? tokens.length : undefined);
  const ropeDims = num('rope.dimension_count', headDim);
  if (ropeDims !== headDim) throw new UnsupportedError(`partial RoPE (${arch}.rope.dimension_count ${ropeDims} < head size ${headDim}) is not supported`, file);
  const scalingType = metadata[`${arch}.rope.scaling.type`];
  if (typeof scalingType === 'string' && scalingType !== 'none' && !(scalingType === 'linear' && num('rope.scaling.factor', 1) === 1)) {
    throw new UnsupportedError(`RoPE scaling "${scalingType}" is not supported (only llama3 frequency scaling)`, file);
  }
  const theta = num('rope.freq_base', 10000);
  const scaling = ropeFreqs ? llama3ScalingFromFreqs(ropeFreqs, theta, headDim, num('rope.scaling.original_context_length', 8192), file) : undefined;
  const { layout, qkvBias } = ARCHITECTURES[arch];
  return validated({
    architecture: arch,
    dim,
    nLayers: num('block_count'),
    nHeads,
    nKvHeads,
    headDim,
    ffnDim: num('feed_forward_length'),
    vocabSize,
    contextLength: num('context_length'),
    rmsEps: num('attention.layer_norm_rms_epsilon'),
    rope: scaling ? { theta, layout, scaling } : { theta, layout },
    qkvBias,
    tiedEmbeddings: !tensors.has('output.weight'),
  }, file);
}

/** Hugging Face config.json (LlamaForCausalLM / Qwen2ForCausalLM) -> ModelConfig; weights keep HF's rotate-half layout. */
export function configFromHfJson(json: unknown, file: string, vocabFromWeights?: number): ModelConfig {
  if (typeof json !== 'object' || json === null) throw new FormatError('config.json is not a JSON object', file);
  const c = json as Record<string, unknown>;
  const archs = Array.isArray(c['architectures']) ? (c['architectures'] as unknown[]) : [];
  const modelType = typeof c['model_type'] === 'string' ? c['model_type'] : undefined;
  const arch: Architecture | undefined = archs.includes('LlamaForCausalLM') || modelType === 'llama' ? 'llama'
    : archs.includes('Qwen2ForCausalLM') || modelType === 'qwen2' ? 'qwen2' : undefined;
  if (!arch) {
    throw new UnsupportedError(`architecture ${JSON.stringify(archs[0] ?? modelType ?? 'unknown')} is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM)`, file);
  }
  const num = (key: string, fallback?: number): number => {
    const v = c[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    throw new FormatError(`config.json "${key}" is ${v === undefined ? 'missing' : `not a number (${JSON.stringify(v)})`}`, file);
  };
  const dim = num('hidden_size');
  const nHeads = num('num_attention_heads');
  const headDim = num('head_dim', dim / nHeads);
  const theta = num('rope_theta', 10000);
  const scaling = hfRopeScaling(c['rope_scaling'], file);
  const qkvBias = arch === 'qwen2' || c['attention_bias'] === true;
  return validated({
    architecture: arch,
    dim,
    nLayers: num('num_hidden_layers'),
    nHeads,
    nKvHeads: num('num_key_value_heads', nHeads),
    headDim,
    ffnDim: num('intermediate_size'),
    vocabSize: num('vocab_size', vocabFromWeights),
    contextLength: num('max_position_embeddings'),
    rmsEps: num('rms_norm_eps'),
    rope: scaling ? { theta, layout: 'halves', scaling } : { theta, layout: 'halves' },
    qkvBias,
    tiedEmbeddings: c['tie_word_embeddings'] === true || (c['tie_word_embeddings'] === undefined && arch === 'qwen2'),
  }, file);
}

function hfRopeScaling(value: unknown, file: string): Llama3RopeScaling | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object') throw new FormatError('config.json "rope_scaling" is not an object', file);
  const s = value as Record<string, unknown>;
  const type = s['rope_type'] ?? s['type'];
  if (type === 'default') return undefined;
  if (type !== 'llama3') throw new UnsupportedError(`RoPE scaling ${JSON.stringify(type)} is not supported (only "llama3")`, file);
  const need = (key: string): number => {
    const v = s[key];
    if (typeof v !== 'number') throw new FormatError(`config.json rope_scaling.${key} is missing`, file);
    return v;
  };
  return {
    factor: need('factor'),
    lowFreqFactor: need('low_freq_factor'),
    highFreqFactor: need('high_freq_factor'),
    originalContextLength: need('original_max_position_embeddings'),
  };
}

/** Per-frequency divisors of llama3 scaling (transformers' _compute_llama3_parameters), for headDim/2 frequencies. */
export function llama3FrequencyDivisors(s: Llama3RopeScaling, theta: number, headDim: number): Float64Array {
  const out = new Float64Array(headDim / 2);
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

function llama3ScalingFromFreqs(freqs: Float32Array, theta: number, headDim: number, originalContextLength: number, file: string): Llama3RopeScaling | undefined {
  if (freqs.length !== headDim / 2) throw new FormatError(`rope_freqs.weight has ${freqs.length} values, expected ${headDim / 2}`, file);
  const factor = Math.max(...freqs);
  if (freqs.every((f) => f === 1)) return undefined;
  const candidate: Llama3RopeScaling = { factor, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength };
  const expected = llama3FrequencyDivisors(candidate, theta, headDim);
  for (let i = 0; i < freqs.length; i++) {
    if (Math.abs(freqs[i]! - expected[i]!) > 1e-3 * expected[i]!) {
      throw new UnsupportedError(`rope_freqs.weight does not match llama3 RoPE scaling (factor ${factor}, low 1, high 4, original context ${originalContextLength}) at frequency ${i}: ${freqs[i]} vs ${expected[i]!.toFixed(6)}`, file);
    }
  }
  return candidate;
}

function validated(c: ModelConfig, file: string): ModelConfig {
  const ints: (keyof ModelConfig)[] = ['dim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'ffnDim', 'vocabSize', 'contextLength'];
  for (const k of ints) {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v <= 0) throw new FormatError(`model ${k} must be a positive integer, got ${v}`, file);
  }
  if (c.nHeads % c.nKvHeads !== 0) throw new FormatError(`${c.nHeads} attention heads are not a multiple of ${c.nKvHeads} KV heads`, file);
  if (c.headDim % 2 !== 0) throw new FormatError(`head size ${c.headDim} is odd; RoPE needs pairs`, file);
  if (!(c.rmsEps > 0)) throw new FormatError(`RMS norm epsilon must be positive, got ${c.rmsEps}`, file);
  return c;
}
