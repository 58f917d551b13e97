// RepoSession over the host pools: every host in worker threads answers a repository question with the in-process
// pool's ids and shares; the hosts keep their blocks between questions (a second ask sends no block: no encode, no
// load); an edit re-encodes only the edited file's blocks and keeps the others on the hosts (moved there), with the
// answer of a fresh session; sources carry the files' line spans; phase 2 never runs past the model's context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../src/engine/errors';
import type { StarHost } from '../src/engine/star/host';
import { createInProcessHostPool, createThreadHostPool, type HostPool } from '../src/node/star/hostPool';
import { RepoSession } from '../src/node/star/repoSession';
import { modelOpener } from './support/models';
import { modelPath, repoRoot } from './support/paths';
import { withTempDir } from './support/tempDir';

const openShared = modelOpener();
const workerScript = `${repoRoot}/dist/hostWorker.mjs`;

function makeRepo(dir: string): void {
  mkdirSync(join(dir, 'docs'));
  writeFileSync(join(dir, 'docs', 'max.txt'), 'Tom had a dog named Max.\nMax ran in the park.\nMax was happy.\n');
  writeFileSync(join(dir, 'docs', 'lily.txt'), 'Lily had a red ball.\nShe threw it high.\nThe ball fell down.\n');
  writeFileSync(join(dir, 'sun.txt'), 'The sun was warm.\nThe birds sang.\nIt was a good day.\n');
}

/** The pool with its hosts' encode and load calls counted (what a session sends them). */
function counted(pool: HostPool): { pool: HostPool; calls: { encode: number; load: number } } {
  const calls = { encode: 0, load: 0 };
  const wrap = (h: StarHost): StarHost => ({
    name: h.name,
    encode: (a, b, s) => { calls.encode += b.length; return h.encode(a, b, s); },
    load: (b) => { calls.load += b.length; return h.load(b); },
    blockIndices: () => h.blockIndices(), attend: (l, q, r, p) => h.attend(l, q, r, p), clear: () => h.clear(), dispose: () => h.dispose(),
    drop: (i) => h.drop!(i), move: (m) => h.move!(m),
  });
  return { pool: { ...pool, hosts: pool.hosts.map(wrap), answer: pool.answer, clear: pool.clear, dispose: pool.dispose }, calls };
}

test('worker-thread pool vs in-process pool: same ids and shares; a second ask sends no block; an edit re-encodes one file and moves the rest (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  await withTempDir('star-session-repo-', async (repo) => {
    makeRepo(repo);
    await withTempDir('star-session-kv-', async (cacheDir) => {
      const ask = { maxTokens: 8, temperature: 0 };
      const inProcess = await createInProcessHostPool(model, { backend: 'cpu', hosts: 2 });
      // With a cache of its own: the cache's f16 KV is what both pools' hosts encode and attend to.
      const want = await withTempDir('star-session-kv-in-process-', (inProcessCache) => new RepoSession({ repo, model, pool: inProcess, chunkSize: 40, cacheDir: inProcessCache })
        .ask('Who is Max?', ask).finally(() => inProcess.dispose()));

      const threads = await createThreadHostPool({ modelPath: modelPath('stories260K.gguf'), backend: 'cpu', hosts: 2, workerScript });
      const { pool, calls } = counted(threads);
      try {
        const session = new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir });
        let streamed = '';
        const got = await session.ask('Who is Max?', { ...ask, onText: (t) => { streamed += t; } });
        assert.ok(got.stats.blocks >= 4, `only ${got.stats.blocks} blocks`);
        assert.deepEqual(got.ids, want.ids);
        assert.equal(got.answer, want.answer);
        assert.equal(streamed, got.answer);
        assert.deepEqual(got.sources.map((s) => s.path), want.sources.map((s) => s.path));
        for (const [i, s] of want.sources.entries()) assert.ok(Math.abs(got.sources[i]!.share - s.share) < 1e-5, `share of ${s.path}`);
        assert.ok(Math.abs(got.stats.anchorShare - want.stats.anchorShare) < 1e-5);
        // Every file is in the context whole (over one or more blocks): its pieces' spans merge into its 3 lines.
        for (const s of got.sources) assert.deepEqual(s.spans, [{ startLine: 1, endLine: 3 }], s.path);
        assert.equal(got.stats.blocksDuplicate, 0);
        assert.equal(calls.encode, got.stats.blocks);
        assert.deepEqual(got.stats.encodedPaths, ['docs/lily.txt', 'docs/max.txt', 'sun.txt']);

        // Second question: the hosts hold every block already.
        calls.encode = calls.load = 0;
        const again = await session.ask('Who is Lily?', ask);
        assert.deepEqual(calls, { encode: 0, load: 0 }, 'a second ask sends no block to the hosts');
        assert.equal(again.stats.blocksHeld, again.stats.blocks);
        assert.equal(again.stats.blocksEncoded, 0);

        // An edit of the first file: its blocks are encoded; every other block stays on its host, renumbered and
        // re-rotated there when it moved; no KV is sent.
        appendFileSync(join(repo, 'docs', 'lily.txt'), 'Then it rained.\n');
        const edited = await session.index();
        assert.deepEqual(edited.encodedPaths, ['docs/lily.txt']);
        assert.ok(edited.blocksEncoded >= 1 && edited.blocksEncoded < edited.blocks - 1, `${edited.blocksEncoded} of ${edited.blocks} encoded`);
        assert.equal(calls.encode, edited.blocksEncoded);
        assert.equal(calls.load, 0, 'the unchanged blocks stay on the hosts');
        assert.equal(edited.blocksHeld, edited.blocks - edited.blocksEncoded);
        assert.ok(edited.blocksShifted > 0, 'the blocks after the edited file moved');
        process.stderr.write(`[session] edit: ${edited.blocksEncoded} encoded, ${edited.blocksHeld} held (${edited.blocksShifted} moved) of ${edited.blocks}\n`);
        const afterEdit = await session.ask('Who is Max?', ask);
        assert.equal(afterEdit.stats.blocksHeld, afterEdit.stats.blocks);
        // The same answer as a fresh session (every block from the disk cache, the moved ones rotated here).
        const fresh = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
        const want2 = await new RepoSession({ repo, model, pool: fresh, chunkSize: 40, cacheDir }).ask('Who is Max?', ask).finally(() => fresh.dispose());
        assert.equal(want2.stats.blocksEncoded, 0);
        assert.deepEqual(afterEdit.ids, want2.ids);
        for (const x of want2.sources) assert.ok(Math.abs(afterEdit.sources.find((y) => y.path === x.path)!.share - x.share) < 1e-3, `share of ${x.path} after the edit`);
        assert.ok(Math.abs(afterEdit.stats.anchorShare - want2.stats.anchorShare) < 1e-3);
      } finally {
        await pool.dispose();
      }
    });
  });
});

test('phase 2 caps the answer at the model context and refuses a context that leaves no room', async () => {
  const model = await openShared('stories260K.gguf');
  const pool = await createInProcessHostPool(model, { backend: 'cpu' });
  try {
    const limit = model.config.contextLength;
    // No blocks held: the positions alone matter here.
    const r = await pool.answer({ contextLength: limit - 5, query: [1], maxTokens: 100, temperature: 0, attentionShares: false }, () => {});
    assert.equal(r.capped, 4);
    assert.ok(r.ids.length <= 4);
    if (r.ids.length === 4) assert.equal(r.finish, 'context');
    await assert.rejects(pool.answer({ contextLength: limit - 1, query: [1], maxTokens: 10, temperature: 0, attentionShares: false }, () => {}),
      (err: unknown) => err instanceof EngineError && /fill the model's context/.test(err.message));
  } finally {
    await pool.dispose();
  }
});

test('a session re-encodes only changed text: an unchanged re-index runs the tokenizer 0 times, an edit only on new pieces (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  await withTempDir('star-session-tok-', async (repo) => {
    makeRepo(repo);
    for (let i = 0; i < 20; i++) writeFileSync(join(repo, `note${i}.txt`), `Note ${i}: the cat sat on the mat.\nIt was day ${i}.\n`);
    const pool = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
    try {
      const session = new RepoSession({ repo, model, pool, chunkSize: 40 });
      await session.index();
      const cold = session.piecesEncoded;
      assert.ok(cold > 20, `a cold index encodes every file's pieces (${cold})`);
      await session.index();
      assert.equal(session.piecesEncoded, cold, 'an unchanged repository is not encoded again');
      appendFileSync(join(repo, 'sun.txt'), 'The moon came up.\n');
      const asked = await session.ask('Who is Max?', { maxTokens: 6, temperature: 0 });
      const edit = session.piecesEncoded - cold;
      assert.ok(edit > 0 && edit < cold / 4, `an edit encodes the changed file's pieces and little else (${edit} of ${cold})`);
      // Pieces from the cache build the same layout: a fresh session (nothing cached) answers alike.
      const fresh = await new RepoSession({ repo, model, pool, chunkSize: 40 }).ask('Who is Max?', { maxTokens: 6, temperature: 0 });
      assert.deepEqual(asked.ids, fresh.ids);
      assert.equal(asked.stats.contextTokens, fresh.stats.contextTokens);
    } finally {
      await pool.dispose();
    }
  });
});

test('a question written after the index: holds() says which files the index has (walked and packed, not ignored or skipped), and the answer is the string question\'s (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  await withTempDir('star-session-holds-', async (repo) => {
    makeRepo(repo);
    writeFileSync(join(repo, '.gitignore'), 'ignored.txt\n');
    writeFileSync(join(repo, 'ignored.txt'), 'Nobody reads this.\n');
    writeFileSync(join(repo, 'stamp.generated.ts'), "export const ID = 'x';\n");
    const pool = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
    try {
      const session = new RepoSession({ repo, model, pool, chunkSize: 40 });
      const seen: Record<string, boolean> = {};
      const got = await session.ask((holds) => {
        for (const p of ['docs/max.txt', 'sun.txt', 'ignored.txt', 'stamp.generated.ts', 'docs', 'missing.txt']) seen[p] = holds(p);
        return 'Who is Max?';
      }, { maxTokens: 6, temperature: 0 });
      assert.deepEqual(seen, { 'docs/max.txt': true, 'sun.txt': true, 'ignored.txt': false, 'stamp.generated.ts': false, docs: false, 'missing.txt': false });
      const plain = await session.ask('Who is Max?', { maxTokens: 6, temperature: 0 });
      assert.deepEqual(got.ids, plain.ids);
      assert.equal(got.question, 'Who is Max?', 'the result carries the question as written');
    } finally {
      await pool.dispose();
    }
  });
});

test('a new directory does not re-key every block: the anchor keeps the last index\'s overview (kept on disk for the next session) until a quarter of the outline changed (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  await withTempDir('star-session-overview-', async (root) => {
    const repo = join(root, 'repo'), cacheDir = join(root, 'cache');
    mkdirSync(repo);
    makeRepo(repo);
    for (let i = 0; i < 6; i++) {
      mkdirSync(join(repo, `part${i}`));
      writeFileSync(join(repo, `part${i}`, 'notes.txt'), `Part ${i}: the cat sat on the mat.\nIt was day ${i}.\n`);
    }
    const pool = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
    try {
      // An anchor that holds the whole outline, so a rebuilt overview changes it.
      const session = () => new RepoSession({ repo, model, pool, chunkSize: 40, anchorSize: 400, cacheDir });
      const first = await session().index();
      assert.ok(first.encodedPaths.length >= 9, `a cold index encodes every file (${first.encodedPaths})`);
      // One new top-level directory (an outline of 10 entries gains one): a new session, from the disk cache, encodes
      // the new file's block and reads every other block from disk, so the anchor is the one they were encoded after.
      mkdirSync(join(repo, 'extra'));
      writeFileSync(join(repo, 'extra', 'added.txt'), 'A new file about a fox.\n');
      const added = await session().index();
      assert.ok(added.encodedPaths.includes('extra/added.txt'), `the new file is encoded (${added.encodedPaths})`);
      assert.ok(added.encodedPaths.length <= 3, `only the new file's block is encoded, not every block (${added.encodedPaths})`);
      assert.ok(added.blocksReused >= added.blocks - 3, `${added.blocksReused} of ${added.blocks} blocks reused`);
      // Six more directories: more than a quarter of the outline is new, so the overview is rebuilt and every block
      // is encoded after the new anchor.
      for (let i = 0; i < 6; i++) {
        mkdirSync(join(repo, `more${i}`));
        writeFileSync(join(repo, `more${i}`, 'x.txt'), `More ${i}.\n`);
      }
      const moved = await session().index();
      assert.ok(moved.encodedPaths.includes('sun.txt') && moved.encodedPaths.includes('docs/max.txt'),
        `a rebuilt overview re-encodes the unchanged files too (${moved.encodedPaths})`);
    } finally {
      await pool.dispose();
    }
  });
});

test('keepPieces: a new session of the same model and repository tokenizes nothing the last one left on disk, and builds the same layout (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  await withTempDir('star-session-pieces-', async (root) => {
    const repo = join(root, 'repo'), cacheDir = join(root, 'cache');
    mkdirSync(repo);
    makeRepo(repo);
    for (let i = 0; i < 10; i++) writeFileSync(join(repo, `note${i}.txt`), `Note ${i}: the cat sat on the mat.\nIt was day ${i}.\n`);
    const pool = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
    try {
      const first = new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir, keepPieces: true });
      await first.index();
      assert.ok(first.piecesEncoded > 10, `a cold session tokenizes every file (${first.piecesEncoded})`);
      const second = new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir, keepPieces: true });
      const asked = await second.ask('Who is Max?', { maxTokens: 6, temperature: 0 });
      assert.equal(second.piecesEncoded, 0, 'the next session tokenizes nothing');
      // The same answer as a session that tokenized everything itself (no pieces kept, no disk cache).
      const fresh = await new RepoSession({ repo, model, pool, chunkSize: 40 }).ask('Who is Max?', { maxTokens: 6, temperature: 0 });
      assert.deepEqual(asked.ids, fresh.ids);
      assert.equal(asked.stats.contextTokens, fresh.stats.contextTokens);
      // An edit: the next session tokenizes the changed file's pieces only; a damaged file is a miss, not an error.
      appendFileSync(join(repo, 'sun.txt'), 'The moon came up.\n');
      const third = new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir, keepPieces: true });
      await third.index();
      assert.ok(third.piecesEncoded > 0 && third.piecesEncoded < first.piecesEncoded / 4, `${third.piecesEncoded} of ${first.piecesEncoded}`);
      for (const f of readdirSync(join(cacheDir, 'pieces'))) writeFileSync(join(cacheDir, 'pieces', f), '{"version":1,"entries":[["x", "not ids"]]}');
      const damaged = new RepoSession({ repo, model, pool, chunkSize: 40, cacheDir, keepPieces: true });
      await damaged.index();
      assert.ok(damaged.piecesEncoded >= first.piecesEncoded, 'a damaged file is read as none');
    } finally {
      await pool.dispose();
    }
  });
});
