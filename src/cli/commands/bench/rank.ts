// star-ask bench rank: how well each ranking puts a question's answer block first, on a real repository larger than
// the model's context: npm's own npm-registry-fetch (the ten questions of bench qa, ./qaSet.ts) beside
// make-fetch-happen (its neighbour: the same words, HTTP, fetch, errors, a package.json of its own) and a few
// questions about make-fetch-happen. Every block is encoded right after the anchor (local positions, as a repository
// beyond the context is) into a disk cache, so a second run only scores. Per question: the answer blocks (those
// holding a piece of the answer's file with an expected string in it), and the rank of the best of them under
// each ranking; reported as rank@1 and rank@3 over the questions.
//
// Rankings: `lexical` (BM25, lexical.ts); `two-stage` (production's `attention`: BM25 candidates within 3x the
// budget, then their exact attention, twoStage.ts); `exact-all` (the same score over every block, softmax across
// all of them); the candidate-independent scores (anchorRelative.ts), each block alone against the anchor's own
// mass: `lse-sum`, `lse-max-head`, `maxdot-sum`; and reciprocal rank fusion of BM25 with each (`rrf-*`).
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EngineError } from '../../../engine/errors';
import { Transformer } from '../../../engine/runtime/transformer';
import { blockCacheKey, encodeContext } from '../../../engine/star/context';
import { LocalStarHost } from '../../../engine/star/localHost';
import { buildQuery } from '../../../engine/star/prompt';
import { shiftBlockKv } from '../../../engine/star/shift';
import type { BlockKv } from '../../../engine/star/types';
import { blockAttentionStats, fuseRanks, independentScores, type BlockAttentionStats } from '../../../engine/star/selection/anchorRelative';
import { defaultFirstLayer, scoreLogMasses } from '../../../engine/star/selection/keySummary';
import { LexicalIndex } from '../../../engine/star/selection/lexical';
import { planSelection } from '../../../engine/star/selection/plan';
import { probeQuestionQueries } from '../../../engine/star/selection/queryProbe';
import { selectionAnswerReserve } from '../../../engine/star/selection/blockSelection';
import { CANDIDATE_FACTOR, pickCandidates, rerank } from '../../../engine/star/selection/twoStage';
import { openKvBlockStore } from '../../../node/cache/kvBlockStore';
import { createBackend } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { buildRepoLayout } from '../../../node/star/repoLayout';
import { round } from '../../figures';
import { command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption, kvDtypeOption } from '../options';
import { modelOrDefault } from '../fetchModel';
import { QA_QUESTIONS, QA_SOURCE } from './qaSet';

const COMMAND = command({
  usage: 'star-ask bench rank [options]',
  options: {
    model: { type: 'string' },
    'chunk-size': { type: 'string', default: '512' },
    'max-tokens': { type: 'string', default: '256' },
    'cache-dir': { type: 'string' },
    'cache-dtype': { type: 'string', default: 'f16' },
    'layer-step': { type: 'string', default: '1' },
    rows: { type: 'string' },
    backend: { type: 'string', default: 'cpu' },
  },
  notes: {
    model: 'a GGUF file (default: SmolLM2-135M-Instruct, fetched once)',
    'cache-dir': 'KV cache folder kept between runs (default: a temporary one, removed)',
    'max-tokens': 'the answer reserve the selection budget assumes (as ask --max-tokens)',
    'layer-step': 'score every n-th layer from the first scored one (every ranking alike; 1 = all, as the two-stage ranking)',
    rows: 'score the last n rows of the question (the question and the assistant header; default all, as the two-stage ranking)',
  },
});

interface RankQuestion {
  readonly question: string;
  readonly expect: readonly string[];
  /** The answer's file, relative to the repository. */
  readonly file: string;
}

const NEIGHBOUR = 'make-fetch-happen';
const NEIGHBOUR_QUESTIONS: readonly RankQuestion[] = [
  { question: 'Which function builds the cache key of a request?', expect: ['cacheKey'], file: `${NEIGHBOUR}/lib/cache/key.js` },
  { question: 'Which class is thrown when a request is not in the cache and the cache mode is only-if-cached?', expect: ['NotCachedError'], file: `${NEIGHBOUR}/lib/cache/errors.js` },
  { question: 'Which HTTP status codes does the remote fetch retry on?', expect: ['RETRY_ERRORS', 'retryErrors', '408'], file: `${NEIGHBOUR}/lib/remote.js` },
  { question: 'How does the cache policy decide whether a stored response satisfies a new request?', expect: ['satisfies'], file: `${NEIGHBOUR}/lib/cache/policy.js` },
];

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backendKind = backendOption(values.backend);
  const chunkSize = intOption(values['chunk-size'], '--chunk-size');
  const maxTokens = intOption(values['max-tokens'], '--max-tokens');
  const dtype = kvDtypeOption(values['cache-dtype'], '--cache-dtype');
  const layerStep = intOption(values['layer-step'], '--layer-step', 1);
  const lastRows = values.rows !== undefined ? intOption(values.rows, '--rows', 1) : undefined;
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  const source = QA_SOURCE();
  const questions: RankQuestion[] = [
    ...QA_QUESTIONS.map((q) => ({ question: q.question, expect: q.expect, file: `npm-registry-fetch/${q.file}` })),
    ...NEIGHBOUR_QUESTIONS,
  ];
  const repo = mkdtempSync(join(tmpdir(), 'star-rank-'));
  const cacheDir = values['cache-dir'] ?? mkdtempSync(join(tmpdir(), 'star-rank-kv-'));
  const model = await openModel(resolve(await modelOrDefault(values.model, values.json)));
  const backend = await createBackend(backendKind);
  try {
    cpSync(source, join(repo, 'npm-registry-fetch'), { recursive: true });
    cpSync(join(dirname(source), NEIGHBOUR), join(repo, NEIGHBOUR), { recursive: true });
    for (const q of questions) {
      const text = readFileSync(join(repo, q.file), 'utf8');
      if (!q.expect.some((e) => text.includes(e) || q.file.endsWith(e))) throw new EngineError(`the answer to "${q.question}" (${q.expect.join(' / ')}) is not in ${q.file}`, repo);
    }
    const c = model.config;
    const { layout, spans } = await buildRepoLayout({ repo, model, chunkSize });
    if (layout.contextLength <= c.contextLength) log(`note: the repository (${layout.contextLength} tokens) fits the model's context of ${c.contextLength}`);
    const anchorLength = layout.anchor.length;
    const local = layout.blocks.map((b) => (b.index === 0 ? b : { ...b, start: anchorLength }));
    const transformer = await Transformer.create(model, backend);
    const store = openKvBlockStore({ dir: cacheDir, maxSizeBytes: 64 * 1024 ** 3, dtype, onWarning: log });
    const shift = (kv: BlockKv, start: number) => shiftBlockKv(transformer.backend, kv, start, c.headDim, c.rope);
    const started = performance.now();
    // Phase 1 a few blocks at a time (each group stored, then dropped from the host).
    let encoded = 0;
    for (let i = 0; i < local.length; i += 8) {
      const host = new LocalStarHost(transformer);
      try {
        const group = i === 0 ? local.slice(0, 8) : [local[0]!, ...local.slice(i, i + 8)];
        const stats = await encodeContext({ modelIdentity: model.identity, anchor: layout.anchor, blocks: group, hosts: [host], store, kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, shift });
        encoded += stats.blocksEncoded;
      } finally {
        await host.dispose();
      }
      log(`phase 1: ${Math.min(local.length, i + 8)} / ${local.length} blocks (${encoded} encoded)`);
    }
    const encodeSeconds = (performance.now() - started) / 1000;
    const keyOf = (i: number) => blockCacheKey(model.identity, layout.anchor, local[i]!, { dtype });
    const read = async (i: number): Promise<BlockKv> => {
      const kv = await store.get(keyOf(i), { length: local[i]!.tokens.length, width: c.nKvHeads * c.headDim, layers: c.nLayers });
      if (!kv) throw new EngineError(`block ${i} is not in the cache after phase 1`, cacheDir);
      return kv.start === local[i]!.start ? { ...kv, index: i } : { ...(await shift({ ...kv, v: [] }, local[i]!.start)), index: i };
    };
    const tokenizer = model.tokenizer;
    const queries = questions.map((q) => buildQuery(q.question, tokenizer, model.chatTemplate, { bosToken: tokenizer.bos !== undefined ? tokenizer.tokenText(tokenizer.bos) : undefined }));
    const anchorKv = await read(0);
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const firstLayer = defaultFirstLayer(c.nLayers);
    const fileBlocks = layout.blocks.slice(1).map((b) => b.index);
    const planBlocks = layout.blocks.slice(1).map((b) => ({ index: b.index, length: b.tokens.length }));
    const probes = [];
    for (const query of queries) {
      const room = planSelection([], { anchorLength, contextLength: c.contextLength, questionLength: query.length, answerReserve: selectionAnswerReserve(maxTokens, c.contextLength) }, []).budget;
      const all = await probeQuestionQueries(transformer, [anchorKv], query, { position: anchorLength + room });
      const keep = Math.min(all.rows, lastRows ?? all.rows);
      const qWidth = c.nHeads * c.headDim;
      probes.push({ room, queries: { rows: keep, q: all.q.map((q) => q.slice((all.rows - keep) * qWidth)) } });
    }
    // Every block read once, scored for every question.
    const statsOf = probes.map(() => new Map<number, BlockAttentionStats>());
    const anchorStats = probes.map((p) => blockAttentionStats(anchorKv, p.queries, shape, firstLayer, layerStep));
    const scoreStarted = performance.now();
    for (const i of fileBlocks) {
      const kv = await read(i);
      probes.forEach((p, qi) => statsOf[qi]!.set(i, blockAttentionStats(kv, p.queries, shape, firstLayer, layerStep)));
    }
    const scoreSeconds = (performance.now() - scoreStarted) / 1000;
    const lexical = new LexicalIndex(fileBlocks.map((i) => ({ index: i, text: tokenizer.decode(layout.blocks[i]!.tokens) })));
    const withRest = (order: readonly number[]) => [...order, ...fileBlocks.filter((i) => !order.includes(i))];
    const rows: { question: string; file: string; answerBlocks: number[]; candidates: number; ranks: Record<string, number> }[] = [];
    for (const [qi, q] of questions.entries()) {
      const answerBlocks = fileBlocks.filter((i) => (spans[i] ?? []).some((s) => s.path === q.file)
        && q.expect.some((e) => tokenizer.decode(layout.blocks[i]!.tokens).includes(e) || q.file.endsWith(e)));
      if (answerBlocks.length === 0) throw new EngineError(`no block holds the answer to "${q.question}"`, repo);
      const stats = statsOf[qi]!;
      // The softmax rankings (exact-all, two-stage) over the same layers as the others: the scored layers, compacted.
      const masses = new Map([...stats].map(([i, s]) => [i, s.lse.filter((m): m is Float64Array => m !== undefined)]));
      const scoredLayers = masses.values().next().value!.length;
      const bySoftmax = (blocks: readonly number[]) => scoreLogMasses(blocks, scoredLayers, shape.nHeads, rowsQ, (b, layer, out) => out.set(masses.get(blocks[b]!)![layer]!), { firstLayer: 0 }).map((r) => r.index);
      const bm25 = withRest(lexical.rank(q.question).map((r) => r.index));
      const rowsQ = probes[qi]!.queries.rows;
      const exactAll = bySoftmax(fileBlocks);
      const picked = pickCandidates(planBlocks, bm25, CANDIDATE_FACTOR * probes[qi]!.room);
      const twoStage = rerank(bySoftmax(picked), bm25);
      const independent = independentScores(stats, anchorStats[qi]!, layout.blocks.map((b) => b.tokens.length));
      const rankings: Record<string, number[]> = { lexical: bm25, 'two-stage': twoStage, 'exact-all': exactAll };
      for (const [name, order] of Object.entries(independent)) {
        rankings[name] = order;
        rankings[`rrf-${name}`] = fuseRanks([bm25, order]);
      }
      const ranks = Object.fromEntries(Object.entries(rankings).map(([name, order]) => [name, 1 + Math.min(...answerBlocks.map((b) => order.indexOf(b)))]));
      log(`${q.question} (answer in block${answerBlocks.length > 1 ? 's' : ''} ${answerBlocks.join(', ')}): ${Object.entries(ranks).map(([n, r]) => `${n} ${r}`).join(', ')}`);
      rows.push({ question: q.question, file: q.file, answerBlocks, candidates: picked.length, ranks });
    }
    const names = Object.keys(rows[0]!.ranks);
    const summary = names.map((name) => ({
      ranking: name,
      at1: rows.filter((r) => r.ranks[name]! <= 1).length,
      at3: rows.filter((r) => r.ranks[name]! <= 3).length,
      meanRank: round(rows.reduce((s, r) => s + r.ranks[name]!, 0) / rows.length),
    }));
    const out = {
      model: model.name, chunkSize, dtype, repositoryTokens: layout.contextLength, blocks: fileBlocks.length, modelContext: c.contextLength,
      questions: rows.length, firstLayer, layerStep, questionRows: lastRows ?? 'all', encodeSeconds: round(encodeSeconds), blocksEncoded: encoded, scoreSeconds: round(scoreSeconds), summary, rows,
    };
    if (values.json) printJson(out);
    else {
      process.stdout.write(`${model.name}: ${rows.length} questions, ${fileBlocks.length} blocks of ${chunkSize} (${layout.contextLength} tokens, context ${c.contextLength}); answer block's rank\n`);
      for (const s of summary) process.stdout.write(`  ${s.ranking.padEnd(22)} @1 ${String(s.at1).padStart(2)}/${rows.length}  @3 ${String(s.at3).padStart(2)}/${rows.length}  mean rank ${s.meanRank}\n`);
    }
    return 0;
  } finally {
    backend.destroy();
    await model.close();
    rmSync(repo, { recursive: true, force: true });
    if (values['cache-dir'] === undefined) rmSync(cacheDir, { recursive: true, force: true });
  }
}
