// `star-ask generate` end to end: the built CLI, a real model file, ids against the float64 golden.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support/cli';
import { modelPath, readGolden } from './support/paths';

const cli = (args: string[]) => runCli(['generate', ...args]);

test('generate --prompt-ids 1 --json on cpu reproduces the stories260K greedy golden', () => {
  const golden = readGolden<{ greedy_from_bos_ids: number[]; greedy_text: string }>('stories260K.golden.json');
  const r = cli(['--model', modelPath('stories260K.gguf'), '--prompt-ids', '1', '--max-tokens', '64',
    '--temperature', '0', '--backend', 'cpu', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ids: number[]; text: string; stats: Record<string, unknown> };
  assert.deepEqual(out.ids, golden.greedy_from_bos_ids.slice(1));
  assert.match(out.text, /^Once upon a time, there was a little girl named Lily\./);
  assert.equal(out.stats.promptTokens, 1);
  assert.equal(out.stats.generatedTokens, 64);
  assert.match(String(out.stats.device), /^cpu \(wasm simd128( \+ relaxed)?, \d+ threads?\)$/); // `cpu` is the WebAssembly backend
  assert.ok(typeof out.stats.decodeTokensPerSec === 'number' && out.stats.decodeTokensPerSec > 0);
});

test('generate --prompt tokenizes with BOS and streams the same text as --json', () => {
  const args = ['--model', modelPath('stories260K.gguf'), '--prompt', 'Once upon a time', '--max-tokens', '12', '--backend', 'cpu'];
  const streamed = cli(args);
  assert.equal(streamed.status, 0, streamed.stderr);
  const json = cli([...args, '--json']);
  const out = JSON.parse(json.stdout) as { text: string; stats: { promptTokens: number } };
  assert.equal(streamed.stdout, out.text + '\n');
  assert.equal(out.stats.promptTokens, 5); // <s> ▁Once ▁upon ▁a ▁time
});

test('generate rejects a bad --prompt-ids list with a message naming the option', () => {
  const r = cli(['--model', modelPath('stories260K.gguf'), '--prompt-ids', '1,x', '--backend', 'cpu']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--prompt-ids/);
});

test('generate --max-tokens beyond the context is capped where the sequence fills it, and says so', () => {
  const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json');
  // A 2040-token prompt (the greedy story, repeated) leaves room for 8 tokens in stories260K's 2048 (prompt + answer <= context: fitAnswer).
  const story = golden.greedy_from_bos_ids;
  const prompt = Array.from({ length: 2040 }, (_, i) => story[i % story.length]!);
  const r = cli(['--model', modelPath('stories260K.gguf'), '--prompt-ids', prompt.join(','), '--max-tokens', '100000',
    '--temperature', '0', '--backend', 'cpu', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /--max-tokens 100000 capped at 8: the model's context is 2048 tokens and the prompt has 2040/);
  const out = JSON.parse(r.stdout) as { ids: number[]; stats: { maxTokens: number } };
  assert.equal(out.stats.maxTokens, 8);
  assert.ok(out.ids.length <= 8, `${out.ids.length} tokens generated`);
});
