// The architecture, dimensions and metadata of real models users download, so test models of the same
// shape can be generated here (see syntheticGguf.ts). Figures from each model's Hugging Face config.json
// and the metadata llama.cpp's convert_hf_to_gguf.py writes for it.
import type { Architecture } from '../model/types';

export interface RealShape {
  /** Short name used on the command line and in file names. */
  readonly id: string;
  /** general.name as llama.cpp writes it. */
  readonly displayName: string;
  readonly basename: string;
  readonly sizeLabel: string;
  readonly architecture: Architecture;
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  /** Rows of token_embd (the embedding table is padded past the tokenizer's vocabulary in Qwen2.5). */
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  readonly tiedEmbeddings: boolean;
  /** Llama 3.x RoPE frequency scaling, written as a rope_freqs.weight tensor as llama.cpp does. */
  readonly llama3Rope?: { readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalContextLength: number };
  /** Which tokenizer package holds the real vocabulary and chat template. */
  readonly tokenizer: 'qwen2_5' | 'llama3';
  readonly license: string;
}

export const REAL_SHAPES: readonly RealShape[] = [
  {
    id: 'qwen2.5-coder-0.5b', displayName: 'Qwen2.5 Coder 0.5B Instruct', basename: 'Qwen2.5-Coder', sizeLabel: '0.5B',
    architecture: 'qwen2', dim: 896, nLayers: 24, nHeads: 14, nKvHeads: 2, headDim: 64, ffnDim: 4864, vocabSize: 151936,
    contextLength: 32768, ropeTheta: 1_000_000, rmsEps: 1e-6, tiedEmbeddings: true, tokenizer: 'qwen2_5', license: 'apache-2.0',
  },
  {
    id: 'qwen2.5-coder-1.5b', displayName: 'Qwen2.5 Coder 1.5B Instruct', basename: 'Qwen2.5-Coder', sizeLabel: '1.5B',
    architecture: 'qwen2', dim: 1536, nLayers: 28, nHeads: 12, nKvHeads: 2, headDim: 128, ffnDim: 8960, vocabSize: 151936,
    contextLength: 32768, ropeTheta: 1_000_000, rmsEps: 1e-6, tiedEmbeddings: true, tokenizer: 'qwen2_5', license: 'apache-2.0',
  },
  {
    id: 'llama-3.2-1b', displayName: 'Llama 3.2 1B Instruct', basename: 'Llama-3.2', sizeLabel: '1B',
    architecture: 'llama', dim: 2048, nLayers: 16, nHeads: 32, nKvHeads: 8, headDim: 64, ffnDim: 8192, vocabSize: 128256,
    contextLength: 131072, ropeTheta: 500_000, rmsEps: 1e-5, tiedEmbeddings: true, tokenizer: 'llama3', license: 'llama3.2',
    llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
  },
];

export function realShape(id: string): RealShape | undefined {
  return REAL_SHAPES.find((s) => s.id === id);
}
