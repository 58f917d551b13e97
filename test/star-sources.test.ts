// Per-file sources of a Star Attention answer: a multi-file block's share is split among its files by
// attending the query to each file's token range alone (pieceLse, CPU). Checked against an independent
// path: the CPU backend's attention kernel run over a KV store holding only that file's rows.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openModel } from '../src/node/openModel';
import { createBackend } from '../src/node/createBackend';
import { createLocalHosts } from '../src/node/star/localHosts';
import { encodeContext } from '../src/engine/star/context';
import { PieceKeys, pieceKeysBudget } from '../src/engine/star/pieceKeys';
import { wrapHost } from '../src/engine/star/wrapHost';
import { buildQuery, buildStarLayout, type StarRepoLayout } from '../src/engine/star/prompt';
import { StarQuery } from '../src/engine/star/query';
import { shiftBlockKv } from '../src/engine/star/shift';
import { AttentionMass, fileShares, pieceLse, type LayerQuery } from '../src/engine/star/attentionMass';
import { logSumExp } from '../src/engine/star/merge';
import type { StarHost } from '../src/engine/star/host';
import type { BlockKv } from '../src/engine/star/types';
import type { Backend } from '../src/engine/backend/types';
import type { LoadedModel } from '../src/engine/model/types';
import { modelPath } from './support/paths';

const opened: { close(): Promise<void> }[] = [];
after(async () => {
  for (const m of opened) await m.close();
});
async function openStories(): Promise<LoadedModel> {
  const model = await openModel(modelPath('stories260K.gguf'));
  opened.push(model);
  return model;
}

/** lse of q over KV rows [start, end) by the backend's own attention kernel (K doubles as V: only lse is read). */
async function backendLse(b: Backend, q: Float32Array, rows: number, k: Float32Array, width: number, start: number, end: number, shape: { nHeads: number; nKvHeads: number; headDim: number }): Promise<Float32Array> {
  const kt = b.createKv(Math.max(1, end - start), width);
  const vt = b.createKv(Math.max(1, end - start), width);
  const qa = b.createAct(rows, shape.nHeads * shape.headDim);
  const out = b.createAct(rows, shape.nHeads * shape.headDim);
  const lse = b.createAct(rows, shape.nHeads);
  try {
    if (end > start) {
      b.writeKv(kt, 0, k.subarray(start * width, end * width));
      b.writeKv(vt, 0, k.subarray(start * width, end * width));
    }
    b.writeAct(qa, q);
    b.attention(qa, [{ k: kt, v: vt, length: end - start }], shape, out, lse);
    return await b.readAct(lse);
  } finally {
    for (const t of [kt, vt, qa, out, lse]) b.release(t);
  }
}

test('pieceLse equals the backend attention lse over each range alone (GQA, empty range)', async () => {
  const backend = await createBackend('cpu');
  try {
    const shape = { nHeads: 4, nKvHeads: 2, headDim: 8 };
    const rows = 3;
    const length = 11;
    const width = shape.nKvHeads * shape.headDim;
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 4 - 2;
    const q = Float32Array.from({ length: rows * shape.nHeads * shape.headDim }, rand);
    const k = Float32Array.from({ length: length * width }, rand);
    const ranges = [{ start: 0, end: 4 }, { start: 4, end: 4 }, { start: 4, end: 9 }, { start: 9, end: 11 }];
    const ours = pieceLse(q, rows, k, ranges, shape);
    for (const [p, r] of ranges.entries()) {
      const ref = await backendLse(backend, q, rows, k, width, r.start, r.end, shape);
      for (let i = 0; i < ref.length; i++) {
        if (ref[i] === -Infinity) assert.equal(ours[p]![i], -Infinity);
        else assert.ok(Math.abs(ours[p]![i]! - ref[i]!) < 1e-5, `range ${p} sample ${i}: ${ours[p]![i]} vs ${ref[i]}`);
      }
    }
    // The pieces together are the whole range.
    const whole = pieceLse(q, rows, k, [{ start: 0, end: length }], shape)[0]!;
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(logSumExp(ours.map((o) => o[i]!)) - whole[i]!) < 1e-9);
  } finally {
    backend.destroy();
  }
});

const FILES = [
  { path: 'docs/lily.txt', text: 'Lily liked to play with her ball in the park.\nShe saw a big red dog.\n' },
  { path: 'docs/max.txt', text: 'Max was a small cat.\n' },
  { path: 'docs/tom.txt', text: 'Tom had a toy car. It was blue and fast.\nTom ran to the tree.\nThe sun was hot.\n' },
];

interface Observed {
  readonly layer: number;
  readonly blocks: readonly { index: number; lse: Float32Array }[];
  readonly query?: LayerQuery;
}

/** Records what AttentionMass is fed, so the test can recompute the shares its own way. */
class ObservedMass extends AttentionMass {
  readonly seen: Observed[] = [];
  override addLayer(blocks: readonly { index: number; lse: Float32Array }[], query?: LayerQuery, layer = 0): void {
    this.seen.push({ layer, blocks, query });
    super.addLayer(blocks, query, layer);
  }
}

async function askSources(model: LoadedModel, layout: StarRepoLayout, hostCount: number, keyBudgetBytes?: number) {
  const c = model.config;
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  const query = buildQuery('What did Lily see?', model.tokenizer, model.chatTemplate);
  const local = await createLocalHosts(model, { backend: 'cpu', hosts: hostCount });
  const kvs = new Map<number, BlockKv>();
  const keepAll = (h: StarHost): StarHost => wrapHost(h, {
    encode: async (a, blocks, s) => { const r = await h.encode(a, blocks, s); for (const kv of r) kvs.set(kv.index, kv); return r; },
    load: async (blocks) => { for (const kv of blocks) kvs.set(kv.index, kv); await h.load(blocks); },
  });
  const spansOf = (index: number) => layout.spansOf(index);
  const pieceKeys = new PieceKeys((index) => (spansOf(index).length > 1 ? spansOf(index).map((s) => ({ start: s.tokenStart, end: s.tokenEnd })) : undefined), keyBudgetBytes);
  try {
    await encodeContext({
      modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks,
      hosts: local.hosts.map((h) => keepAll(pieceKeys.wrap(h))),
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      shift: (kv, s) => shiftBlockKv(local.query.backend, kv, s, c.headDim, c.rope),
    });
    const star = new StarQuery(local.query, { contextLength: layout.contextLength, hosts: local.hosts, colocated: local.hosts[0], capacity: query.length });
    const mass = new ObservedMass(pieceKeys.splitOptions(shape));
    await star.forward(query, 'last', undefined, mass);
    star.dispose();
    const files = fileShares(mass.shares(), mass.pieceShares(), spansOf);
    return { mass, files, kvs, shape, backend: local.query.backend, dispose: () => local.dispose() };
  } catch (err) {
    await local.dispose();
    throw err;
  }
}

test('one file per block: each file gets exactly its block share, nothing is split', async () => {
  const model = await openStories();
  const layout = buildStarLayout(FILES, model.tokenizer, model.chatTemplate, { chunkSize: 128, boundaryTokens: 0 });
  assert.equal(layout.blocks.length, 1 + FILES.length);
  const run = await askSources(model, layout, 1);
  try {
    const blockShares = run.mass.shares();
    assert.equal(run.mass.pieceShares().size, 0);
    for (const f of FILES) {
      const [index] = layout.blocksFor(f.path);
      assert.equal(run.files.find((s) => s.path === f.path)!.share, blockShares.get(index!));
    }
    const total = run.files.reduce((s, f) => s + f.share, 0) + (blockShares.get(0) ?? 0);
    assert.ok(Math.abs(total - 1) < 1e-9, `files + anchor = ${total}`);
  } finally {
    await run.dispose();
  }
});

test('a block of two files: their shares are the per-file attention, sum to the block share, same over 1 or 2 hosts', async () => {
  const model = await openStories();
  const layout = buildStarLayout(FILES, model.tokenizer, model.chatTemplate, { chunkSize: 256 });
  const shared = layout.blocks.findIndex((b) => layout.spansOf(b.index).length >= 2);
  assert.ok(shared > 0, 'the layout packs two files into one block');
  const paths = layout.spansOf(shared).map((s) => s.path);
  const byHosts: { path: string; share: number }[][] = [];
  for (const hosts of [1, 2]) {
    const run = await askSources(model, layout, hosts);
    try {
      const blockShares = run.mass.shares();
      const shareOf = (p: string) => run.files.find((s) => s.path === p)!.share;
      const total = run.files.reduce((s, f) => s + f.share, 0) + (blockShares.get(0) ?? 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `files + anchor = ${total}`);
      assert.ok(Math.abs(paths.reduce((s, p) => s + shareOf(p), 0) - blockShares.get(shared)!) < 1e-9);

      // Independent: mean over layers, heads, rows of exp(lse_piece - lse_ctx), lse_piece from the backend's
      // attention over a KV store holding only that file's rows (K and V of the block as phase 1 produced them).
      const kv = run.kvs.get(shared)!;
      const expected = new Map<string, number>();
      let samples = 0;
      for (const o of run.mass.seen) {
        assert.ok(o.query, `layer ${o.layer} came without q`);
        const lses = await Promise.all(layout.spansOf(shared).map((s) => backendLse(run.backend, o.query!.q, o.query!.rows, kv.k[o.layer]!, kv.width, s.tokenStart, s.tokenEnd, run.shape)));
        for (let i = 0; i < o.blocks[0]!.lse.length; i++) {
          const total = logSumExp(o.blocks.map((b) => b.lse[i]!));
          if (total === -Infinity) continue;
          samples++;
          layout.spansOf(shared).forEach((s, p) => expected.set(s.path, (expected.get(s.path) ?? 0) + Math.exp(lses[p]![i]! - total)));
        }
      }
      for (const p of paths) {
        const want = expected.get(p)! / samples;
        assert.ok(Math.abs(shareOf(p) - want) < 1e-5, `${p}: ${shareOf(p)} vs independent ${want}`);
      }
      byHosts.push(run.files);
    } finally {
      await run.dispose();
    }
  }
  for (const [i, f] of byHosts[0]!.entries()) {
    assert.equal(byHosts[1]![i]!.path, f.path);
    assert.ok(Math.abs(byHosts[1]![i]!.share - f.share) < 1e-5);
  }
});

test('past the key budget a multi-file block is split by token counts; the budget bounds the CPU work', async () => {
  const model = await openStories();
  const layout = buildStarLayout(FILES, model.tokenizer, model.chatTemplate, { chunkSize: 256 });
  const shared = layout.blocks.findIndex((b) => layout.spansOf(b.index).length >= 2);
  const run = await askSources(model, layout, 1, 0);
  try {
    assert.equal(run.mass.pieceShares().size, 0, 'no keys kept, nothing split exactly');
    const block = run.mass.shares().get(shared)!;
    const spans = layout.spansOf(shared);
    const tokens = spans.reduce((t, s) => t + s.tokenEnd - s.tokenStart, 0);
    for (const s of spans) {
      const got = run.files.find((f) => f.path === s.path)!.share;
      assert.ok(Math.abs(got - (block * (s.tokenEnd - s.tokenStart)) / tokens) < 1e-12);
    }
  } finally {
    await run.dispose();
  }
  const qwenLike = { nLayers: 24, nHeads: 14, nKvHeads: 2, headDim: 64 };
  const bytes = pieceKeysBudget(qwenLike, 30, 1e9);
  const rows = bytes / (24 * 2 * 64 * 4);
  assert.ok(Number.isInteger(rows) && rows * 30 * 14 * 64 * 24 <= 1e9 && (rows + 1) * 30 * 14 * 64 * 24 > 1e9, `${rows} key rows`);
  assert.equal(pieceKeysBudget(qwenLike, 1, 1e15, 1024), 1024);
});

test('asking for exact sources leaves the logits unchanged (cpu, webgpu)', async () => {
  const model = await openStories();
  const c = model.config;
  const layout = buildStarLayout(FILES, model.tokenizer, model.chatTemplate, { chunkSize: 256 });
  const query = buildQuery('What did Lily see?', model.tokenizer, model.chatTemplate);
  for (const kind of ['cpu', 'webgpu'] as const) {
    const logits: Float32Array[] = [];
    for (const withSources of [false, true]) {
      const local = await createLocalHosts(model, { backend: kind, hosts: 1 });
      try {
        const keys = new PieceKeys((i) => (layout.spansOf(i).length > 1 ? layout.spansOf(i).map((s) => ({ start: s.tokenStart, end: s.tokenEnd })) : undefined));
        await encodeContext({
          modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: local.hosts.map((h) => keys.wrap(h)),
          kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
          shift: (kv, s) => shiftBlockKv(local.query.backend, kv, s, c.headDim, c.rope),
        });
        const star = new StarQuery(local.query, { contextLength: layout.contextLength, hosts: local.hosts, colocated: local.hosts[0], capacity: query.length });
        const mass = withSources ? new AttentionMass(keys.splitOptions({ nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim })) : undefined;
        logits.push(await local.query.backend.readAct((await star.forward(query, 'all', undefined, mass))!));
        if (mass) assert.ok(mass.pieceShares().size > 0, `${kind}: a block was split`);
        star.dispose();
      } finally {
        await local.dispose();
      }
    }
    let worst = 0;
    for (let i = 0; i < logits[0]!.length; i++) worst = Math.max(worst, Math.abs(logits[0]![i]! - logits[1]![i]!));
    assert.ok(worst < 1e-5, `${kind}: logits differ by ${worst} when sources are asked for`);
  }
});
