// serialQueue (src/engine/util/serialQueue.ts), the one "one caller at a time" of the cache, the pools, the
// session and the RPC server: tasks run one after another in the order given, each settles as its own task did,
// and a failure does not stop the tasks behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialQueue } from '../src/engine/util/serialQueue';

test('serialQueue runs tasks one at a time, in order, past failures', async () => {
  const serial = serialQueue();
  const log: string[] = [];
  let running = 0;
  const task = (name: string, ms: number, fail = false) => serial(async () => {
    running++;
    assert.equal(running, 1, `${name} overlapped another task`);
    log.push(`start ${name}`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`end ${name}`);
    running--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  });
  // The first task is the slowest: without the queue the others would start and end inside it.
  const results = await Promise.allSettled([task('a', 30), task('b', 1, true), task('c', 5)]);
  assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), ['a', 'b failed', 'c']);
});
