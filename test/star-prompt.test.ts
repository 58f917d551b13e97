// The Star prompt for a repository: anchor (chat prefix + overview), file blocks at global positions, query.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildQuery, buildStarLayout, DEFAULT_INTRO, DEFAULT_SYSTEM_PROMPT, keepOverview } from '../src/engine/star/prompt';
import { renderChat } from '../src/engine/tokenizer/chatTemplate';
import { encodeRenderedPrompt } from '../src/engine/tokenizer/promptEncoding';
import { loadHfJsonTokenizer } from './support/hfJsonTokenizer';
import { tokenizerFromHfJson } from '../src/engine/tokenizer/fromHfJson';
import { readFileSync } from 'node:fs';
import type { BlockSource } from '../src/engine/star/blocks';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tokenizer = loadHfJsonTokenizer(resolve(repoRoot, '../shared/models/story_hf'));
const CHATML = "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function repo(): BlockSource[] {
  const files: BlockSource[] = [
    { path: 'README.md', text: '# Tiny app\n\nA small app that counts the birds in the garden.\n' + 'More words about the app.\n'.repeat(40) },
    { path: 'package.json', text: '{ "name": "tiny" }\n' },
  ];
  for (let i = 0; i < 12; i++) files.push({ path: `src/part${i % 3}/deep/file${i}.ts`, text: `export const value${i} = ${i};\n`.repeat(1 + i) });
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

test('buildStarLayout: anchor = chat prefix + overview within anchorSize; blocks contiguous after it', () => {
  for (const template of [undefined, CHATML]) {
    const files = repo();
    const layout = buildStarLayout(files, tokenizer, template, { chunkSize: 96, anchorSize: 400 });
    // The anchor opens with the chat prefix exactly as the template renders it (up to the context).
    const full = renderChat(template, [{ role: 'system', content: DEFAULT_SYSTEM_PROMPT }, { role: 'user', content: DEFAULT_INTRO }], { addGenerationPrompt: false });
    const prefixText = full.slice(0, full.lastIndexOf(DEFAULT_INTRO) + DEFAULT_INTRO.length);
    const prefix = encodeRenderedPrompt(tokenizer, prefixText);
    assert.deepEqual(layout.anchor.slice(0, prefix.length), prefix);
    assert.ok(layout.anchor.length <= 400 && layout.anchor.length > prefix.length, `anchor ${layout.anchor.length}`);
    assert.match(layout.overview, /src\/part0\//);
    assert.doesNotMatch(layout.overview, /file\d/, 'the outline lists directories, not every file');
    // Positions: anchor 0..a-1, then each block right after the previous.
    assert.deepEqual(layout.blocks[0], { index: 0, tokens: layout.anchor, start: 0 });
    let at = layout.anchor.length;
    for (let i = 1; i < layout.blocks.length; i++) {
      assert.equal(layout.blocks[i]!.start, at);
      assert.deepEqual(layout.positionsOf(i), { start: at, length: layout.blocks[i]!.tokens.length });
      assert.deepEqual(layout.blocks[i]!.tokens, layout.fileBlocks[i - 1]!.ids);
      at += layout.blocks[i]!.tokens.length;
    }
    assert.equal(layout.contextLength, at);
    for (const f of files) for (const i of layout.blocksFor(f.path)) assert.ok(layout.spansOf(i).some((s) => s.path === f.path));
  }
});

test('buildStarLayout: editing or adding a deep file leaves the anchor alone; the README changes it', () => {
  const files = repo();
  const base = buildStarLayout(files, tokenizer, CHATML, { chunkSize: 96, anchorSize: 200 });
  const edited = files.map((f) => (f.path === 'src/part1/deep/file4.ts' ? { ...f, text: f.text + 'export const more = 1;\n' } : f));
  edited.push({ path: 'src/part2/deep/new.ts', text: 'export {};\n' });
  edited.sort((a, b) => (a.path < b.path ? -1 : 1));
  assert.deepEqual(buildStarLayout(edited, tokenizer, CHATML, { chunkSize: 96, anchorSize: 200 }).anchor, base.anchor);
  const readme = files.map((f) => (f.path === 'README.md' ? { ...f, text: '# Renamed app\n' + f.text } : f));
  assert.notDeepEqual(buildStarLayout(readme, tokenizer, CHATML, { chunkSize: 96, anchorSize: 200 }).anchor, base.anchor);
});

test('buildQuery: anchor prefix + query is the chat template rendered with the question', () => {
  const question = 'How are the birds counted?';
  const q = buildQuery(question, tokenizer, CHATML);
  const rendered = renderChat(CHATML, [{ role: 'system', content: DEFAULT_SYSTEM_PROMPT }, { role: 'user', content: DEFAULT_INTRO + `\n\nQuestion: ${question}` }], { addGenerationPrompt: true });
  const suffix = rendered.slice(rendered.indexOf('\n\nQuestion:'));
  assert.ok(suffix.endsWith('<|im_start|>assistant\n'));
  assert.deepEqual(q, tokenizer.encode(suffix, { addBos: false, parseSpecial: true }));
  assert.ok(tokenizer.decode(q).includes('birds counted'));
});

test('buildQuery: special-token text typed in a question stays text', () => {
  // The project's own tokenizer over the same tokenizer.json: it honours parseSpecial (the reference wrapper cannot).
  const dir = resolve(repoRoot, '../shared/models/story_hf');
  const own = tokenizerFromHfJson(JSON.parse(readFileSync(resolve(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(resolve(dir, 'tokenizer_config.json'), 'utf8')), dir);
  const template = "{% for m in messages %}{{ m.content + ' <|end_story|> ' }}{% endfor %}{% if add_generation_prompt %}{{ 'A:' }}{% endif %}";
  const end = own.encode('<|end_story|>', { addBos: false, parseSpecial: true });
  assert.equal(end.length, 1);
  assert.ok(own.isSpecial(end[0]!));
  const count = (ids: number[]) => ids.filter((id) => id === end[0]).length;
  // (This tokenizer, like the reference, matches its special tokens only between spaces: hence the template's.)
  assert.equal(count(own.encode('what does <|end_story|> mean?', { addBos: false, parseSpecial: true })), 1, 'the question alone would smuggle one in');
  assert.equal(count(buildQuery('a plain question', own, template)), 1, 'the template\'s own end-of-turn token');
  assert.equal(count(buildQuery('what does <|end_story|> mean?', own, template)), 1, 'none smuggled in by the question');
});

test('keepOverview: an earlier overview stands while at most a quarter of the outline changed; the README head does not count', () => {
  const outline = (entries: string[], readme = 'hello') => ['Repository outline (top-level files, directories to depth 2):', ...entries.map((e) => `  ${e}`), '', 'Start of README.md:', readme];
  const base = ['README.md', 'src/', 'src/a/', 'src/b/', 'test/', 'package.json', 'docs/', 'lib/'];
  assert.ok(keepOverview(outline(base), outline(base)));
  assert.ok(keepOverview(outline(base), outline([...base, 'src/c/'])), 'one new directory in 9 entries');
  assert.ok(keepOverview(outline(base), outline(base, 'another head')), 'the README head changed');
  assert.ok(keepOverview(outline(base), outline([...base.slice(1), 'src/c/'])), 'one gone, one new: 2 of 9');
  assert.ok(!keepOverview(outline(base), outline([...base, 'x/', 'y/', 'z/'])), '3 new of 11 entries: more than a quarter');
  assert.ok(!keepOverview(outline(base), outline(['other/', 'README.md'])), 'a different repository');
  assert.ok(!keepOverview(['Another format:', '  src/'], outline(base)), 'another outline format');
});
