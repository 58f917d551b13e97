// A quantized stories260K keeps the F32 model's choices: for each type, our quantizer writes a GGUF (in memory),
// the engine loads it like any file, and its argmax is compared with the golden greedy continuation (which the
// F32 model reproduces exactly) at each of 64 positions, teacher-forced so one miss does not cascade.
// stories260K rows are 64 wide (ffn_down: 172): K-quants need 256, so they take llama.cpp's fallbacks (Q2_K/Q3_K ->
// Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), and 172 is not even a multiple of 32, so ffn_down falls back to
// F16 in every block type.
// The plan says so and the test checks it. K-quant blocks are covered by the quant and GPU op tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { MemoryByteSource } from '../src/engine/io/byteSource';
import { parseGguf } from '../src/engine/model/gguf';
import { loadModel } from '../src/engine/model/loadModel';
import type { TensorType } from '../src/engine/model/types';
import { encodeGguf } from '../src/engine/quant/ggufWriter';
import { quantizedGguf } from '../src/engine/quant/quantizeModel';
import { Transformer } from '../src/engine/runtime/transformer';
import { FileByteSource } from '../src/node/fileByteSource';
import { modelPath, readGolden } from './support/paths';

const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
const STEPS = 64;

async function agreement(target: TensorType): Promise<{ agree: number; fallbacks: string[] }> {
  const file = await FileByteSource.open(modelPath('stories260K.gguf'));
  try {
    const { spec, plan } = quantizedGguf(file, await parseGguf(file), target);
    const bytes = await encodeGguf(spec);
    const model = await loadModel(new MemoryByteSource(`stories260K.${target}.gguf`, bytes));
    const t = await Transformer.create(model, new CpuBackend());
    const ids = Int32Array.from(golden.slice(0, STEPS));
    const cache = t.newCache(STEPS);
    const logits = await t.backend.argmax((await t.forward(ids, Int32Array.from(ids, (_, i) => i), cache, { logits: 'all' }))!);
    let agree = 0;
    for (let i = 0; i < STEPS; i++) if (logits[i] === golden[i + 1]) agree++;
    t.dispose();
    const fallbacks = [...new Set(plan.filter((p) => p.fallbackFrom).map((p) => `${p.fallbackFrom}->${p.to}`))];
    return { agree: agree / STEPS, fallbacks };
  } finally {
    await file.close();
  }
}

const floors: [TensorType, number, string[]][] = [
  ['F32', 1, []],
  ['F16', 0.9, []],
  ['BF16', 0.9, []],
  ['Q8_0', 0.9, ['Q8_0->F16']],
  ['Q6_K', 0.9, ['Q6_K->Q8_0', 'Q6_K->F16']],
  ['Q5_1', 0.8, ['Q5_1->F16']],
  ['Q5_0', 0.8, ['Q5_0->F16']],
  ['Q5_K', 0.8, ['Q5_K->Q5_1', 'Q5_K->F16']],
  ['Q4_1', 0.6, ['Q4_1->F16']],
  ['Q4_0', 0.6, ['Q4_0->F16']],
  ['Q4_K', 0.8, ['Q4_K->Q5_0', 'Q4_K->F16']],
  ['Q3_K', 0.6, ['Q3_K->Q4_0', 'Q3_K->F16']],
  ['Q2_K', 0.6, ['Q2_K->Q4_0', 'Q2_K->F16']],
];

for (const [type, floor, fallbacks] of floors) {
  test(`stories260K quantized to ${type}: top-1 agreement with the F32 greedy path over ${STEPS} steps >= ${floor}`, async (t) => {
    const r = await agreement(type);
    t.diagnostic(`${type}: top-1 agreement ${r.agree.toFixed(3)}${r.fallbacks.length ? ` (rows of 64: ${r.fallbacks.join(', ')})` : ''}`);
    process.stderr.write(`[quant agreement] ${type}: ${(r.agree * STEPS).toFixed(0)}/${STEPS} = ${r.agree.toFixed(3)} ${r.fallbacks.join(' ')}\n`);
    assert.deepEqual(r.fallbacks, fallbacks);
    assert.ok(r.agree >= floor, `${type}: agreement ${r.agree} < ${floor}`);
  });
}
