// Star Attention phase 2 across hosts: the query host merges every host's partial attention by
// log-sum-exp, which is exact, so splitting the same blocks over 1, 2 or 4 hosts, or streaming
// them through in waves when they exceed the memory budget, must give the same logits (to f32
// rounding) and the same greedy ids; and the attention shares per block must not depend on which
// path (local context or remote host) reported them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalHosts } from '../src/node/star/localHosts';
import { encodeContext } from '../src/engine/star/context';
import { fixedLayout, type StarLayout } from '../src/engine/star/layout';
import { StarQuery } from '../src/engine/star/query';
import { shiftBlockKv } from '../src/engine/star/shift';
import { AttentionMass } from '../src/engine/star/attentionMass';
import type { LoadedModel } from '../src/engine/model/types';
import { LocalStarHost } from '../src/engine/star/localHost';
import { Transformer } from '../src/engine/runtime/transformer';
import { createBackend } from '../src/node/createBackend';
import { modelOpener } from './support/models';
import { readGolden } from './support/paths';

/** Opens stories260K; every model a test opens is closed after this file's tests. */
const openShared = modelOpener();
const openStories = () => openShared('stories260K.gguf');

const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;
// 384 context tokens in blocks of 64 (anchor + 5 blocks), a 24-token query, 12 generated tokens.
const layout: StarLayout = fixedLayout(ids.slice(0, 408), 384, 64);

interface Run {
  logits: Float32Array;
  generated: number[];
  shares: Map<number, number>;
  residency: string;
  waves: number;
}

async function runStar(model: LoadedModel, hosts: number, memoryBudgetBytes?: number): Promise<Run> {
  const local = await createLocalHosts(model, { backend: 'cpu', hosts, memoryBudgetBytes });
  try {
    const c = local.query.config;
    await encodeContext({
      modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: local.hosts,
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      shift: (kv, s) => shiftBlockKv(local.query.backend, kv, s, c.headDim, c.rope),
    });
    const query = new StarQuery(local.query, { contextLength: layout.contextLength, hosts: local.hosts, colocated: local.hosts[0], capacity: 64 });
    const mass = new AttentionMass();
    const logits = await local.query.backend.readAct((await query.forward(layout.query, 'all', undefined, mass))!);
    const last = logits.subarray(logits.length - c.vocabSize);
    let next = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[next]!) next = i;
    const rest = await decodeFrom(query, next, 12);
    query.dispose();
    return { logits, generated: [next, ...rest], shares: mass.shares(), residency: await local.hosts[0]!.residency(), waves: local.hosts[0]!.stats.wavesPerLayer };
  } finally {
    await local.dispose();
  }
}

async function decodeFrom(query: StarQuery, first: number, count: number): Promise<number[]> {
  const out: number[] = [];
  let id = first;
  for (let i = 0; i < count; i++) {
    const logits = (await query.forward([id], 'last'))!;
    id = (await query.transformer.backend.argmax(logits))[0]!;
    out.push(id);
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('1, 2 and 4 hosts and waves give the single-host answer', async () => {
  const model = await openStories();
  const single = await runStar(model, 1);
  assert.equal(single.residency, 'resident');
  const total = [...single.shares.values()].reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - 1) < 1e-9, `shares sum to ${total}`);
  assert.equal(single.shares.size, layout.blocks.length);

  // The merge is exact in arithmetic; in f32 (the kernels' exp included) it moves logits by a few ulps of the largest
  // one. A wrong merge moves them by orders of magnitude more.
  const bound = 4e-6 * single.logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (const hosts of [2, 4]) {
    const r = await runStar(model, hosts);
    assert.ok(maxDiff(r.logits, single.logits) <= bound, `${hosts} hosts: logits differ by ${maxDiff(r.logits, single.logits)} (bound ${bound})`);
    assert.deepEqual(r.generated, single.generated, `${hosts} hosts: generated ids`);
    for (const [b, s] of single.shares) assert.ok(Math.abs(r.shares.get(b)! - s) < 1e-5, `${hosts} hosts: share of block ${b}`);
  }

  // A budget of 100 tokens' K+V of one layer (f32): far below the 384 tokens x 5 layers held, and
  // waves of one layer take one 64-token block each (two would be 128 > 100).
  const layerTokenBytes = 2 * 4 * model.config.nKvHeads * model.config.headDim;
  const waved = await runStar(model, 1, 100 * layerTokenBytes);
  assert.equal(waved.residency, 'waves');
  assert.ok(waved.waves >= 3, `expected several waves per layer, got ${waved.waves}`);
  assert.ok(maxDiff(waved.logits, single.logits) <= bound, `waves: logits differ by ${maxDiff(waved.logits, single.logits)} (bound ${bound})`);
  assert.deepEqual(waved.generated, single.generated, 'waves: generated ids');
  // Resident shares came from the local forward's per-source lse, waved ones from the host's per-block attend.
  for (const [b, s] of single.shares) assert.ok(Math.abs(waved.shares.get(b)! - s) < 1e-5, `waves: share of block ${b}`);
});

test('a WebGPU query host merges a CPU host and a WebGPU host in waves exactly (tiny layout)', async () => {
  const model = await openStories();
  const tiny = fixedLayout(ids.slice(0, 30), 24, 6);
  const c = model.config;
  const layerTokenBytes = 2 * 4 * c.nKvHeads * c.headDim;
  const run = async (kinds: readonly ('cpu' | 'webgpu')[], budgets: readonly (number | undefined)[]) => {
    const backends = await Promise.all(kinds.map((k) => createBackend(k)));
    try {
      const hosts = [];
      for (let i = 0; i < kinds.length; i++) hosts.push(new LocalStarHost(await Transformer.create(model, backends[i]!), { memoryBudgetBytes: budgets[i] }));
      const q = hosts[0]!.transformer;
      await encodeContext({
        modelIdentity: model.identity, anchor: tiny.anchor, blocks: tiny.blocks, hosts,
        kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
        shift: (kv, s) => shiftBlockKv(q.backend, kv, s, c.headDim, c.rope),
      });
      const query = new StarQuery(q, { contextLength: tiny.contextLength, hosts, colocated: hosts[0], capacity: 16 });
      const mass = new AttentionMass();
      const logits = await q.backend.readAct((await query.forward(tiny.query, 'all', undefined, mass))!);
      const residency = await Promise.all(hosts.map((h) => h.residency()));
      const last = logits.subarray(logits.length - c.vocabSize);
      let next = 0;
      for (let i = 1; i < last.length; i++) if (last[i]! > last[next]!) next = i;
      const generated = [next, ...(await decodeFrom(query, next, 3))];
      query.dispose();
      for (const h of hosts) await h.dispose();
      return { logits, generated, shares: mass.shares(), residency };
    } finally {
      for (const b of backends) b.destroy();
    }
  };
  const reference = await run(['cpu'], [undefined]);
  const mixed = await run(['webgpu', 'cpu', 'webgpu'], [undefined, undefined, 4 * layerTokenBytes]);
  assert.deepEqual(mixed.residency, ['resident', 'resident', 'waves']);
  // WebGPU and CPU kernels differ by ~4e-3 in logits on their own (star-golden.test.ts measures it).
  assert.ok(maxDiff(mixed.logits, reference.logits) < 1e-2, `logits differ by ${maxDiff(mixed.logits, reference.logits)}`);
  assert.deepEqual(mixed.generated, reference.generated);
  for (const [b, s] of reference.shares) assert.ok(Math.abs(mixed.shares.get(b)! - s) < 1e-3, `share of block ${b}: ${mixed.shares.get(b)} vs ${s}`);
});

test('blocks loaded after phase 2 has begun are seen by the next attend (resident and waves)', async () => {
  const model = await openStories();
  const c = model.config;
  const layerTokenBytes = 2 * 4 * c.nKvHeads * c.headDim;
  const encoder = await createLocalHosts(model, { backend: 'cpu', hosts: 1 });
  try {
    const kvs = await encoder.hosts[0]!.encode(layout.anchor, layout.blocks);
    const copy = () => kvs.map((kv) => ({ ...kv, k: kv.k.map((a) => a.slice()), v: kv.v.map((a) => a.slice()) }));
    // A fixed q (any values do: attend is compared host against host), 3 rows.
    const rows = 3;
    const q = Float32Array.from({ length: rows * c.nHeads * c.headDim }, (_, i) => Math.sin(i * 0.37));
    const layer = c.nLayers - 1;
    const half = Math.ceil(kvs.length / 2);
    for (const budget of [undefined, 100 * layerTokenBytes]) {
      const what = budget === undefined ? 'resident' : 'waves';
      const full = await createLocalHosts(model, { backend: 'cpu', hosts: 1, memoryBudgetBytes: budget });
      const late = await createLocalHosts(model, { backend: 'cpu', hosts: 1, memoryBudgetBytes: budget });
      try {
        await full.hosts[0]!.load(copy());
        const want = await full.hosts[0]!.attend(layer, q, rows, true);
        const lateKvs = copy();
        await late.hosts[0]!.load(lateKvs.slice(0, half));
        const before = await late.hosts[0]!.attend(layer, q, rows, true); // phase 2 has begun
        assert.equal(before.blocks!.length, half, `${what}: first half only`);
        assert.ok(maxDiff(before.lse, want.lse) > 1e-3, `${what}: the first half alone must differ from all blocks`);
        await late.hosts[0]!.load(lateKvs.slice(half));
        const after = await late.hosts[0]!.attend(layer, q, rows, true);
        assert.deepEqual(after.blocks!.map((b) => b.index).sort((a, b) => a - b), kvs.map((kv) => kv.index).sort((a, b) => a - b), `${what}: every block`);
        assert.ok(maxDiff(after.out, want.out) <= 1e-5, `${what}: out differs by ${maxDiff(after.out, want.out)}`);
        assert.ok(maxDiff(after.lse, want.lse) <= 1e-5, `${what}: lse differs by ${maxDiff(after.lse, want.lse)}`);
        if (budget !== undefined) assert.ok(late.hosts[0]!.stats.wavesPerLayer >= 3, `${what}: ${late.hosts[0]!.stats.wavesPerLayer} waves`);
      } finally {
        await full.dispose();
        await late.dispose();
      }
    }
  } finally {
    await encoder.dispose();
  }
});
