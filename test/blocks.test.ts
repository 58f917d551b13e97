// Block packing with a real tokenizer (story_hf's tokenizer.json through @huggingface/tokenizers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packBlocks, packBlocksAsync, headerLine, splitLines, type BlockSource, type PackedBlocks } from '../src/engine/star/blocks';
import { loadHfJsonTokenizer } from './support/hfJsonTokenizer';
import type { EncodeOptions } from '../src/engine/tokenizer/types';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const hfTokenizer = loadHfJsonTokenizer(resolve(repoRoot, '../shared/models/story_hf'));
// Packing re-encodes the same texts many times across these tests; a memo keeps them fast (same ids).
const memo = new Map<string, number[]>();
const tokenizer = { ...hfTokenizer, encode: (text: string, o?: EncodeOptions) => {
  const key = `${o?.addBos ?? ''}\u0000${text}`;
  let ids = memo.get(key);
  if (!ids) memo.set(key, (ids = hfTokenizer.encode(text, o)));
  return [...ids];
} };
const encode = (text: string) => tokenizer.encode(text, { addBos: false, parseSpecial: false });

/** Deterministic code-like files of varied sizes (seeded), plus a long file and a file with one huge line. */
function sampleFiles(): BlockSource[] {
  let seed = 12345;
  const rand = () => ((seed = Math.imul(seed, 1103515245) + 12345 >>> 0) / 2 ** 32);
  const words = ['count', 'value', 'index', 'total', 'name', 'list', 'item', 'size', 'next', 'result'];
  const line = (i: number) => {
    const w = words[Math.floor(rand() * words.length)]!;
    return rand() < 0.2 ? '' : `  const ${w}${i} = ${w}(${Math.floor(rand() * 100)}) + ${i};`;
  };
  const files: BlockSource[] = [];
  for (let f = 0; f < 40; f++) {
    const n = 1 + Math.floor(rand() * rand() * 14);
    const body = Array.from({ length: n }, (_, i) => line(i)).join('\n');
    files.push({ path: `src/dir${f % 5}/file${String(f).padStart(2, '0')}.ts`, text: `export function f${f}() {\n${body}\n}\n` });
  }
  files.push({ path: 'src/long.ts', text: Array.from({ length: 400 }, (_, i) => line(i)).join('\n') });
  files.push({ path: 'src/oneline.json', text: '[' + Array.from({ length: 300 }, (_, i) => i * 7).join(',') + ']\n' });
  files.push({ path: 'src/empty.ts', text: '' });
  files.push({ path: 'src/crlf.ts', text: 'a();\r\nb();\r\n' });
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

function checkPacking(files: readonly BlockSource[], packed: PackedBlocks, chunkSize: number): void {
  const seen = new Map<string, number[]>(); // path -> how many spans cover each line
  for (const block of packed.blocks) {
    assert.ok(block.ids.length <= chunkSize, `block ${block.index} has ${block.ids.length} > ${chunkSize} tokens`);
    assert.ok(block.ids.length > 0);
    // Independent recomputation: the block's ids are its spans' text, each encoded alone, concatenated.
    const expected: number[] = [];
    let tokenSplit = false;
    // Token ranges: the spans tile the block in order, each exactly its header + text (or line part).
    assert.equal(block.spans[0]!.tokenStart, 0);
    assert.equal(block.spans[block.spans.length - 1]!.tokenEnd, block.ids.length);
    block.spans.forEach((span, k) => {
      if (k > 0) assert.equal(span.tokenStart, block.spans[k - 1]!.tokenEnd, `block ${block.index} span ${k} does not follow the previous`);
      const lines = splitLines(files.find((f) => f.path === span.path)!.text);
      const own = block.ids.slice(span.tokenStart, span.tokenEnd);
      if (span.lineTokens) {
        assert.equal(span.startLine, span.endLine);
        const head = encode(headerLine(span.path, span.startLine > 1 || span.lineTokens.start > 0));
        const part = encode(lines[span.startLine - 1]! + '\n').slice(span.lineTokens.start, span.lineTokens.end);
        assert.deepEqual(own, [...head, ...part], `block ${block.index}: the part's ids are not header + its line tokens`);
      } else {
        assert.deepEqual(own, encode(headerLine(span.path, span.startLine > 1) + lines.slice(span.startLine - 1, span.endLine).join('\n') + '\n'));
      }
    });
    for (const span of block.spans) {
      const file = files.find((f) => f.path === span.path)!;
      const lines = splitLines(file.text);
      const cover = seen.get(span.path) ?? new Array<number>(lines.length).fill(0);
      for (let l = span.startLine; l <= span.endLine; l++) cover[l - 1]!++;
      seen.set(span.path, cover);
      const text = lines.slice(span.startLine - 1, span.endLine).join('\n') + '\n';
      const ids = encode(headerLine(span.path, span.startLine > 1) + text);
      if (ids.length > chunkSize) tokenSplit = true; // one overlong line cut at token boundaries
      else expected.push(...ids);
      assert.ok(packed.blocksFor(span.path).includes(block.index));
    }
    if (!tokenSplit) assert.deepEqual(block.ids, expected, `block ${block.index} ids are not its spans' text`);
  }
  for (const file of files) {
    const lines = splitLines(file.text);
    const cover = seen.get(file.path) ?? [];
    if (lines.length === 0) {
      assert.deepEqual(packed.blocksFor(file.path), []);
      continue;
    }
    // Every line in exactly one span, except a line cut at token boundaries (then in consecutive parts).
    cover.forEach((c, i) => assert.ok(c === 1 || (c > 1 && lines[i]!.length > chunkSize), `${file.path}:${i + 1} covered ${c} times`));
    assert.equal(cover.length, lines.length);
  }
}

test('packBlocks: every line in one span, blocks fit, ids are the spans\' text, headers name the files', () => {
  const files = sampleFiles();
  for (const chunkSize of [128, 256]) {
    const packed = packBlocks(files, tokenizer, { chunkSize });
    checkPacking(files, packed, chunkSize);
    assert.ok(packed.blocksFor('src/long.ts').length > 2, 'the long file is split');
    assert.ok(packed.blocksFor('src/oneline.json').length >= 2, 'the one-line file is cut at token boundaries');
    const longBlocks = packed.blocksFor('src/long.ts').map((i) => packed.blocks[i]!);
    assert.ok(longBlocks.every((b) => b.spans.length === 1), 'a split file never shares a block');
    // The token-split parts of an overlong line each start with a header's exact ids.
    for (const i of packed.blocksFor('src/oneline.json')) {
      const head = encode(headerLine('src/oneline.json', i !== packed.blocksFor('src/oneline.json')[0]));
      assert.deepEqual(packed.blocks[i]!.ids.slice(0, head.length), head);
    }
    const fill = packed.blocks.reduce((n, b) => n + b.ids.length, 0) / (packed.blocks.length * chunkSize);
    assert.ok(fill > 0.3, `blocks are ${fill.toFixed(2)} full on average`);
  }
  assert.equal(packBlocks(files, tokenizer, { chunkSize: 256, boundaryTokens: 0 }).blocks.filter((b) => b.spans.length > 1).length, 0);
});

/** Blocks (as id strings) present in one packing and not the other. */
function changedBlocks(before: PackedBlocks, after: PackedBlocks): { removed: number[]; added: number[] } {
  const key = (ids: readonly number[]) => ids.join(',');
  const a = new Map<string, number>(), b = new Map<string, number>();
  for (const x of before.blocks) a.set(key(x.ids), (a.get(key(x.ids)) ?? 0) + 1);
  for (const x of after.blocks) b.set(key(x.ids), (b.get(key(x.ids)) ?? 0) + 1);
  const removed = before.blocks.filter((x) => (b.get(key(x.ids)) ?? 0) < (a.get(key(x.ids)) ?? 0)).map((x) => x.index);
  const added = after.blocks.filter((x) => (a.get(key(x.ids)) ?? 0) < (b.get(key(x.ids)) ?? 0)).map((x) => x.index);
  return { removed, added };
}

test('packBlocks: an edit changes the blocks holding the file, and at most a couple after it', (t) => {
  const files = sampleFiles();
  const chunkSize = 256;
  const before = packBlocks(files, tokenizer, { chunkSize });
  const shared = before.blocks.filter((b) => b.spans.length > 1).length;
  assert.ok(shared >= 5, `only ${shared} blocks hold several files: the edit test would prove little`);
  let worstContentDefined = 0;
  let worstGreedy = 0;
  for (const target of files.filter((f, i) => f.path.includes('/dir') && i % 3 === 0)) {
    // A small edit: the blocks that change are exactly the ones holding the file.
    const small = files.map((f) => (f === target ? { ...f, text: f.text.replace('{', '{ // edited') } : f));
    const afterSmall = packBlocks(small, tokenizer, { chunkSize });
    const { removed } = changedBlocks(before, afterSmall);
    const holders = before.blocksFor(target.path);
    assert.ok(removed.length >= 1 && removed.every((i) => holders.includes(i)), `small edit to ${target.path} changed ${removed} (holders ${holders})`);
    // A big edit (the file grows by 80 lines): the damage is local.
    const big = files.map((f) => (f === target ? { ...f, text: f.text + '  const extra = 1;\n'.repeat(80) } : f));
    const afterBig = packBlocks(big, tokenizer, { chunkSize });
    checkPacking(big, afterBig, chunkSize);
    const changed = changedBlocks(before, afterBig).removed;
    assert.ok(changed.every((i) => i >= holders[0]!), 'no block before the edited file changes');
    worstContentDefined = Math.max(worstContentDefined, changed.filter((i) => !holders.includes(i)).length);
    // Greedy packing (no content-defined boundaries) for comparison: edits spill further.
    const greedyBefore = packBlocks(files, tokenizer, { chunkSize, boundaryTokens: Infinity });
    const greedyAfter = packBlocks(big, tokenizer, { chunkSize, boundaryTokens: Infinity });
    const gHolders = greedyBefore.blocksFor(target.path);
    worstGreedy = Math.max(worstGreedy, changedBlocks(greedyBefore, greedyAfter).removed.filter((i) => !gHolders.includes(i)).length);
  }
  t.diagnostic(`worst blocks changed beyond the edited file's own: content-defined ${worstContentDefined}, greedy ${worstGreedy}`);
  assert.ok(worstContentDefined <= 3, `an edit changed ${worstContentDefined} blocks that do not hold the file`);
  assert.ok(worstGreedy > worstContentDefined, `greedy ${worstGreedy} vs content-defined ${worstContentDefined}`);
});

test('packBlocks: inserting a line near the top of a long file leaves most of its later pieces unchanged', () => {
  const files = sampleFiles();
  const chunkSize = 128;
  const before = packBlocks(files, tokenizer, { chunkSize });
  const edited = files.map((f) => (f.path === 'src/long.ts' ? { ...f, text: '// new first line\n' + f.text } : f));
  const after = packBlocks(edited, tokenizer, { chunkSize });
  const holders = before.blocksFor('src/long.ts');
  const changed = changedBlocks(before, after).removed.filter((i) => holders.includes(i));
  assert.ok(changed.length <= 3 && changed.length < holders.length / 3, `${changed.length} of ${holders.length} pieces changed`);
});

test('packBlocks: an overlong repetitive line takes the fewest blocks, its parts\' spans differ and tile the line', () => {
  const line = 'ab.'.repeat(200);
  const files = [{ path: 'a.txt', text: line + '\n' }, { path: 'b.txt', text: 'short\n' }];
  const chunkSize = 64;
  const packed = packBlocks(files, tokenizer, { chunkSize });
  checkPacking(files, packed, chunkSize);
  const parts = packed.blocksFor('a.txt').map((i) => packed.blocks[i]!);
  const lineIds = encode(line + '\n');
  const first = chunkSize - encode(headerLine('a.txt', false)).length;
  const later = chunkSize - encode(headerLine('a.txt', true)).length;
  assert.equal(parts.length, 1 + Math.ceil((lineIds.length - first) / later), 'more blocks than the line needs');
  assert.ok(parts.slice(0, -1).every((b) => b.ids.length === chunkSize), 'every part but the last is full');
  let at = 0;
  for (const b of parts) {
    assert.equal(b.spans.length, 1);
    assert.deepEqual(b.spans[0]!.lineTokens?.start, at);
    at = b.spans[0]!.lineTokens!.end;
  }
  assert.equal(at, lineIds.length);
  // Repetitive text: some parts have the very same ids (one cache entry), but never the same span.
  const idKeys = new Set(parts.map((b) => b.ids.join(',')));
  assert.ok(idKeys.size < parts.length, 'the test line no longer repeats: it proves less');
  assert.equal(new Set(parts.map((b) => JSON.stringify(b.spans))).size, parts.length);
});

test('packBlocks: errors name the problem', () => {
  assert.throws(() => packBlocks([{ path: 'a', text: 'x' }], tokenizer, { chunkSize: 0 }), /chunk size/);
});

test('a path whose header line fills a block is skipped with its reason; the other files are packed', () => {
  const long = `deep/${'very_long_directory_name/'.repeat(12)}file.ts`;
  const files: BlockSource[] = [
    { path: 'a.ts', text: 'export const a = 1;\n' },
    { path: long, text: 'export const b = 2;\n' },
    { path: 'c.ts', text: 'export const c = 3;\n' },
  ];
  const chunkSize = 48;
  assert.ok(encode(headerLine(long, true)).length >= chunkSize, 'the test path must not fit');
  const packed = packBlocks(files, tokenizer, { chunkSize });
  assert.deepEqual(packed.skipped, [{ path: long, reason: 'path-too-long' }]);
  assert.deepEqual(packed.blocks.flatMap((b) => b.spans.map((s) => s.path)), ['a.ts', 'c.ts']);
  assert.deepEqual(packed.blocksFor(long), []);
});

test('packBlocksAsync packs as packBlocks does, pausing between files (the event loop gets its turns)', async () => {
  const files = sampleFiles();
  let pauses = 0;
  const pause = async () => { pauses++; await new Promise<void>((r) => setImmediate(r)); };
  for (const chunkSize of [64, 256]) {
    pauses = 0;
    const sync = packBlocks(files, tokenizer, { chunkSize });
    const async = await packBlocksAsync(files, tokenizer, { chunkSize }, pause);
    assert.deepEqual(async.blocks, sync.blocks);
    assert.deepEqual(async.skipped, sync.skipped);
    assert.deepEqual(files.map((f) => async.blocksFor(f.path)), files.map((f) => sync.blocksFor(f.path)));
    assert.equal(pauses, files.length, 'one pause per file');
  }
});
