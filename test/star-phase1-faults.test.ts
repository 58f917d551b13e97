// Phase 1 under faults, with the real CPU host and the real disk cache: every block's entry reaches the disk as
// its block finishes (what a kill -9 at that moment would leave), and an abort fired from an event handler (as
// Ctrl-C's is) stops the forward pass inside the block being encoded, not after phase 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createLocalHosts } from '../src/node/star/localHosts';
import { openKvBlockStore } from '../src/node/cache/kvBlockStore';
import { encodeContext } from '../src/engine/star/context';
import { fixedLayout } from '../src/engine/star/layout';
import { shiftBlockKv } from '../src/engine/star/shift';
import type { StarHost } from '../src/engine/star/host';
import { CancelledError } from '../src/engine/errors';
import { modelOpener } from './support/models';
import { readGolden } from './support/paths';
import { withTempDir } from './support/tempDir';

const openShared = modelOpener();
const openStories = () => openShared('stories260K.gguf');
const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;

/** `host` with its encode() calls watched: `before` runs ahead of each call. */
function watchEncode(host: StarHost, before: () => void): StarHost {
  return {
    name: host.name,
    encode: (anchor, blocks, signal) => { before(); return host.encode(anchor, blocks, signal); },
    load: (blocks) => host.load(blocks),
    blockIndices: () => host.blockIndices(),
    attend: (layer, q, rows, perBlock) => host.attend(layer, q, rows, perBlock),
    clear: () => host.clear(),
    dispose: () => host.dispose(),
  };
}

test('each block\'s cache entry is on disk before the next block is encoded (in-process cpu host)', async () => {
  const model = await openStories();
  const layout = fixedLayout(ids, 384, 64); // the anchor + 5 blocks
  const local = await createLocalHosts(model, { backend: 'cpu', hosts: 1 });
  try {
    await withTempDir('star-phase1-durable-', async (dir) => {
      const entriesOnDisk: number[] = [];
      const host = watchEncode(local.hosts[0]!, () => entriesOnDisk.push(readdirSync(dir).filter((n) => n.endsWith('.kv')).length));
      const c = model.config;
      const stats = await encodeContext({
        modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: [host],
        store: openKvBlockStore({ dir, maxSizeBytes: 1 << 30 }),
        kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, blocksPerBatch: 1,
        shift: (kv, s) => shiftBlockKv(local.query.backend, kv, s, c.headDim, c.rope),
      });
      assert.equal(stats.blocksEncoded, layout.blocks.length);
      // A kill before encode call k leaves the k blocks encoded so far (before the fix: 0 until phase 1 ended).
      assert.deepEqual(entriesOnDisk, layout.blocks.map((_, k) => k));
    });
  } finally {
    await local.dispose();
  }
});

test('an abort fired from an event handler stops the forward pass within the block (cpu)', async () => {
  const model = await openStories();
  // One 384-token block after a 24-token anchor: the anchor's forward and the block's.
  const layout = fixedLayout(ids, 408, 384, 24);
  const local = await createLocalHosts(model, { backend: 'cpu', hosts: 1 });
  try {
    const backend = local.query.backend;
    let matmuls = 0;
    const matmul = backend.matmul.bind(backend);
    backend.matmul = (...args: Parameters<typeof matmul>) => { matmuls++; return matmul(...args); };
    const controller = new AbortController();
    // A Ctrl-C handler runs as an event (a macrotask), never inside a chain of resolved promises.
    setImmediate(() => controller.abort());
    const c = model.config;
    await assert.rejects(encodeContext({
      modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: local.hosts,
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, signal: controller.signal,
      shift: (kv, s) => shiftBlockKv(backend, kv, s, c.headDim, c.rope),
    }), CancelledError);
    // 7 matmuls per layer (q, k, v, o, gate, up, down): the abort is seen after the first layer of the first
    // forward; without a yield between layers both forwards ran to the end (2 x nLayers x 7) before it was seen.
    assert.ok(matmuls <= 7, `the forward went on after the abort: ${matmuls} matmuls, ${2 * c.nLayers * 7} for both forwards`);
  } finally {
    await local.dispose();
  }
});
