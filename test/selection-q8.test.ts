// 8-bit KV values (src/engine/quant/q8Kv.ts, llama.cpp's q8_0 layout) and their fidelity cost against f16, at
// the value and at the model's output: stories260K's golden star case with every block's KV rounded to f16 or
// to q8, next-token KL against the exact (f32) KV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Q8_GROUP, decodeQ8, encodeQ8, q8TensorBytes, roundToQ8 } from '../src/engine/quant/q8Kv';
import { roundToF16 } from '../src/engine/quant/half';
import { createBackend } from '../src/node/createBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { fixedLayout } from '../src/engine/star/layout';
import { LocalStarHost } from '../src/engine/star/localHost';
import { StarQuery } from '../src/engine/star/query';
import { compareDistributions } from '../src/engine/star/compare';
import type { BlockKv } from '../src/engine/star/types';
import { modelOpener } from './support/models';
import { readGolden } from './support/paths';

const openShared = modelOpener();
const golden = readGolden<{ star_vs_global_case: { token_ids: number[]; context_tokens: number } }>('stories260K.golden.json').star_vs_global_case;

test('q8: 34 bytes per 32 values; every value within max|x|/254 of its group (+ the scale\'s f16 rounding); zeros and short groups', () => {
  const rows = 3;
  const width = 70; // two full groups and a short one per row
  const x = Float32Array.from({ length: rows * width }, (_, i) => Math.sin(i * 1.7) * (i % 11 === 0 ? 40 : 1));
  x.fill(0, width, width + Q8_GROUP); // an all-zero group
  const bytes = encodeQ8(x, rows, width);
  assert.equal(bytes.length, q8TensorBytes(rows, width));
  assert.equal(q8TensorBytes(1, 64), 68);
  const y = decodeQ8(bytes, rows, width);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g * Q8_GROUP < width; g++) {
      const from = r * width + g * Q8_GROUP;
      const to = r * width + Math.min(width, (g + 1) * Q8_GROUP);
      let amax = 0;
      for (let i = from; i < to; i++) amax = Math.max(amax, Math.abs(x[i]!));
      for (let i = from; i < to; i++) assert.ok(Math.abs(y[i]! - x[i]!) <= amax / 254 * (1 + 2 ** -10) + 1e-12, `row ${r} group ${g} value ${i}`);
    }
  }
  for (let i = width; i < width + Q8_GROUP; i++) assert.equal(y[i], 0);
  const z = x.slice();
  roundToQ8(z, rows, width);
  assert.deepEqual(z, y);
});

test('q8 vs f16 KV at the model\'s output: next-token KL against exact KV on the golden star case (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  const backend = await createBackend('cpu');
  try {
    const t = await Transformer.create(model, backend);
    const layout = fixedLayout(golden.token_ids, golden.context_tokens, 128);
    const encoder = new LocalStarHost(t);
    const kvs = await encoder.encode(layout.anchor, layout.blocks);
    await encoder.dispose();
    const logitsWith = async (round: (kv: BlockKv) => void): Promise<Float32Array> => {
      const host = new LocalStarHost(t);
      try {
        await host.load(kvs.map((kv) => {
          const copy = { ...kv, k: kv.k.map((a) => a.slice()), v: kv.v.map((a) => a.slice()) };
          round(copy);
          return copy;
        }));
        const query = new StarQuery(t, { contextLength: layout.contextLength, hosts: [host], colocated: host, capacity: layout.query.length });
        try {
          return await t.backend.readAct((await query.forward(layout.query, 'all'))!);
        } finally {
          query.dispose();
        }
      } finally {
        await host.dispose();
      }
    };
    const exact = await logitsWith(() => {});
    const f16 = await logitsWith((kv) => roundToF16(...kv.k, ...kv.v));
    const q8 = await logitsWith((kv) => { for (const a of [...kv.k, ...kv.v]) roundToQ8(a, kv.length, kv.width); });
    const rows = layout.query.length - 1;
    const vocab = t.config.vocabSize;
    const klF16 = compareDistributions(exact, f16, vocab, rows);
    const klQ8 = compareDistributions(exact, q8, vocab, rows);
    console.log(`KV rounding vs exact, next-token KL: f16 ${klF16.klMean.toExponential(2)}, q8 ${klQ8.klMean.toExponential(2)}; top-1 f16 ${klF16.top1Agreement}, q8 ${klQ8.top1Agreement}`);
    assert.ok(klQ8.klMean > klF16.klMean, 'q8 is coarser than f16');
    // Measured 9.8e-5 (f16: 6.4e-8), the size of Star Attention's own error on this case (8e-5, golden, chunk 128):
    // q8 costs accuracy, so f16 stays the default. Pessimistic here: stories260K's rows are 32 wide (4 KV heads of
    // 8), so one scale spans four heads; at headDim 64 (SmolLM2, Qwen) a group stays inside one head.
    assert.ok(klQ8.klMean < 2e-4, `q8 KL ${klQ8.klMean}`);
    assert.ok(klQ8.top1Agreement >= 0.99);
  } finally {
    backend.destroy();
  }
});
