// Whether a cancel really stops a host worker's encode, not just the caller's promise: the encode is aborted once
// the worker reports a first block done (its `stats` are answered outside the call queue, at its yield points),
// then a call queued behind the encode (answered only once the worker has left it) and the stats tell how far
// the worker went. A worker that ignored the cancel would encode every block.
import assert from 'node:assert/strict';
import { CancelledError } from '../../src/engine/errors';
import type { BlockSpec } from '../../src/engine/star/types';
import type { StarHostClient } from '../../src/protocol/starHost';

export async function blocksEncodedAfterCancel(host: StarHostClient, anchor: readonly number[], blocks: readonly BlockSpec[]): Promise<number> {
  const controller = new AbortController();
  const encoding = host.encode(anchor, blocks, controller.signal);
  const stats = () => host.rpc.call('stats', []);
  while ((await stats()).blocksEncoded === 0);
  controller.abort();
  await assert.rejects(encoding, (err: unknown) => err instanceof CancelledError);
  const held = await host.blockIndices();
  const { blocksEncoded } = await stats();
  assert.equal(held.length, blocksEncoded);
  return blocksEncoded;
}
