// The disk KV cache inside the real Star pipeline (stories260K, CPU, the golden 512-token case with 128-token
// blocks): phase 1 read back from f32 entries gives bit-identical query logits; from f16 entries, the change in
// the next-token distributions is measured against the star-vs-global difference itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../src/node/openModel';
import { createBackend } from '../src/node/createBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { fixedLayout, type StarLayout } from '../src/engine/star/layout';
import { encodeContext, type BlockStore, type ContextStats } from '../src/engine/star/context';
import { LocalStarHost } from '../src/engine/star/localHost';
import { StarQuery } from '../src/engine/star/query';
import { shiftBlockKv } from '../src/engine/star/shift';
import { compareDistributions, globalQueryLogits, starQueryLogits } from '../src/engine/star/compare';
import { openKvBlockStore } from '../src/node/cache/kvBlockStore';
import { modelPath, readGolden } from './support/paths';

async function starWithStore(transformer: Transformer, layout: StarLayout, store: BlockStore): Promise<{ logits: Float32Array; stats: ContextStats }> {
  const c = transformer.config;
  const host = new LocalStarHost(transformer, { name: 'host 0' });
  try {
    const stats = await encodeContext({
      modelIdentity: 'stories260K', anchor: layout.anchor, blocks: layout.blocks, hosts: [host], store,
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      shift: (kv, start) => shiftBlockKv(transformer.backend, kv, start, c.headDim, c.rope),
    });
    const query = new StarQuery(transformer, { contextLength: layout.contextLength, hosts: [host], colocated: host, capacity: layout.query.length });
    try {
      const logits = await transformer.backend.readAct((await query.forward(layout.query, 'all'))!);
      return { logits, stats };
    } finally {
      query.dispose();
    }
  } finally {
    await host.dispose();
  }
}

test('KV read back from disk: f32 bit-identical; f16 and q8 warm equal cold; f16 far below the star-vs-global difference, q8 near it (cpu)', async (t) => {
  const golden = readGolden<{ star_vs_global_case: { token_ids: number[]; context_tokens: number; query_tokens: number } }>('stories260K.golden.json').star_vs_global_case;
  const model = await openModel(modelPath('stories260K.gguf'));
  const backend = await createBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'kv-model-'));
  try {
    const transformer = await Transformer.create(model, backend);
    const vocab = transformer.config.vocabSize;
    const rows = golden.query_tokens - 1;
    const layout = fixedLayout(golden.token_ids, golden.context_tokens, 128);
    const reference = await starQueryLogits(transformer, layout);
    const global = await globalQueryLogits(transformer, golden.token_ids, golden.context_tokens);
    const starVsGlobal = compareDistributions(global, reference, vocab, rows);
    const warnings: string[] = [];
    const results: Record<string, ReturnType<typeof compareDistributions>> = {};
    for (const dtype of ['f32', 'f16', 'q8'] as const) {
      const store = openKvBlockStore({ dir: join(dir, dtype), maxSizeBytes: 1 << 26, dtype, onWarning: (m) => warnings.push(m) });
      const first = await starWithStore(transformer, layout, store);
      assert.equal(first.stats.blocksEncoded, layout.blocks.length);
      // f32: as without a store. f16: the hosts attend to the KV rounded as the entries hold it (compared below).
      if (dtype === 'f32') assert.deepEqual(first.logits, reference, 'freshly encoded blocks: same logits as without a store');
      const second = await starWithStore(transformer, layout, store);
      assert.equal(second.stats.blocksEncoded, 0, `${dtype}: every block read from disk`);
      assert.equal(second.stats.blocksReused, layout.blocks.length);
      assert.equal(second.stats.blocksShifted, 0);
      assert.equal(second.stats.entriesRewritten, 0);
      results[dtype] = compareDistributions(reference, second.logits, vocab, rows);
      if (dtype === 'f32') assert.deepEqual(second.logits, reference, 'f32 entries reproduce the logits bit for bit');
      // f16 (the default) and q8 (beyond the context): a warm answer equals the cold one bit for bit.
      else assert.deepEqual(second.logits, first.logits, `${dtype} entries: warm logits equal the cold ones bit for bit`);
    }
    const f16 = results.f16!;
    t.diagnostic(`f16 KV entries vs f32: mean KL ${f16.klMean.toExponential(2)}, top-1 ${f16.top1Agreement.toFixed(3)}, max |dlogit| ${f16.maxLogitDiff.toExponential(2)}; ` +
      `star vs global: mean KL ${starVsGlobal.klMean.toExponential(2)}, max |dlogit| ${starVsGlobal.maxLogitDiff.toExponential(2)}`);
    assert.ok(f16.maxLogitDiff > 0, 'f16 storage must change something (else the comparison is vacuous)');
    assert.ok(f16.klMean < starVsGlobal.klMean / 10, 'f16 storage costs far less than Star Attention itself');
    assert.ok(f16.top1Agreement >= 0.99);
    const q8 = results.q8!;
    t.diagnostic(`q8 KV entries vs f32: mean KL ${q8.klMean.toExponential(2)}, top-1 ${q8.top1Agreement.toFixed(3)}, max |dlogit| ${q8.maxLogitDiff.toExponential(2)}`);
    assert.ok(q8.klMean > f16.klMean, 'q8 is coarser than f16 (else the q8 path is not taken)');
    // Of the size of Star Attention's own difference here (stories260K's 32-wide rows: one scale spans 4 heads).
    assert.ok(q8.klMean < 3 * starVsGlobal.klMean, `q8 KL ${q8.klMean}`);
    assert.ok(q8.top1Agreement >= 0.98);
    assert.deepEqual(warnings, []);
  } finally {
    backend.destroy();
    await model.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
