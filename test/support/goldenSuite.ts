// Golden-output checks of the whole forward pass, parameterized by backend so the CPU reference
// and WebGPU run the same assertions: greedy ids from BOS against the float64 numpy oracle in
// ../shared/golden, and stories260K's top-5 logits at the first 8 positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../../src/engine/backend/cpu/cpuBackend';
import type { Backend } from '../../src/engine/backend/types';
import { generate } from '../../src/engine/runtime/generate';
import { Transformer } from '../../src/engine/runtime/transformer';
import { openModel } from '../../src/node/openModel';
import { modelPath, readGolden } from './paths';

interface StoriesGolden {
  greedy_from_bos_ids: number[];
  logits_top5_first8_positions_of_greedy_sequence: [number, number][][];
}
interface VariantsGolden {
  greedy_from_bos_ids: Record<string, number[]>;
}

/** Greedy ids after `prompt`, exactly `steps` of them (no stop ids: the oracle ran a fixed count). */
export async function greedyIds(transformer: Transformer, prompt: number[], steps: number): Promise<number[]> {
  const out: number[] = [];
  for await (const id of generate(transformer, prompt, { maxTokens: steps, temperature: 0, stopIds: new Set() })) out.push(id);
  return out;
}

/** Uploads a shared test model's weights to `backend` (the file is closed again once they are). */
export async function loadTransformer(file: string, backend: Backend): Promise<Transformer> {
  const model = await openModel(modelPath(file));
  try {
    return await Transformer.create(model, backend);
  } finally {
    await model.close();
  }
}

export interface GoldenOptions {
  /**
   * For a backend that rounds activations (the WebAssembly `cpu` quantizes them to 8 bits, as llama.cpp does): where
   * its greedy ids leave the golden ones, the reference (`cpu-ref`), fed the golden prefix, must rank the two ids
   * within this many logits of each other there: a near tie that rounding may flip, not a wrong forward.
   */
  readonly nearTie?: number;
}

/** Reference logits of the next token after `prefix` (the JS CPU backend, teacher-forced). */
async function referenceLogits(file: string, prefix: number[]): Promise<Float32Array> {
  const backend = new CpuBackend();
  try {
    const t = await loadTransformer(file, backend);
    const cache = t.newCache(prefix.length);
    const out = await t.forward(Int32Array.from(prefix), Int32Array.from(prefix, (_, i) => i), cache, { logits: 'last' });
    return await backend.readAct(out!);
  } finally {
    backend.destroy();
  }
}

export function registerGoldenTests(label: string, makeBackend: () => Promise<Backend>, options: GoldenOptions = {}): void {
  const checkGreedy = async (file: string, golden: number[]) => {
    const backend = await makeBackend();
    let ids: number[];
    try {
      const t = await loadTransformer(file, backend);
      ids = [golden[0]!, ...(await greedyIds(t, golden.slice(0, 1), golden.length - 1))];
    } finally {
      backend.destroy();
    }
    const at = ids.findIndex((id, i) => id !== golden[i]);
    if (at < 0 || options.nearTie === undefined) {
      assert.deepEqual(ids, golden, `${file} on ${label}`);
      return;
    }
    const logits = await referenceLogits(file, golden.slice(0, at));
    const gap = logits[golden[at]!]! - logits[ids[at]!]!;
    assert.ok(gap >= 0 && gap <= options.nearTie,
      `${file} on ${label}: leaves the golden ids at token ${at} (${ids[at]} for ${golden[at]}), reference logit gap ${gap} > ${options.nearTie}`);
  };

  const stories = readGolden<StoriesGolden>('stories260K.golden.json');
  test(`${label}: stories260K.gguf greedy from BOS matches golden (64 tokens)`, () =>
    checkGreedy('stories260K.gguf', stories.greedy_from_bos_ids));

  test(`${label}: story_hf/ (safetensors, rotate-half RoPE) greedy matches golden`, () =>
    checkGreedy('story_hf', readGolden<{ greedy_from_bos_ids: number[] }>('story_hf.golden.json').greedy_from_bos_ids));

  const variants = readGolden<VariantsGolden>('story_variants.golden.json').greedy_from_bos_ids;
  for (const file of ['story_llama_f32.gguf', 'story_llama_q8_0.gguf', 'story_qwen2.gguf']) {
    test(`${label}: ${file} greedy matches golden`, () => checkGreedy(file, variants[file]!));
  }

  test(`${label}: stories260K.gguf logits at the first 8 positions are within 1e-3 of golden top-5`, async () => {
    const backend = await makeBackend();
    try {
      const t = await loadTransformer('stories260K.gguf', backend);
      const expected = stories.logits_top5_first8_positions_of_greedy_sequence;
      const n = expected.length;
      const ids = Int32Array.from(stories.greedy_from_bos_ids.slice(0, n));
      const positions = Int32Array.from({ length: n }, (_, i) => i);
      const cache = t.newCache(n);
      const logits = await backend.readAct((await t.forward(ids, positions, cache, { logits: 'all' }))!);
      const vocab = t.config.vocabSize;
      for (let p = 0; p < n; p++) {
        const row = logits.subarray(p * vocab, (p + 1) * vocab);
        const top = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]!).slice(0, 5);
        assert.deepEqual(top, expected[p]!.map(([id]) => id), `top-5 ids at position ${p}`);
        for (const [id, value] of expected[p]!) {
          assert.ok(Math.abs(row[id]! - value) < 1e-3, `logit of ${id} at position ${p}: ${row[id]} vs golden ${value}`);
        }
      }
    } finally {
      backend.destroy();
    }
  });
}
