// The disk cache under the faults a user causes: `index` killed with SIGKILL at random points (ten rounds), and two
// `index` processes writing the same cache folder at once. Afterwards every entry on disk is whole (checksummed),
// a clean `index` reuses exactly the entries there and encodes only the missing blocks, and `ask` gives the same
// answer ids as on an untouched cache. Real processes (the built CLI), real model (stories260K), real files.
// The kill times are random (seeded); what is asserted holds whenever the kill lands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KvDiskCache } from '../src/node/cache/kvDiskCache';
import { runCli } from './support/cli';
import { modelPath, repoRoot } from './support/paths';
import { withTempDir } from './support/tempDir';

const ROUNDS = 10;
const WORDS = ['Tom', 'Lily', 'Max', 'dog', 'ball', 'park', 'sun', 'tree', 'bird', 'cake', 'red', 'big', 'ran', 'saw', 'liked', 'found'];

/** A small repository of varied lines (with its anchor and headers it must fit the test model's 2048-token context). */
function writeRepo(dir: string): void {
  let seed = 7;
  const word = () => WORDS[(seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % WORDS.length]!;
  mkdirSync(join(dir, 'docs'), { recursive: true });
  for (let f = 0; f < 4; f++) {
    const lines = Array.from({ length: 4 }, (_, l) => `${l + 1}. ${Array.from({ length: 8 }, word).join(' ')}.`);
    writeFileSync(join(dir, 'docs', `story${f}.txt`), lines.join('\n') + '\n');
  }
}

interface IndexJson { blocks: number; blocksEncoded: number; blocksReused: number; blocksDuplicate: number }

function cliJson<T>(args: string[]): { value: T; stderr: string } {
  const r = runCli(args, 120_000);
  assert.equal(r.status, 0, `star-ask ${args.join(' ')}: ${r.stderr}`);
  return { value: JSON.parse(r.stdout) as T, stderr: r.stderr };
}

/** Runs `star-ask index` and SIGKILLs it after `delayMs` (if still running); resolves with how it ended. */
function indexKilledAfter(args: string[], delayMs: number): Promise<'killed' | 'finished'> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve(repoRoot, 'dist/cli.mjs'), 'index', ...args], { cwd: repoRoot, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') done('killed');
      else if (code === 0) done('finished');
      else fail(new Error(`index exited with ${code}`));
    });
  });
}

/** Entries on disk, each read back through the checksummed reader; any damaged one fails the test. */
async function validEntries(cacheDir: string): Promise<number> {
  const warnings: string[] = [];
  const cache = new KvDiskCache({ dir: cacheDir, maxSizeBytes: 1 << 30, onWarning: (m) => warnings.push(m) });
  let valid = 0;
  for (const name of readdirSync(cacheDir).filter((n) => /^[0-9a-f]{64}\.kv$/.test(n))) {
    if (await cache.get(name.slice(0, 64))) valid++;
  }
  assert.deepEqual(warnings, [], 'no half-written or damaged entry after the kill');
  return valid;
}

test('index killed with SIGKILL at random points, ten rounds: the next run reuses what was stored and answers the same', async (t) => {
  await withTempDir('star-crash-', async (dir) => {
    const repo = join(dir, 'repo');
    writeRepo(repo);
    // The JS reference backend: the WebAssembly one finishes this phase 1 in a few hundred ms, before most kills land.
    const common = (cacheDir: string) => ['--repo', repo, '--model', modelPath('stories260K.gguf'), '--backend', 'cpu-ref', '--chunk-size', '48', '--cache-dir', cacheDir];
    const ask = (cacheDir: string) => cliJson<{ ids: number[] }>(['ask', ...common(cacheDir), '--question', 'Who found the ball?', '--max-tokens', '6', '--json']).value.ids;

    // The untouched run.
    const untouched = join(dir, 'kv-untouched');
    const reference = cliJson<IndexJson>(['index', ...common(untouched), '--json']).value;
    // Blocks with identical tokens share one entry (see IndexStats.blocksDuplicate).
    const entries = reference.blocks - reference.blocksDuplicate;
    assert.ok(entries >= 10, `${entries} distinct blocks`);
    const referenceIds = ask(untouched);

    let seed = 20261129;
    const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const rounds: string[] = [];
    let recovered = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const cacheDir = join(dir, `kv-${round}`);
      // Model loading takes ~0.3 s and phase 1 about a second here: kills land before, during and (rarely) after it.
      const delayMs = Math.round(250 + random() * 1500);
      const ended = await indexKilledAfter([...common(cacheDir), '--json'], delayMs);
      mkdirSync(cacheDir, { recursive: true });
      const kept = await validEntries(cacheDir);
      const clean = cliJson<IndexJson>(['index', ...common(cacheDir), '--json']).value;
      assert.equal(clean.blocks, reference.blocks);
      assert.equal(clean.blocksEncoded, entries - kept, `round ${round}: only the missing blocks are encoded, every stored entry is reused`);
      assert.deepEqual(readdirSync(cacheDir).filter((n) => n.includes('.tmp-')), [], 'a dead writer\'s temp files are cleaned up');
      const ids = ask(cacheDir);
      assert.deepEqual(ids, referenceIds, `round ${round}: the same answer as on an untouched cache`);
      recovered++;
      rounds.push(`${ended} after ${delayMs} ms with ${kept}/${entries} entries stored`);
      rmSync(cacheDir, { recursive: true, force: true });
    }
    t.diagnostic(`${recovered}/${ROUNDS} rounds recovered with identical answer ids`);
    for (const r of rounds) t.diagnostic(r);
    assert.ok(rounds.some((r) => r.startsWith('killed') && !r.includes(` 0/`) && !r.includes(` ${entries}/`)),
      'at least one kill landed in the middle of phase 1');
  });
});

test('two index processes on the same cache folder at once: both succeed, nothing damaged, the next run encodes nothing', async () => {
  await withTempDir('star-concurrent-', async (dir) => {
    const repo = join(dir, 'repo');
    writeRepo(repo);
    const cacheDir = join(dir, 'kv');
    const args = ['--repo', repo, '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--chunk-size', '48', '--cache-dir', cacheDir, '--json'];
    const run = () => new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, [resolve(repoRoot, 'dist/cli.mjs'), 'index', ...args], { cwd: repoRoot });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('exit', (code) => done({ code, stderr }));
    });
    const both = await Promise.all([run(), run()]);
    for (const r of both) {
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /warning/, 'no entry was seen half-written or damaged');
    }
    const blocks = cliJson<IndexJson>(['index', ...args]).value;
    assert.equal(await validEntries(cacheDir), blocks.blocks - blocks.blocksDuplicate);
    assert.equal(blocks.blocksEncoded, 0);
    assert.equal(blocks.blocksReused, blocks.blocks);
  });
});
