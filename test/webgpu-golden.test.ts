// The WebGPU backend through the whole forward pass against the float64 oracle (../shared/golden):
// the same assertions as the CPU reference (greedy ids from BOS for every test model, stories260K's
// top-5 logits at the first 8 positions). Runs on SwiftShader where there is no GPU.
// Then the kernels a real GPU gets ('gpu' tuning: register-tiled matmul, tiled attention, subgroup GEMV where
// the adapter has subgroups), which the emulated tuning never picks: a long prompt whose prefill runs the tiled
// kernels, continued greedily (decode: subgroup GEMV), against the same golden ids. (The whole golden suite
// under 'gpu' tuning passes too, but takes 2.5 minutes on SwiftShader, whose barriers are slow.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../src/node/createBackend';
import { greedyIds, loadTransformer, registerGoldenTests } from './support/goldenSuite';
import { readGolden } from './support/paths';

registerGoldenTests('webgpu', () => createBackend('webgpu'));

test('webgpu (gpu tuning): a 48-token prompt (tiled prefill) continues with the golden greedy ids', async () => {
  const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
  const variants = readGolden<{ greedy_from_bos_ids: Record<string, number[]> }>('story_variants.golden.json').greedy_from_bos_ids;
  const backend = await createBackend('webgpu', { tuning: 'gpu' });
  try {
    for (const [file, ids] of [['stories260K.gguf', golden], ['story_llama_q8_0.gguf', variants['story_llama_q8_0.gguf']!]] as const) {
      const t = await loadTransformer(file, backend);
      const prompt = 48;
      const rest = await greedyIds(t, ids.slice(0, prompt), ids.length - prompt);
      assert.deepEqual(rest, ids.slice(prompt), `${file}: greedy after a ${prompt}-token prompt`);
    }
  } finally {
    backend.destroy();
  }
});
