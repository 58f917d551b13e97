// The Star Attention subcommands through the built CLI (dist/cli.mjs), as scripts call them:
// the --json contracts of index, ask and compare, the disk cache across processes, and the
// golden case through `compare --ids`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KV_FILE_MAGIC } from '../src/node/cache/kvFileFormat';
import { runCli } from './support/cli';
import { assertAgreementEqual } from './support/agreement';
import { assertKlClose } from './support/klTolerance';
import { modelPath, readGolden, sharedDir } from './support/paths';

const cli = (args: string[]) => {
  const r = runCli(args);
  assert.equal(r.status, 0, `star-ask ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};

test('star-ask index / ask / compare --json (cpu)', () => {
  const repo = mkdtempSync(join(tmpdir(), 'star-cli-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-cli-kv-'));
  try {
    mkdirSync(join(repo, 'docs'));
    writeFileSync(join(repo, 'docs', 'max.txt'), 'Tom had a dog named Max. Max liked to run and jump in the park.\n');
    writeFileSync(join(repo, 'docs', 'lily.txt'), 'Lily had a red ball. She liked to throw it high in the sky.\n');
    const common = ['--repo', repo, '--model', modelPath('stories260K.gguf'), '--chunk-size', '64', '--backend', 'cpu', '--cache-dir', cacheDir, '--json'];

    const first = cli(['index', ...common]);
    assert.deepEqual(Object.keys(first).sort(), ['blocks', 'blocksDuplicate', 'blocksEncoded', 'blocksHeld', 'blocksReused', 'blocksShifted', 'contextTokens', 'encodeMs', 'encodedPaths', 'entriesRewritten', 'files', 'size', 'skipped', 'skippedByReason']);
    assert.deepEqual(first.encodedPaths, ['docs/lily.txt', 'docs/max.txt']);
    assert.equal(first.files, 2);
    assert.equal(first.blocksEncoded, first.blocks);
    assert.equal(first.blocksDuplicate, 0);
    const second = cli(['index', ...common]);
    assert.equal(second.blocksEncoded, 0);
    assert.equal(second.blocksReused, first.blocks);

    const star = cli(['ask', ...common, '--question', 'Who is Max?', '--max-tokens', '6']);
    const stats = star.stats as Record<string, number>;
    assert.equal(typeof star.answer, 'string');
    assert.ok(Array.isArray(star.ids) && (star.ids as number[]).length > 0);
    for (const k of ['blocks', 'blocksEncoded', 'blocksReused', 'contextTokens', 'encodeMs', 'ttftMs', 'decodeTokensPerSec']) assert.equal(typeof stats[k], 'number', k);
    assert.equal(stats.blocksEncoded, 0, 'ask after index reuses every block');
    const sources = star.sources as { path: string; share: number }[];
    assert.deepEqual(sources.map((s) => s.path).sort(), ['docs/lily.txt', 'docs/max.txt']);
    assert.ok(sources[0]!.share >= sources[1]!.share);

    // The baseline runs exactly the same tokens; on two short files it answers the same way.
    const global = cli(['ask', ...common, '--question', 'Who is Max?', '--max-tokens', '6', '--mode', 'global']);
    assert.equal((global.stats as Record<string, number>).contextTokens, stats.contextTokens);
    assert.deepEqual(global.ids, star.ids);
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }

  const golden = readGolden<{ star_vs_global_case: { results_by_block_size: Record<string, { kl_mean: number; top1_agreement: number }> } }>('stories260K.golden.json');
  const cmp = cli(['compare', '--model', modelPath('stories260K.gguf'), '--ids', resolve(sharedDir, 'golden/stories260K.golden.json'),
    '--context-tokens', '384', '--chunk-size', '128', '--backend', 'cpu', '--json']);
  const want = golden.star_vs_global_case.results_by_block_size['128']!;
  assertKlClose(cmp.klMean as number, want.kl_mean, 'compare --chunk-size 128');
  assertAgreementEqual({ top1Agreement: cmp.top1Agreement as number, positions: cmp.positions as number }, want.top1_agreement, 127, 'compare --chunk-size 128');
});

test('star-ask index writes f16 entries by default that the next run reuses; --cache-dtype f32 and q8 are other keys; a bad value is refused', () => {
  const repo = mkdtempSync(join(tmpdir(), 'star-cli-f16-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-cli-f16-kv-'));
  try {
    writeFileSync(join(repo, 'max.txt'), 'Tom had a dog named Max. Max liked to run and jump in the park.\n');
    const common = ['--repo', repo, '--model', modelPath('stories260K.gguf'), '--chunk-size', '64', '--backend', 'cpu', '--cache-dir', cacheDir, '--json'];
    const first = cli(['index', ...common]);
    assert.ok((first.blocksEncoded as number) > 0);
    const entries = (readdirSync(cacheDir, { recursive: true }) as string[])
      .map((p) => join(cacheDir, p)).filter((p) => statSync(p).isFile())
      .map((p) => readFileSync(p)).filter((b) => b.length >= 12 && b.readUInt32LE(0) === KV_FILE_MAGIC);
    assert.equal(entries.length, first.blocksEncoded, 'one entry per encoded block');
    for (const e of entries) assert.equal(e.readUInt32LE(8), 1, 'dtype code 1 (f16) in the entry header');
    assert.equal(cli(['index', ...common, '--cache-dtype', 'f16']).blocksEncoded, 0, 'f16 entries reused');
    assert.equal(cli(['index', ...common, '--cache-dtype', 'f32']).blocksEncoded, first.blocksEncoded, 'f32 is another key: encoded again');
    assert.equal(cli(['index', ...common, '--cache-dtype', 'auto']).blocksEncoded, 0, 'auto: f16 where the repository fits the context');
    assert.equal(cli(['index', ...common, '--cache-dtype', 'q8']).blocksEncoded, first.blocksEncoded, 'q8 is another key: encoded again');
    assert.equal(cli(['index', ...common, '--cache-dtype', 'q8']).blocksEncoded, 0, 'q8 entries reused');
    const bad = runCli(['index', ...common, '--cache-dtype', 'f8']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--cache-dtype must be f32, f16, q8, or auto \(got f8\)/);
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
