// BM25 over blocks' text (src/engine/star/selection/lexical.ts): identifier-aware terms, and a ranking that puts
// the block naming what the question names first, checked against a brute-force BM25 written out here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BM25_B, BM25_K1, LexicalIndex, lexicalTerms } from '../src/engine/star/selection/lexical';

test('terms: whole identifiers and their camelCase / snake_case / acronym / digit parts, lower-cased; paths split', () => {
  assert.deepEqual(lexicalTerms('parseArgs(max_tokens)'), ['parseargs', 'parse', 'args', 'max_tokens', 'max', 'tokens']);
  assert.deepEqual(lexicalTerms('HTTPServer'), ['httpserver', 'http', 'server']);
  assert.deepEqual(lexicalTerms('src/engine/star/shift.ts'), ['src', 'engine', 'star', 'shift', 'ts']);
  assert.deepEqual(lexicalTerms('utf8Decode a'), ['utf8decode', 'utf', 'decode']);
  assert.deepEqual(lexicalTerms(''), []);
});

/** BM25 straight from its definition, over term lists. */
function bruteForce(docs: string[], question: string): { index: number; score: number }[] {
  const terms = docs.map(lexicalTerms);
  const avg = terms.reduce((n, t) => n + t.length, 0) / docs.length;
  const q = [...new Set(lexicalTerms(question))];
  const out = terms.map((t, d) => {
    let score = 0;
    let hit = false;
    for (const term of q) {
      const tf = t.filter((x) => x === term).length;
      const df = terms.filter((ts) => ts.includes(term)).length;
      if (tf === 0) continue;
      hit = true;
      const idf = Math.log(1 + (docs.length - df + 0.5) / (df + 0.5));
      score += (idf * tf * (BM25_K1 + 1)) / (tf + BM25_K1 * (1 - BM25_B + (BM25_B * t.length) / avg));
    }
    return { index: d + 1, score, hit };
  });
  return out.filter((x) => x.hit).sort((a, b) => b.score - a.score || a.index - b.index).map(({ index, score }) => ({ index, score }));
}

test('ranking equals BM25 from its definition; the block defining the named function ranks first', () => {
  const docs = [
    '==> src/cli.ts <==\nimport { run } from "./run";\nrun(process.argv);',
    '==> src/args.ts <==\nexport function parseArgs(argv: string[]) { return argv.filter(Boolean); }',
    '==> src/run.ts <==\nexport function run(argv) { const args = parseArgs(argv); log(args); }',
    '==> README.md <==\nThis tool prints its arguments. Run it with any args.',
  ];
  const index = new LexicalIndex(docs.map((text, i) => ({ index: i + 1, text })));
  for (const question of ['Where is parseArgs defined?', 'how does the cli run', 'what does README say', 'nothing matches zzz']) {
    const got = index.rank(question);
    const want = bruteForce(docs, question);
    assert.deepEqual(got.map((r) => r.index), want.map((r) => r.index), question);
    got.forEach((r, i) => assert.ok(Math.abs(r.score - want[i]!.score) < 1e-9, question));
  }
  // parseArgs's body (filter, Boolean) is only in src/args.ts; its callers mention the name too.
  assert.equal(index.rank('parseArgs filter Boolean')[0]!.index, 2);
  assert.deepEqual(index.rank('nothing matches zzz'), []);
});

test('thousands of blocks: an index of 4,000 blocks of ~300 words ranks a needle first', () => {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'value', 'count', 'index', 'buffer', 'stream', 'token', 'reader', 'writer'];
  const docs: { index: number; text: string }[] = [];
  for (let d = 0; d < 4000; d++) {
    const parts: string[] = [];
    for (let w = 0; w < 300; w++) parts.push(words[(d * 7 + w * 13) % words.length]! + ((d + w) % 5 === 0 ? 'Count' : ''));
    docs.push({ index: d + 1, text: parts.join(' ') });
  }
  docs[2717] = { index: 2718, text: docs[2717]!.text + ' function computeNeedleChecksum(bytes) {}' };
  const index = new LexicalIndex(docs);
  const ranked = index.rank('What does computeNeedleChecksum return?');
  assert.equal(ranked[0]!.index, 2718);
  assert.equal(index.size, 4000);
});
