// A repository larger than the model's context answered, not refused (issue 15): stories260K (2,048-token
// context) over ~7,700 tokens of files. The blocks are encoded right after the anchor, a question's blocks are
// selected (lexically, and in two stages: BM25 candidates ordered by the question's exact attention to their keys),
// and the answer's ids equal an
// independent Star run over exactly the selected blocks placed the same way (encodeContext + answerQuery on fresh
// hosts, no session, no selection code); 1 and 2 hosts give the same ids; sources come from selected files only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askRepository, indexRepository, type AskResult } from '../src/node/star/starRepository';
import { createInProcessHostPool } from '../src/node/star/hostPool';
import { RepoSession } from '../src/node/star/repoSession';
import { attendedLine } from '../src/node/star/selectionText';
import { buildRepoLayout } from '../src/node/star/repoLayout';
import { createLocalHosts } from '../src/node/star/localHosts';
import { encodeContext } from '../src/engine/star/context';
import { answerQuery } from '../src/engine/star/answer';
import { buildQuery } from '../src/engine/star/prompt';
import { shiftBlockKv } from '../src/engine/star/shift';
import type { BlockSpec } from '../src/engine/star/types';
import type { LoadedModel } from '../src/engine/model/types';
import { modelOpener } from './support/models';

const openShared = modelOpener();
const NAMES = ['Lily', 'Tom', 'Sue', 'Ben', 'Max', 'Anna', 'Sam', 'Mia'];
const THINGS = ['ball', 'dog', 'cake', 'tree', 'boat', 'kite', 'hat', 'box'];
const QUESTION = 'Where did the purple dragon zorblax live?';
const CHUNK = 128;
const MAX_TOKENS = 12;

function makeRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'selection-repo-'));
  for (let i = 0; i < 60; i++) {
    const [n, t] = [NAMES[i % 8]!, THINGS[(i * 3) % 8]!];
    const text = [`${n} had a ${t}. ${n} liked the ${t} very much.`, `One day ${n} went to the park with the ${t}.`, 'The sun was warm and the birds sang.',
      `${n} and a friend played with the ${t} all day.`, `At night ${n} put the ${t} in a box and slept.`];
    if (i === 37) text.push('The purple dragon zorblax lived under the bridge.');
    writeFileSync(join(dir, `story${String(i).padStart(2, '0')}.txt`), text.join('\n') + '\n');
  }
  return dir;
}

/** The independent path: the selected blocks at their placement (anchor, then contiguous), one plain Star answer. */
async function answerOver(model: LoadedModel, repo: string, attended: readonly number[], hosts: number): Promise<number[]> {
  const { layout } = await buildRepoLayout({ repo, model, chunkSize: CHUNK });
  let at = layout.anchor.length;
  const blocks: BlockSpec[] = [layout.blocks[0]!];
  attended.forEach((index, i) => {
    const tokens = layout.blocks[index]!.tokens;
    blocks.push({ index: i + 1, tokens, start: at });
    at += tokens.length;
  });
  const local = await createLocalHosts(model, { backend: 'cpu', hosts });
  try {
    const c = model.config;
    await encodeContext({
      modelIdentity: model.identity, anchor: layout.anchor, blocks, hosts: local.hosts, kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      shift: (kv, start) => shiftBlockKv(local.query.backend, kv, start, c.headDim, c.rope),
    });
    const tok = model.tokenizer;
    const query = buildQuery(QUESTION, tok, model.chatTemplate, { bosToken: tok.bos !== undefined ? tok.tokenText(tok.bos) : undefined });
    const r = await answerQuery({ transformer: local.query, tokenizer: tok }, local.hosts, local.hosts[0], {
      contextLength: at, query, maxTokens: MAX_TOKENS, temperature: 0, attentionShares: false,
    }, () => {});
    return r.ids;
  } finally {
    await local.dispose();
  }
}

function checkSelected(r: AskResult, repoTokens: number): void {
  const s = r.stats.selection;
  assert.equal(r.stats.size.positions, 'local');
  assert.equal(r.stats.size.repositoryTokens, repoTokens);
  assert.ok(r.stats.size.repositoryTokens > 3 * r.stats.size.modelContext, `${r.stats.size.repositoryTokens} tokens`);
  assert.ok(s.blocks > 0 && s.blocks < s.of, `${s.blocks} of ${s.of}`);
  assert.ok(r.ids.length > 0);
  // The question, its context and the answer fit the model's context.
  assert.ok(r.stats.size.anchorTokens + s.tokens + r.stats.queryTokens + MAX_TOKENS <= r.stats.size.modelContext);
  assert.ok(r.sources.length > 0);
}

test('a repository 3.7x the context is answered from selected blocks; ids equal an independent run over them; 1 and 2 hosts agree (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  const repo = makeRepo();
  try {
    const common = { repo, model, chunkSize: CHUNK, backend: 'cpu' as const, question: QUESTION, maxTokens: MAX_TOKENS, temperature: 0 };
    const { layout, spans } = await buildRepoLayout({ repo, model, chunkSize: CHUNK });
    const needle = spans.findIndex((sp) => sp.some((p) => p.path === 'story37.txt'));

    // Lexical: the block with the question's rare words is attended; the rest fills in repository order.
    const lexical = await askRepository({ ...common, selection: 'lexical' });
    checkSelected(lexical, layout.contextLength);
    assert.equal(lexical.stats.selection.ranking, 'lexical');
    assert.ok(lexical.stats.selection.attended.includes(needle), `block ${needle} (story37) attended`);
    // No disk cache: every selected block was encoded on demand at its placement, so the independent path is exact.
    assert.equal(lexical.stats.selection.encodedOnDemand, lexical.stats.selection.blocks);
    const attendedFiles = new Set(lexical.stats.selection.attended.flatMap((i) => spans[i]!.map((p) => p.path)));
    for (const s of lexical.sources) assert.ok(attendedFiles.has(s.path), `${s.path} is in a selected block`);
    assert.deepEqual(lexical.ids, await answerOver(model, repo, lexical.stats.selection.attended, 1));

    // Attention in two stages: BM25's candidates (about 3x what fits) read at local positions, ordered by the
    // question's exact attention to their keys; nothing is encoded in phase 1, nor summarised.
    const attention = await askRepository({ ...common, selection: 'attention' });
    checkSelected(attention, layout.contextLength);
    const s = attention.stats.selection;
    assert.equal(s.ranking, 'attention');
    assert.equal(attention.stats.blocksEncoded, 0);
    assert.ok(s.candidates && s.candidates.blocks > s.blocks && s.candidates.blocks < s.of, `${s.candidates?.blocks} candidates for ${s.blocks} of ${s.of}`);
    assert.ok(s.candidates!.tokens > s.tokens, `${s.candidates!.tokens} candidate tokens, ${s.tokens} attended`);
    assert.equal(s.candidates!.encoded, s.candidates!.blocks, 'no disk cache: every candidate encoded');
    assert.deepEqual(attention.ids, await answerOver(model, repo, s.attended, 1));
    const twoHosts = await askRepository({ ...common, selection: 'attention', hosts: 2 });
    assert.deepEqual(twoHosts.stats.selection.attended, attention.stats.selection.attended);
    assert.deepEqual(twoHosts.ids, attention.ids);
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

test('with a disk cache: index encodes every block once at local positions; a question loads only its selection, re-rotated; attention reads its candidates from disk, or encodes them when evicted (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  const repo = makeRepo();
  const cacheDir = mkdtempSync(join(tmpdir(), 'selection-kv-'));
  try {
    const common = { repo, model, chunkSize: CHUNK, backend: 'cpu' as const, cacheDir };
    const sizes: number[] = [];
    // Before any index, auto ranks lexically (no summary yet) and encodes only the selected blocks.
    const cold = await askRepository({ ...common, question: QUESTION, maxTokens: MAX_TOKENS, temperature: 0 });
    assert.equal(cold.stats.selection.ranking, 'lexical');
    assert.equal(cold.stats.selection.encodedOnDemand, cold.stats.selection.blocks);
    const indexed = await indexRepository({ ...common, onSized: (s) => sizes.push(s.repositoryTokens) });
    assert.equal(indexed.size.positions, 'local');
    assert.equal(indexed.blocksEncoded, indexed.blocks - 1 - cold.stats.selection.blocks, 'all but the anchor and the blocks the question encoded');
    assert.deepEqual(sizes, [indexed.contextTokens], 'the size is said once, before encoding');
    const r = await askRepository({ ...common, question: QUESTION, maxTokens: MAX_TOKENS, temperature: 0, selection: 'lexical' });
    assert.equal(r.stats.blocksEncoded, 0);
    assert.equal(r.stats.selection.encodedOnDemand, 0);
    assert.equal(r.stats.entriesRewritten, 0, 'selected entries stay at the start they were encoded at');
    checkSelected(r, indexed.contextTokens);
    const again = await indexRepository(common);
    assert.equal(again.blocksEncoded, 0);

    // By attention, warm: the candidates' KV comes from disk (nothing encoded). Then every KV entry evicted: the
    // same candidates (BM25's) are encoded again and stored, and ranked. (Not necessarily to the same order: a story
    // model's attention barely tells these blocks apart, and encoding them in other batches moves the last bits.)
    const ask = { ...common, question: QUESTION, maxTokens: MAX_TOKENS, temperature: 0, selection: 'attention' as const };
    const warm = await askRepository(ask);
    const auto = await askRepository({ ...ask, selection: 'auto' });
    assert.equal(auto.stats.selection.ranking, 'lexical', 'auto is lexical (blockSelection.ts: measured no worse)');
    assert.equal(warm.stats.selection.ranking, 'attention');
    assert.equal(warm.stats.blocksEncoded, 0);
    assert.equal(warm.stats.selection.encodedOnDemand, 0);
    assert.equal(warm.stats.selection.candidates!.encoded, 0, 'every candidate read from disk');
    for (const f of readdirSync(cacheDir)) if (f.endsWith('.kv')) rmSync(join(cacheDir, f));
    const evicted = await askRepository(ask);
    assert.equal(evicted.stats.selection.ranking, 'attention');
    assert.deepEqual({ ...evicted.stats.selection.candidates, encoded: 0 }, warm.stats.selection.candidates);
    assert.equal(evicted.stats.selection.candidates!.encoded, warm.stats.selection.candidates!.blocks);
    const entries = readdirSync(cacheDir).filter((f) => f.endsWith('.kv')).length;
    assert.ok(entries >= warm.stats.selection.candidates!.blocks, `${entries} entries stored again for ${warm.stats.selection.candidates!.blocks} candidates`);
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('a question during the index of a repository beyond the context waits for one group, not the index: answered from the ready blocks plus its selection encoded on demand; the index resumes (cpu)', async () => {
  const model = await openShared('stories260K.gguf');
  const repo = makeRepo();
  const cacheDir = mkdtempSync(join(tmpdir(), 'selection-kv-during-'));
  const pool = await createInProcessHostPool(model, { backend: 'cpu' });
  try {
    const session = new RepoSession({ repo, model, pool, chunkSize: CHUNK, cacheDir });
    const ask = { maxTokens: MAX_TOKENS, temperature: 0 };
    let asked: Promise<AskResult> | undefined;
    // The question comes as the first group of blocks is done (as the extension's would, queued behind the index).
    const first = await session.index({ onProgress: (p) => { if (!asked && p.done >= 1) asked = session.ask(QUESTION, ask); } });
    assert.ok(asked, 'the question was asked during the index');
    assert.equal(first.interrupted, true, 'the index stopped for the question');
    const during = await asked;
    const s = during.stats.selection;
    assert.equal(s.ranking, 'lexical');
    assert.ok(s.whileIndexing, 'the answer says it came while indexing');
    assert.equal(s.whileIndexing.of, first.blocks - 1);
    assert.equal(s.whileIndexing.ready, first.blocksSummarized);
    assert.ok(s.whileIndexing.ready > 0 && s.whileIndexing.ready < s.whileIndexing.of, `${s.whileIndexing.ready} of ${s.whileIndexing.of} ready`);
    assert.ok(s.encodedOnDemand > 0, 'the selected blocks not yet indexed were encoded for the question');
    assert.match(attendedLine(s), /ranked by lexical while indexing \(\d+ of \d+ blocks ready\), \d+ encoded on demand/);
    checkSelected(during, first.contextTokens);
    // Resumed: the rest is encoded (not what the first part or the question stored), and nothing interrupts it.
    const rest = await session.index();
    assert.equal(rest.interrupted, undefined);
    assert.equal(rest.blocksSummarized, rest.blocks - 1);
    assert.equal(rest.blocksEncoded, rest.blocks - 1 - (first.blocksSummarized ?? 0) - s.encodedOnDemand);
    const after = await session.ask(QUESTION, ask);
    assert.deepEqual(after.stats.selection.attended, s.attended, 'BM25 chose the same blocks before and after the index');
    assert.equal(after.stats.selection.whileIndexing, undefined);
    assert.equal(after.stats.selection.encodedOnDemand, 0);
  } finally {
    await pool.dispose();
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

/** npm's own copy of `nopt` (Debian's npm package; the Node image's npm has it too). */
const NOPT = ['/usr/lib/node_modules/npm/node_modules/nopt', '/usr/local/lib/node_modules/npm/node_modules/nopt'].find((p) => existsSync(p));

test('npm\'s nopt (12x stories260K\'s context) answered from its own files, the same ids with 1 and 2 hosts (cpu)', { skip: NOPT ? false : 'npm\'s nopt is not installed here (looked under /usr/lib and /usr/local/lib)' }, async () => {
  const model = await openShared('stories260K.gguf');
  const common = { repo: NOPT!, model, chunkSize: 512, backend: 'cpu' as const, question: 'How does nopt parse abbreviated option names?', maxTokens: MAX_TOKENS, temperature: 0 };
  const one = await askRepository(common);
  const two = await askRepository({ ...common, hosts: 2 });
  assert.equal(one.stats.size.positions, 'local');
  assert.ok(one.stats.size.repositoryTokens > 10 * one.stats.size.modelContext, `${one.stats.size.repositoryTokens} tokens`);
  assert.ok(one.ids.length > 0);
  assert.deepEqual(two.stats.selection.attended, one.stats.selection.attended);
  assert.deepEqual(two.ids, one.ids);
  const { files } = await buildRepoLayout({ repo: NOPT!, model, chunkSize: 512 }).then((r) => ({ files: new Set(r.spans.flat().map((s) => s.path)) }));
  assert.ok(one.sources.length > 0);
  for (const s of one.sources) assert.ok(files.has(s.path) && existsSync(join(NOPT!, s.path)), `${s.path} is one of nopt's files`);
});
