// star-ask bench needle: where the needle lands (start / middle / end of a real repository, in walk order) and the
// --json contract of a tiny run through the built CLI (stories260K on the CPU: its answers are stories, so only
// the plumbing and the scoring rule are checked here; the accuracy figures come from the real model).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plantNeedles, writeNeedleRepository } from '../src/cli/commands/bench/needle';
import { bareLayout } from '../src/cli/commands/bench/bareBlocks';
import { QA_SOURCE } from '../src/cli/commands/bench/qaSet';
import { walkRepository } from '../src/node/repo/walkRepository';
import { runCli } from './support/cli';
import { modelOpener } from './support/models';
import { modelPath } from './support/paths';

const open = modelOpener();

test('bench needle plants every fact once, at the start, middle or end of the repository\'s tokens', async () => {
  const model = await open('stories260K.gguf');
  const facts = [{ name: 'LEGACY_MIRROR_PORT', value: '48213' }, { name: 'FALLBACK_SHARD_COUNT', value: '71234' }];
  for (const [depth, lo, hi] of [['start', 0, 0.1], ['middle', 0.35, 0.65], ['end', 0.9, 1]] as const) {
    const repo = mkdtempSync(join(tmpdir(), 'needle-test-'));
    try {
      await writeNeedleRepository(repo, QA_SOURCE(), model, 1500, depth, facts);
      const { files } = await walkRepository([repo]);
      const all = files.map((f) => f.text).join('\n');
      for (const f of facts) assert.equal(all.split(`const ${f.name} = ${f.value};`).length, 2, `${depth}: ${f.name} planted once`);
      const at = all.indexOf('const LEGACY_MIRROR_PORT');
      const frac = model.tokenizer.encode(all.slice(0, at), { addBos: false }).length / model.tokenizer.encode(all, { addBos: false }).length;
      assert.ok(frac >= lo - 0.05 && frac <= hi + 0.05, `${depth}: the needle sits at ${frac.toFixed(2)} of the tokens`);
      const total = model.tokenizer.encode(all, { addBos: false }).length;
      assert.ok(total >= 1500 * 0.9 && total <= 1500 * 1.1, `repository of ${total} tokens for 1500 asked`);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  }
});

test('bench needle --plant together: every depth\'s needles in one repository, each at its own depth', async () => {
  const model = await open('stories260K.gguf');
  const plants = [
    { depth: 'start', facts: [{ name: 'LEGACY_MIRROR_PORT', value: '48213' }], lo: 0, hi: 0.1 },
    { depth: 'middle', facts: [{ name: 'FALLBACK_SHARD_COUNT', value: '71234' }], lo: 0.35, hi: 0.65 },
    { depth: 'end', facts: [{ name: 'ARCHIVE_RETRY_LIMIT', value: '55555' }], lo: 0.9, hi: 1 },
  ] as const;
  const repo = mkdtempSync(join(tmpdir(), 'needle-test-'));
  try {
    await plantNeedles(repo, QA_SOURCE(), model, 1500, plants);
    const { files } = await walkRepository([repo]);
    const all = files.map((f) => f.text).join('\n');
    const total = model.tokenizer.encode(all, { addBos: false }).length;
    for (const p of plants) {
      const line = `const ${p.facts[0].name} = ${p.facts[0].value};`;
      assert.equal(all.split(line).length, 2, `${p.depth}: planted once`);
      const frac = model.tokenizer.encode(all.slice(0, all.indexOf(line)), { addBos: false }).length / total;
      assert.ok(frac >= p.lo - 0.05 && frac <= p.hi + 0.05, `${p.depth}: the needle sits at ${frac.toFixed(2)} of the tokens`);
    }
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

test('star-ask bench needle --json (cpu, stories260K, tiny grid)', () => {
  const args = ['bench', 'needle', '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--sizes', '256', '--depths', 'start,end',
    '--modes', 'global,star-n4-noanchor', '--needles', '2', '--max-tokens', '4', '--json'];
  const r = runCli(args, 120_000);
  assert.equal(r.status, 0, `star-ask ${args.join(' ')} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { modes: { name: string }[]; cells: Record<string, any>[] };
  assert.deepEqual(out.modes.map((m) => m.name), ['global', 'star-n4-noanchor']);
  assert.equal(out.cells.length, 4, 'sizes x depths x modes');
  for (const c of out.cells) {
    assert.deepEqual(Object.keys(c).sort(), ['accuracy', 'answers', 'asked', 'contextTokens', 'correct', 'depth', 'mode', 'repoTokens', 'ttftFirstMs', 'ttftMs', 'ttftRestMs']);
    assert.equal(c.asked, 2);
    assert.equal(c.answers.length, 2);
    for (const a of c.answers) assert.equal(a.correct, a.answer.includes(a.value), 'scored by containment');
    assert.equal(c.correct, c.answers.filter((a: { correct: boolean }) => a.correct).length);
    assert.ok(c.ttftMs > 0 && c.contextTokens > 256);
  }
  assert.notEqual(out.cells[0]!.answers[0].value, out.cells[0]!.answers[1].value, 'different needles in a cell');
});

test('bench needle -noanchor: the same tokens at the same positions, every file block after the first token only', () => {
  const layout = {
    anchor: [1, 2, 3, 4],
    blocks: [{ index: 0, tokens: [1, 2, 3, 4], start: 0 }, { index: 1, tokens: [5, 6], start: 4 }, { index: 2, tokens: [7, 8, 9], start: 6 }],
    contextLength: 9,
    query: [10, 11],
  };
  const bare = bareLayout(layout);
  assert.deepEqual(bare.anchor, [1], 'blocks are encoded after the first token alone');
  assert.deepEqual(bare.blocks.map((b) => b.index), [0, 1, 2, 3]);
  assert.deepEqual(bare.blocks.flatMap((b) => b.tokens), layout.blocks.flatMap((b) => b.tokens), 'the same context tokens, in order');
  for (const b of bare.blocks) assert.equal(b.start, bare.blocks.slice(0, b.index).reduce((n, x) => n + x.tokens.length, 0), `block ${b.index} at its global position`);
  assert.equal(bare.contextLength, 9);
  assert.deepEqual(bare.query, [10, 11]);
});
