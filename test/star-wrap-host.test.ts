// Wrapped hosts (wrapHost, and PieceKeys.wrap built on it) forward every StarHost call, the optional drop and move
// included: a rearrangement through a wrapper reaches the real host (its blocks are renumbered and dropped there)
// instead of the caller silently falling back to re-encoding. Where the inner host has no drop/move, neither has
// the wrapper, so that fallback stays visible to the caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import type { StarHost } from '../src/engine/star/host';
import { LocalStarHost } from '../src/engine/star/localHost';
import { PieceKeys } from '../src/engine/star/pieceKeys';
import type { BlockSpec } from '../src/engine/star/types';
import { wrapHost } from '../src/engine/star/wrapHost';
import { recordingEncodes } from '../src/node/star/repoSession';
import { modelOpener } from './support/models';

const openShared = modelOpener();
const anchor = [1, 400, 401, 402, 403, 404, 405, 406];
const blocks: BlockSpec[] = [
  { index: 0, start: 0, tokens: anchor },
  { index: 1, start: 8, tokens: [410, 411, 412, 413, 414, 415] },
  { index: 2, start: 14, tokens: [420, 421, 422, 423] },
];
// Blocks 1 and 2 hold two pieces each, so PieceKeys keeps their keys.
const ranges = (index: number) => (index === 1 ? [{ start: 0, end: 3 }, { start: 3, end: 6 }] : index === 2 ? [{ start: 0, end: 2 }, { start: 2, end: 4 }] : undefined);

const wrappers: [string, (h: StarHost) => { host: StarHost; after?: () => void }][] = [
  ['wrapHost with no overrides', (h) => ({ host: wrapHost(h, {}) })],
  ['wrapHost with encode recorded', (h) => ({ host: wrapHost(h, { encode: (a, b, s) => h.encode(a, b, s) }) })],
  ["RepoSession's encode recorder", (h) => ({ host: recordingEncodes(h, () => {}, () => {}) })],
  ['PieceKeys.wrap', (h) => {
    const keys = new PieceKeys(ranges);
    return {
      host: keys.wrap(h),
      // The moved and dropped blocks' keys no longer describe the blocks at those indices.
      after: () => assert.deepEqual([keys.keysOf(1), keys.keysOf(2)], [undefined, undefined]),
    };
  }],
];

for (const [name, wrap] of wrappers) {
  test(`moves and drops through ${name} reach the host`, async () => {
    const model = await openShared('stories260K.gguf');
    const inner = new LocalStarHost(await Transformer.create(model, new CpuBackend()), { name: 'inner' });
    try {
      const { host, after } = wrap(inner);
      await host.encode(anchor, blocks);
      assert.deepEqual(await inner.blockIndices(), [0, 1, 2]);
      assert.ok(host.move && host.drop, 'the wrapper hides drop or move');
      // Swap blocks 1 and 2 (the second now first after the anchor), then drop the one now at index 2.
      await host.move([{ from: 1, to: 2, start: 12 }, { from: 2, to: 1, start: 8 }]);
      assert.deepEqual(await inner.blockIndices(), [0, 2, 1]);
      await host.drop([2]);
      assert.deepEqual(await inner.blockIndices(), [0, 1]);
      assert.deepEqual(await host.blockIndices(), [0, 1]);
      after?.();
    } finally {
      await inner.dispose();
    }
  });
}

test('a wrapper of a host without drop/move has neither (the caller sees the fallback it must take)', async () => {
  const model = await openShared('stories260K.gguf');
  const inner = new LocalStarHost(await Transformer.create(model, new CpuBackend()), { name: 'inner' });
  try {
    const plain: StarHost = {
      name: 'plain', encode: (a, b, s) => inner.encode(a, b, s), load: (b) => inner.load(b), blockIndices: () => inner.blockIndices(),
      attend: (l, q, r, p) => inner.attend(l, q, r, p), clear: () => inner.clear(), dispose: () => inner.dispose(),
    };
    for (const w of [wrapHost(plain, { drop: async () => {}, move: async () => {} }), new PieceKeys(ranges).wrap(plain)]) {
      assert.equal(w.drop, undefined);
      assert.equal(w.move, undefined);
      await w.encode(anchor, blocks.slice(0, 2));
      assert.deepEqual(await inner.blockIndices(), [0, 1]);
      await w.clear();
    }
  } finally {
    await inner.dispose();
  }
});
