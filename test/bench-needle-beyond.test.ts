// bench needle beyond the context: the test repositories of every size and depth share their blocks' cache keys
// (so one disk cache serves the whole grid), and the select-* cells of a tiny run through the built CLI (stories260K,
// 2,048-token context, a repository twice that) report their selection, reads and reuse (the accuracy figures come
// from the real model, README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execPath } from 'node:process';
import { writeNeedleRepository } from '../src/cli/commands/bench/needle';
import { blockCacheKey } from '../src/engine/star/context';
import { buildRepoLayout } from '../src/node/star/repoLayout';
import { runCli } from './support/cli';
import { modelOpener } from './support/models';
import { modelPath } from './support/paths';

const open = modelOpener();
/** npm's own node_modules beside this Node: many packages, so the outline of a flat copy grows with its size. */
const NPM_MODULES = resolve(dirname(execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules');
const facts = (value: string) => [{ name: 'LEGACY_MIRROR_PORT', value }, { name: 'FALLBACK_SHARD_COUNT', value: '71234' }];

test('needle repositories written under vendor/npm share the anchor and every block but the needle\'s and the cut file\'s at local positions', async () => {
  const model = await open('stories260K.gguf');
  const keysOf = async (size: number, depth: 'start' | 'end', value: string, under: string) => {
    const repo = mkdtempSync(join(tmpdir(), 'needle-beyond-'));
    try {
      await writeNeedleRepository(join(repo, under), NPM_MODULES, model, size, depth, facts(value));
      const { layout } = await buildRepoLayout({ repo, model, chunkSize: 512 });
      // Local positions: every block right after the anchor, as a repository beyond the context is stored.
      const keys = layout.blocks.slice(1).map((b) => blockCacheKey(model.identity, layout.anchor, { ...b, start: layout.anchor.length }));
      return { anchor: layout.anchor.join(','), keys };
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  };
  const small = await keysOf(2000, 'start', '11111', 'vendor/npm');
  const large = await keysOf(8000, 'end', '22222', 'vendor/npm');
  assert.equal(small.anchor, large.anchor, 'the overview (vendor/, vendor/npm/) is the same at both sizes');
  const shared = small.keys.filter((k) => large.keys.includes(k)).length;
  assert.ok(small.keys.length >= 4, `${small.keys.length} blocks at 2,000 tokens`);
  // Differing: the needle's block, and the last two (the file cut at 2,000 tokens, and the group it closes).
  assert.ok(shared >= small.keys.length - 3, `${shared} of ${small.keys.length} blocks of the small repository are cached for the large one`);
  // Copied flat, the outline lists each package: a copy reaching more packages has another anchor, so no block's key
  // survives (npm's first packages are large: 2,000 and 8,000 tokens have the same ones, 40,000 more).
  const flatSmall = await keysOf(2000, 'start', '11111', '');
  const flatLarge = await keysOf(40000, 'end', '22222', '');
  assert.notEqual(flatSmall.anchor, flatLarge.anchor);
  assert.equal(flatSmall.keys.filter((k) => flatLarge.keys.includes(k)).length, 0);
});

test('star-ask bench needle --modes select-lexical beyond the context (cpu, stories260K): selection, reads, and a shared cache reused', () => {
  const cache = mkdtempSync(join(tmpdir(), 'needle-beyond-kv-'));
  try {
    const args = ['bench', 'needle', '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--source', NPM_MODULES, '--under', 'vendor/npm',
      '--cache-dir', cache, '--sizes', '4096', '--depths', 'end', '--modes', 'select-lexical', '--needles', '2', '--max-tokens', '4', '--json'];
    const runs = [0, 1].map(() => {
      const r = runCli(args, 240_000);
      assert.equal(r.status, 0, `star-ask ${args.join(' ')} failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as { cells: Record<string, any>[] };
    });
    for (const [i, { cells }] of runs.entries()) {
      assert.equal(cells.length, 1);
      const c = cells[0]!;
      assert.equal(c.mode, 'select-lexical');
      assert.equal(c.attended.ranking, 'lexical');
      assert.ok(c.attended.blocks >= 1 && c.attended.blocks < c.attended.of, `${c.attended.blocks} of ${c.attended.of} blocks attended`);
      // stories260K: 5 layers x 4 KV heads x 8 per head, K and V, f16.
      assert.equal(c.attended.kvReadBytes % (2 * 5 * 4 * 8 * 2), 0, 'whole tokens of KV');
      assert.ok(c.attended.kvReadBytes <= 2048 * 2 * 5 * 4 * 8 * 2, 'no more KV read than the context holds');
      assert.equal(c.cold.sameAnswers, true, 'the warm answer is the cold one');
      if (i === 0) assert.ok(c.cold.encodedOnDemand >= 1, 'the first run encodes the selected blocks on demand');
      else assert.equal(c.cold.encodedOnDemand, 0, 'the second run finds every block it reads in the shared cache');
      assert.ok(c.contextTokens > 4096, 'the repository is larger than the context');
    }
    const answers = (i: number) => runs[i]!.cells[0]!.answers.map((a: { answer: string }) => a.answer);
    assert.deepEqual(answers(1), answers(0), 'same answers from the cache');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
