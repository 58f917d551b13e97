// A GGUF with a real model's architecture, tensor names, shapes, llama.cpp Q4_K_M type mix and metadata,
// a real vocabulary and chat template, and seeded random weights: a stand-in for the file a user
// downloads, made here without downloading it. The weights are not trained: answers are gibberish, but
// every shape, type, kernel path and memory figure is that of the real file.
//
// Weights: for each (type, scale) a pool of 512 blocks is quantized by our own quantizer from seeded
// Gaussian values of that standard deviation, and each tensor is filled with blocks drawn from its pool by
// a seeded PRNG (quantizing a billion values one by one would take many minutes; drawing takes seconds).
// So every block is a genuine quantization of Gaussian weights at the stated scale, and the same seed gives
// the same bytes. 1-D tensors (norms, biases) are F32 drawn directly; rope_freqs holds llama3's divisors.
import { llama3FrequencyDivisors } from '../model/config';
import { ValueType, type GgufValue, type GgufValueType } from '../model/gguf';
import type { TensorType } from '../model/types';
import { createRandom } from '../runtime/random';
import { bytesFor, TENSOR_FORMATS } from '../quant/formats';
import type { GgufTensorToWrite, GgufToWrite } from '../quant/ggufWriter';
import { quantize } from '../quant/quantize';
import { q4KMType } from '../quant/typeMix';
import type { RealShape } from './realShapes';

/** llama_ftype LLAMA_FTYPE_MOSTLY_Q4_K_M. */
const FILE_TYPE_Q4_K_M = 15;
const POOL_BLOCKS = 512;

/** Standard deviations of the generated weights, near those of the trained models (about 0.02 for matrices). */
const SCALE = { embedding: 0.02, matrix: 0.02, bias: 0.05, norm: 0.05 };

interface TensorPlan {
  readonly name: string;
  readonly shape: number[];
  /** Matrices: std of the weights; 1-D: std around `mean`. */
  readonly std: number;
  readonly mean?: number;
  /** Exact values (rope_freqs). */
  readonly values?: Float32Array;
}

/** The tensors of `s` in the order llama.cpp's converter writes them (GGML shapes: row length first). */
function tensorPlan(s: RealShape): TensorPlan[] {
  const q = s.nHeads * s.headDim, kv = s.nKvHeads * s.headDim;
  const out: TensorPlan[] = [{ name: 'token_embd.weight', shape: [s.dim, s.vocabSize], std: SCALE.embedding }];
  if (s.llama3Rope) {
    out.push({ name: 'rope_freqs.weight', shape: [s.headDim / 2], std: 0, values: Float32Array.from(llama3FrequencyDivisors(s.llama3Rope, s.ropeTheta, s.headDim)) });
  }
  const bias = s.architecture === 'qwen2';
  for (let l = 0; l < s.nLayers; l++) {
    const p = `blk.${l}.`;
    out.push({ name: `${p}attn_norm.weight`, shape: [s.dim], std: SCALE.norm, mean: 1 });
    out.push({ name: `${p}attn_q.weight`, shape: [s.dim, q], std: SCALE.matrix });
    if (bias) out.push({ name: `${p}attn_q.bias`, shape: [q], std: SCALE.bias });
    out.push({ name: `${p}attn_k.weight`, shape: [s.dim, kv], std: SCALE.matrix });
    if (bias) out.push({ name: `${p}attn_k.bias`, shape: [kv], std: SCALE.bias });
    out.push({ name: `${p}attn_v.weight`, shape: [s.dim, kv], std: SCALE.matrix });
    if (bias) out.push({ name: `${p}attn_v.bias`, shape: [kv], std: SCALE.bias });
    out.push({ name: `${p}attn_output.weight`, shape: [q, s.dim], std: SCALE.matrix });
    out.push({ name: `${p}ffn_norm.weight`, shape: [s.dim], std: SCALE.norm, mean: 1 });
    out.push({ name: `${p}ffn_gate.weight`, shape: [s.dim, s.ffnDim], std: SCALE.matrix });
    out.push({ name: `${p}ffn_up.weight`, shape: [s.dim, s.ffnDim], std: SCALE.matrix });
    out.push({ name: `${p}ffn_down.weight`, shape: [s.ffnDim, s.dim], std: SCALE.matrix });
  }
  out.push({ name: 'output_norm.weight', shape: [s.dim], std: SCALE.norm, mean: 1 });
  if (!s.tiedEmbeddings) out.push({ name: 'output.weight', shape: [s.dim, s.vocabSize], std: SCALE.matrix });
  return out;
}

function gaussians(n: number, std: number, mean: number, rand: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rand() + 1e-12)), a = 2 * Math.PI * rand();
    x[i] = mean + std * r * Math.cos(a);
    if (i + 1 < n) x[i + 1] = mean + std * r * Math.sin(a);
  }
  return x;
}

/** The tensor types of the Q4_K_M file for `s`, by tensor name (what `make-model` writes). */
export function q4KMTypes(s: RealShape): Map<string, TensorType> {
  return new Map(tensorPlan(s).map((t) => [t.name, q4KMType(t, s.nLayers, s.tiedEmbeddings)]));
}

/**
 * The GGUF to write for `s` (hand it to writeGguf). `vocab` is the tokenizer metadata (ggufVocabFromHf);
 * tensor bytes are produced one tensor at a time as the writer asks for them.
 */
export function syntheticQ4KMGguf(s: RealShape, vocab: Record<string, GgufValue>, seed: number): GgufToWrite {
  const a = s.architecture;
  const metadata: Record<string, GgufValue> = {
    'general.architecture': a,
    'general.type': 'model',
    'general.name': s.displayName,
    'general.finetune': 'Instruct',
    'general.basename': s.basename,
    'general.size_label': s.sizeLabel,
    'general.license': s.license,
    'general.description': `synthetic: ${s.displayName} Q4_K_M shapes, types and metadata with seeded random weights (seed ${seed}); not a trained model`,
    [`${a}.block_count`]: s.nLayers,
    [`${a}.context_length`]: s.contextLength,
    [`${a}.embedding_length`]: s.dim,
    [`${a}.feed_forward_length`]: s.ffnDim,
    [`${a}.attention.head_count`]: s.nHeads,
    [`${a}.attention.head_count_kv`]: s.nKvHeads,
    [`${a}.rope.freq_base`]: s.ropeTheta,
    [`${a}.attention.layer_norm_rms_epsilon`]: s.rmsEps,
  };
  if (a === 'llama') {
    Object.assign(metadata, {
      'llama.attention.key_length': s.headDim, 'llama.attention.value_length': s.headDim,
      'llama.vocab_size': s.vocabSize, 'llama.rope.dimension_count': s.headDim,
    });
  }
  metadata['general.file_type'] = FILE_TYPE_Q4_K_M;
  Object.assign(metadata, vocab);
  metadata['general.quantization_version'] = 2;
  const metadataTypes: Record<string, GgufValueType> = {
    'tokenizer.ggml.token_type': { type: ValueType.ARRAY, itemType: ValueType.I32 },
    [`${a}.rope.freq_base`]: { type: ValueType.F32 },
    [`${a}.attention.layer_norm_rms_epsilon`]: { type: ValueType.F32 },
  };

  const pools = new Map<string, Uint8Array>();
  const pool = (type: TensorType, std: number): Uint8Array => {
    const key = `${type}:${std}`;
    let p = pools.get(key);
    if (!p) {
      const values = POOL_BLOCKS * TENSOR_FORMATS[type].blockSize;
      p = quantize(type, gaussians(values, std, 0, createRandom((seed ^ hash(key)) >>> 0)));
      pools.set(key, p);
    }
    return p;
  };

  const tensors: GgufTensorToWrite[] = tensorPlan(s).map((t, index) => {
    const type = q4KMType(t, s.nLayers, s.tiedEmbeddings);
    return {
      name: t.name,
      type,
      shape: t.shape,
      data: async (): Promise<Uint8Array> => {
        const count = t.shape.reduce((x, y) => x * y, 1);
        const rand = createRandom((seed * 7919 + index) >>> 0);
        if (t.values) return new Uint8Array(t.values.buffer);
        if (type === 'F32') return new Uint8Array(gaussians(count, t.std, t.mean ?? 0, rand).buffer);
        const src = pool(type, t.std);
        const bpb = TENSOR_FORMATS[type].bytesPerBlock;
        const out = new Uint8Array(bytesFor(type, count));
        for (let at = 0; at < out.byteLength; at += bpb) {
          const from = Math.floor(rand() * POOL_BLOCKS) * bpb;
          out.set(src.subarray(from, from + bpb), at);
        }
        return out;
      },
    };
  });
  return { metadata, metadataTypes, tensors };
}

/** FNV-1a of a short string: a per-pool seed offset. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
