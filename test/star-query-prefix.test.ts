// A question's lead run on the hosts before the question is typed (RepoSession.prepare, Ask About Selection):
// the answer, its ids and its sources are those of the same question asked whole, on the worker-thread pool (the
// host runtime the webview's workers run too) and in process; only the typed words run after the ask. A prefix
// over blocks that changed since, or one another question came between, is not used: the whole query runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../src/engine/model/types';
import { buildQuery, queryLead, type LedQuestion } from '../src/engine/star/prompt';
import { createInProcessHostPool, createThreadHostPool, type HostPool } from '../src/node/star/hostPool';
import { RepoSession, type AskResult } from '../src/node/star/repoSession';
import { modelOpener } from './support/models';
import { modelPath, repoRoot } from './support/paths';
import { withTempDir } from './support/tempDir';

const openShared = modelOpener();
const workerScript = `${repoRoot}/dist/hostWorker.mjs`;
const ASK = { maxTokens: 8, temperature: 0 };
const LEAD = '(max.txt: Tom had a dog named Max.)';
const QUESTION: LedQuestion = { lead: LEAD, question: ' Who is Max?' };

function makeRepo(dir: string): void {
  writeFileSync(join(dir, 'max.txt'), 'Tom had a dog named Max.\nMax ran in the park.\nMax was happy.\n');
  writeFileSync(join(dir, 'lily.txt'), 'Lily had a red ball.\nShe threw it high.\nThe ball fell down.\n');
  writeFileSync(join(dir, 'sun.txt'), 'The sun was warm.\nThe birds sang.\nIt was a good day.\n');
}

/** The same question asked whole, by a session of its own on a pool of its own (the reference). */
async function askedWhole(model: LoadedModel, repo: string): Promise<AskResult> {
  const pool = await createInProcessHostPool(model, { backend: 'cpu', hosts: 2 });
  try {
    return await new RepoSession({ repo, model, pool, chunkSize: 40 }).ask(() => QUESTION, ASK);
  } finally {
    await pool.dispose();
  }
}

function assertSameAnswer(got: AskResult, want: AskResult, what: string): void {
  assert.deepEqual(got.ids, want.ids, `${what}: ids`);
  assert.equal(got.answer, want.answer, `${what}: answer`);
  assert.equal(got.stats.queryTokens, want.stats.queryTokens, `${what}: query tokens`);
  assert.deepEqual(got.sources.map((s) => s.path), want.sources.map((s) => s.path), `${what}: sources`);
  for (const [i, s] of want.sources.entries()) assert.ok(Math.abs(got.sources[i]!.share - s.share) < 1e-5, `${what}: share of ${s.path}: ${got.sources[i]!.share} vs ${s.share}`);
  assert.ok(Math.abs(got.stats.anchorShare - want.stats.anchorShare) < 1e-5, `${what}: anchor share`);
}

for (const kind of ['thread', 'in-process'] as const) {
  test(`a lead prefilled before the question is typed gives the whole question's answer and shares; an edit or another question between drops it (${kind} pool, cpu)`, async () => {
    const model = await openShared('stories260K.gguf');
    await withTempDir('star-prefix-repo-', async (repo) => {
      makeRepo(repo);
      const leadIds = queryLead(LEAD, model.tokenizer, model.chatTemplate, { bosToken: model.tokenizer.bos !== undefined ? model.tokenizer.tokenText(model.tokenizer.bos) : undefined });
      const whole = buildQuery(QUESTION, model.tokenizer, model.chatTemplate, { bosToken: model.tokenizer.bos !== undefined ? model.tokenizer.tokenText(model.tokenizer.bos) : undefined });
      assert.deepEqual(whole.slice(0, leadIds.length), leadIds, 'the lead\'s ids are the query\'s first ids');
      const want = await askedWhole(model, repo);
      assert.equal(want.stats.prefilledTokens, 0);

      const pool: HostPool = kind === 'thread'
        ? await createThreadHostPool({ modelPath: modelPath('stories260K.gguf'), backend: 'cpu', hosts: 2, workerScript })
        : await createInProcessHostPool(model, { backend: 'cpu', hosts: 2 });
      try {
        const session = new RepoSession({ repo, model, pool, chunkSize: 40 });
        // Nothing indexed yet: nothing to run ahead over.
        assert.equal(await session.prepare(() => LEAD, ASK), 0);
        await session.index();
        const seen: string[] = [];
        assert.equal(await session.prepare((holds) => { seen.push(String(holds('max.txt')), String(holds('none.txt'))); return LEAD; }, ASK), leadIds.length);
        assert.deepEqual(seen, ['true', 'false'], 'prepare writes the lead from the index\'s holds()');
        let streamed = '';
        const got = await session.ask(() => QUESTION, { ...ASK, onText: (t) => { streamed += t; } });
        assert.equal(got.stats.prefilledTokens, leadIds.length, 'the prefilled lead was used');
        assert.equal(got.question, LEAD + QUESTION.question);
        assert.equal(streamed, got.answer);
        assertSameAnswer(got, want, 'prefilled');

        // Another question between: it drops the prefix (the next ask runs whole, same answer).
        assert.equal(await session.prepare(() => LEAD, ASK), leadIds.length);
        await session.ask('Who is Lily?', ASK);
        const after = await session.ask(() => QUESTION, ASK);
        assert.equal(after.stats.prefilledTokens, 0, 'a prefix consumed by another question is not used');
        assertSameAnswer(after, want, 'after another question');

        // An edit between: the question's own index changes the blocks, the prefix is dropped.
        assert.equal(await session.prepare(() => LEAD, ASK), leadIds.length);
        appendFileSync(join(repo, 'sun.txt'), 'Then it rained.\n');
        const edited = await session.ask(() => QUESTION, ASK);
        assert.equal(edited.stats.prefilledTokens, 0, 'a prefix over blocks that changed is not used');
        assertSameAnswer(edited, await askedWhole(model, repo), 'after an edit');

        // A lead the query does not start with (the question is asked otherwise): not used.
        assert.ok(await session.prepare(() => '(sun.txt: The sun was warm.)', ASK) > 0);
        const other = await session.ask(() => QUESTION, ASK);
        assert.equal(other.stats.prefilledTokens, 0);
        // And no lead: nothing run.
        assert.equal(await session.prepare(() => undefined, ASK), 0);
      } finally {
        await pool.dispose();
      }
    });
  });
}
