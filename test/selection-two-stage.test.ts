// The two-stage attention ranking (selection/twoStage.ts, exactAttention.ts) on the real default model,
// SmolLM2-135M-Instruct: ten small files, one holding the answer to "Where is the database password stored?" and
// one a FAQ that repeats the question's words without answering it. BM25 ranks the FAQ first; its candidates, ordered
// by the question's exact attention to their keys (from the query probe over the anchor), put the answer's block
// first. The exact masses are checked against a float64 log-sum-exp computed here from the block's own keys.
// Then the candidates' arithmetic alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openModel } from '../src/node/openModel';
import { createBackend } from '../src/node/createBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { LocalStarHost } from '../src/engine/star/localHost';
import { probeQuestionQueries } from '../src/engine/star/selection/queryProbe';
import { LexicalIndex } from '../src/engine/star/selection/lexical';
import { blockLogMasses, rankByExactAttention } from '../src/engine/star/selection/exactAttention';
import { defaultFirstLayer } from '../src/engine/star/selection/keySummary';
import { pickCandidates, rerank } from '../src/engine/star/selection/twoStage';
import { buildQuery } from '../src/engine/star/prompt';
import { defaultModelFile } from './support/models';

const real = defaultModelFile();
const TOPICS = ['the HTTP server listens on port 8080 and logs requests', 'the parser reads JSON files and validates the schema',
  'the cache stores entries on disk with a size limit', 'the scheduler runs jobs every five minutes',
  'the renderer draws charts with colors from the theme', 'the mailer sends emails through SMTP with retries',
  'the database password is stored in the secret vault named BLUEFIN', 'the tokenizer splits text into words and numbers'];
const FILES = [
  ...TOPICS.map((s, i) => `==> src/module${i}.md <==\nThis module: ${s}. It is used by the main program and has tests.\n`),
  '==> docs/faq.md <==\nOpen questions: where is the database password stored? which port does the server listen on? how often do the jobs run? Nobody knows yet.\n',
  '==> docs/todo.md <==\nTODO: say how emails are sent, what the parser should validate, and how text is split. The emails, the parser and the text are not documented.\n',
];
const QUESTION = 'Where is the database password stored?';
const ANSWER = 7;
const DECOY = 9;

test('two-stage ranking puts the answer\'s block first where BM25 puts a decoy first (SmolLM2, cpu)', { skip: real.skip }, async () => {
  const model = await openModel(real.path!);
  const t = await Transformer.create(model, await createBackend('cpu'));
  const host = new LocalStarHost(t);
  try {
    const tok = model.tokenizer;
    const anchor = tok.encode('<|im_start|>system\nYou answer questions about a repository.<|im_end|>\n', { addBos: false, parseSpecial: true });
    const blocks = FILES.map((f, i) => ({ index: i + 1, tokens: tok.encode(f, { addBos: false, parseSpecial: false }), start: anchor.length }));
    const [anchorKv] = await host.encode(anchor, [{ index: 0, tokens: anchor, start: 0 }]);
    const kvs = await host.encode(anchor, blocks);
    const c = t.config;
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, nLayers: c.nLayers };

    const lexical = new LexicalIndex(FILES.map((text, i) => ({ index: i + 1, text }))).rank(QUESTION).map((r) => r.index);
    assert.equal(lexical[0], DECOY, `BM25 ranks the FAQ first: ${lexical.join(',')}`);
    assert.ok(lexical.includes(ANSWER));

    // Candidates: BM25's best three blocks (the session takes CANDIDATE_FACTOR times its budget in tokens).
    const planBlocks = blocks.map((b) => ({ index: b.index, length: b.tokens.length }));
    const budget = lexical.slice(0, 3).reduce((n, i) => n + blocks[i - 1]!.tokens.length, 0);
    const picked = pickCandidates(planBlocks, lexical, budget);
    assert.deepEqual(picked, lexical.slice(0, 3));
    const queries = await probeQuestionQueries(t, [anchorKv!], buildQuery(QUESTION, tok, model.chatTemplate, {}), { position: anchor.length + 400 });
    const firstLayer = defaultFirstLayer(c.nLayers);
    const masses = new Map(picked.map((i) => [i, blockLogMasses(kvs[i - 1]!, queries, shape, firstLayer)]));
    const ranked = rerank(rankByExactAttention(picked, masses, shape, queries.rows).map((r) => r.index), lexical);
    assert.equal(ranked[0], ANSWER, `two-stage order ${ranked.join(',')}`);
    assert.deepEqual([...ranked].sort((a, b) => a - b), [...lexical].sort((a, b) => a - b), 'the same blocks, reordered');

    // The masses are exact: a float64 log-sum-exp over the answer block's keys, at one layer, for every head and row.
    const kv = kvs[ANSWER - 1]!;
    const layer = c.nLayers - 1;
    const group = c.nHeads / c.nKvHeads;
    const got = masses.get(ANSWER)![layer]!;
    assert.equal(masses.get(ANSWER)![firstLayer - 1], undefined, 'layers before the first scored are not computed');
    for (let h = 0; h < c.nHeads; h++) {
      for (let r = 0; r < queries.rows; r++) {
        const s: number[] = [];
        for (let p = 0; p < kv.length; p++) {
          let dot = 0;
          for (let i = 0; i < c.headDim; i++) dot += queries.q[layer]![(r * c.nHeads + h) * c.headDim + i]! * kv.k[layer]![p * kv.width + Math.floor(h / group) * c.headDim + i]!;
          s.push(dot / Math.sqrt(c.headDim));
        }
        const m = Math.max(...s);
        const want = m + Math.log(s.reduce((a, x) => a + Math.exp(x - m), 0));
        assert.ok(Math.abs(got[h * queries.rows + r]! - want) < 1e-9 * Math.max(1, Math.abs(want)), `head ${h} row ${r}: ${got[h * queries.rows + r]} vs ${want}`);
      }
    }
  } finally {
    await host.dispose();
    await model.close();
  }
});

test('candidates: the order first, then repository order, while their tokens fit; a block too large is passed over', () => {
  const blocks = [{ index: 1, length: 10 }, { index: 2, length: 50 }, { index: 3, length: 10 }, { index: 4, length: 10 }, { index: 5, length: 10 }];
  assert.deepEqual(pickCandidates(blocks, [4, 2, 4, 9], 40), [4, 1, 3, 5], '2 does not fit, 9 is unknown, 4 counts once');
  assert.deepEqual(pickCandidates(blocks, [2], 40), [2], 'the first is always taken, so there is something to rank');
  assert.deepEqual(pickCandidates(blocks, [], 25), [1, 3]);
  assert.deepEqual(rerank([3, 1], [1, 3, 5, 2]), [3, 1, 5, 2]);
});
