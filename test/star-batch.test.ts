// Star Attention phase 1 with several blocks per forward (block-diagonal row-restricted attention)
// must give every block the KV that encoding it alone gives: [anchor ; block] with the anchor as
// context. Checked on the CPU reference (1e-5: only the float summation order may differ) and on
// WebGPU (1e-4 against its own one-by-one encode, 1e-3 against the CPU, as in webgpu-ops for
// matmuls over short rows), with uneven block lengths and batches cut by the row cap.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openModel } from '../src/node/openModel';
import { createBackend } from '../src/node/createBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { fixedLayout, type StarLayout } from '../src/engine/star/layout';
import { LocalStarHost } from '../src/engine/star/localHost';
import type { BlockKv } from '../src/engine/star/types';
import { modelPath, readGolden } from './support/paths';

const opened: { close(): Promise<void> }[] = [];
after(async () => {
  for (const m of opened) await m.close();
});
async function openStories() {
  const model = await openModel(modelPath('stories260K.gguf'));
  opened.push(model);
  return model;
}

const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;

/** Encodes every block of `layout` on one host; counts the transformer's forwards of each kind. */
async function encodeAll(t: Transformer, layout: StarLayout, maxBatchRows: number) {
  const counts = { forward: 0, forwardBatch: 0 };
  const forward = t.forward.bind(t), forwardBatch = t.forwardBatch.bind(t);
  t.forward = (...a) => { counts.forward++; return forward(...a); };
  t.forwardBatch = (...a) => { counts.forwardBatch++; return forwardBatch(...a); };
  const host = new LocalStarHost(t, { maxBatchRows });
  try {
    const kvs = await host.encode(layout.anchor, layout.blocks);
    return { kvs, counts, encoded: host.stats.blocksEncoded };
  } finally {
    t.forward = forward;
    t.forwardBatch = forwardBatch;
    await host.dispose();
  }
}

function assertSameKv(a: readonly BlockKv[], b: readonly BlockKv[], tol: number, what: string): number {
  assert.equal(a.length, b.length, `${what}: block count`);
  let worst = 0;
  a.forEach((x, i) => {
    const y = b[i]!;
    assert.deepEqual([x.index, x.start, x.length, x.width], [y.index, y.start, y.length, y.width], `${what}: block ${i} shape`);
    for (const kind of ['k', 'v'] as const) {
      x[kind].forEach((layer, l) => {
        const other = y[kind][l]!;
        assert.equal(layer.length, other.length);
        for (let j = 0; j < layer.length; j++) worst = Math.max(worst, Math.abs(layer[j]! - other[j]!));
      });
    }
  });
  assert.ok(worst <= tol, `${what}: block KV differs by ${worst} (tolerance ${tol})`);
  return worst;
}

test('batched phase 1 gives every block its one-by-one KV (cpu, uneven blocks, row cap)', async () => {
  const model = await openStories();
  const backend = await createBackend('cpu');
  try {
    const t = await Transformer.create(model, backend);
    // Anchor 60, blocks of 60 and a last one of 24: 6 blocks to encode after the anchor.
    const layout = fixedLayout(ids, 384, 60);
    const single = await encodeAll(t, layout, 1);
    assert.deepEqual(single.counts, { forward: 1 + 6, forwardBatch: 0 });
    const all = await encodeAll(t, layout, 1024);
    assert.deepEqual(all.counts, { forward: 1, forwardBatch: 1 }); // the anchor, then one batch
    assert.equal(all.encoded, 6);
    // A cap of 130 rows: batches of 2, 2, then 60 + 24 (cut by the cap, not by the block count).
    const capped = await encodeAll(t, layout, 130);
    assert.deepEqual(capped.counts, { forward: 1, forwardBatch: 3 });
    const w1 = assertSameKv(all.kvs, single.kvs, 1e-5, 'one batch vs one by one');
    const w2 = assertSameKv(capped.kvs, single.kvs, 1e-5, 'capped batches vs one by one');
    process.stdout.write(`# cpu batched vs one-by-one max |dKV|: ${w1}, ${w2}\n`);
  } finally {
    backend.destroy();
  }
});

test('batched phase 1 on WebGPU matches one by one and the CPU (tiny layout)', async () => {
  const model = await openStories();
  // Anchor 8, blocks of 8, 8, 8 and 4.
  const layout = fixedLayout(ids.slice(0, 40), 36, 8);
  const cpuBackend = await createBackend('cpu');
  let cpuKvs: BlockKv[];
  try {
    cpuKvs = (await encodeAll(await Transformer.create(model, cpuBackend), layout, 1)).kvs;
  } finally {
    cpuBackend.destroy();
  }
  const gpu = await createBackend('webgpu');
  try {
    const t = await Transformer.create(model, gpu);
    const single = await encodeAll(t, layout, 1);
    const batched = await encodeAll(t, layout, 1024);
    assert.deepEqual(batched.counts, { forward: 1, forwardBatch: 1 });
    const w1 = assertSameKv(batched.kvs, single.kvs, 1e-4, 'webgpu batched vs one by one');
    const w2 = assertSameKv(batched.kvs, cpuKvs, 1e-3, 'webgpu batched vs cpu');
    process.stdout.write(`# webgpu batched vs one-by-one max |dKV|: ${w1}; vs cpu: ${w2}\n`);
  } finally {
    gpu.destroy();
  }
});
