// Key summaries on disk (src/node/cache/summaryStore.ts): a round trip gives the very bounds back; a damaged file
// is reported by name, deleted and read as a miss; a summary taken with other pages is a silent miss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { openSummaryStore } from '../src/node/cache/summaryStore';
import { summarizeKeys } from '../src/engine/star/selection/keySummary';
import { withTempDir } from './support/tempDir';

const KEY = 'ab'.repeat(32);

test('summary store: round trip, damaged file, other page size', async () => {
  await withTempDir('summary-store-', async (dir) => {
    const warnings: string[] = [];
    const store = openSummaryStore(dir, (m) => warnings.push(m));
    const width = 6;
    const length = 21;
    const k = [0, 1].map((l) => Float32Array.from({ length: length * width }, (_, i) => Math.sin(i * 0.37 + l)));
    const summary = summarizeKeys({ index: 3, start: 8, length, width, k, v: [] }, 8);
    assert.equal(await store.get(KEY, 8), undefined);
    await store.put(KEY, summary);
    const back = await store.get(KEY, 8);
    assert.ok(back);
    assert.equal(back.length, length);
    assert.equal(back.width, width);
    assert.deepEqual(back.bounds.map((b) => Array.from(b)), summary.bounds.map((b) => Array.from(b)));
    assert.equal(await store.get(KEY, 16), undefined, 'other pages: a miss');
    assert.deepEqual(warnings, [], 'not damage: no warning');
    const file = join(dir, 'summaries', `${KEY}.sum`);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(file, bytes);
    assert.equal(await store.get(KEY, 8), undefined);
    assert.match(warnings[0]!, new RegExp(`${KEY}\\.sum: key summary fails its checksum`));
    assert.equal(existsSync(file), false, 'the damaged file is deleted');
  });
});
