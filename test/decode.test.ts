// The one rule of what fits (fitAnswer) and the one prefill + decode loop (runtime/decode.ts), as every generating
// path runs them: generate() (CLI generate, the global baseline), Star Attention's phase 2 (answerQuery), and the
// global baseline of ask. Near the end of the context all three stop at the same length, and the same prompt
// gives the same ids whichever path prefills it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { CancelledError, EngineError } from '../src/engine/errors';
import { answerRoom, fitAnswer } from '../src/engine/runtime/answerBudget';
import { CausalSequence, collectDecode, decode, prefill } from '../src/engine/runtime/decode';
import { generate } from '../src/engine/runtime/generate';
import { Transformer } from '../src/engine/runtime/transformer';
import { createInProcessHostPool } from '../src/node/star/hostPool';
import { modelOpener } from './support/models';
import { readGolden } from './support/paths';

const openShared = modelOpener();

test('fitAnswer: prompt + answer <= context; the request is kept, capped, or refused with the prompt named', () => {
  assert.equal(answerRoom(100, 90), 10);
  assert.deepEqual(fitAnswer(100, 90, 10, 'x'), { maxTokens: 10 });
  assert.deepEqual(fitAnswer(100, 90, 11, 'x'), { maxTokens: 10, requested: 11 });
  assert.deepEqual(fitAnswer(100, 99, 5, 'x'), { maxTokens: 1, requested: 5 });
  assert.throws(() => fitAnswer(100, 100, 1, "the prompt's 100 tokens"),
    (err: unknown) => err instanceof EngineError && /^the prompt's 100 tokens fill the model's context of 100 tokens/.test(err.message));
  assert.throws(() => fitAnswer(100, 101, 1, 'x'), EngineError);
});

async function storyModel() {
  const model = await openShared('stories260K.gguf');
  const transformer = await Transformer.create(model, new CpuBackend());
  const story = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
  return { model, transformer, story };
}

async function all(g: AsyncGenerator<number, unknown>): Promise<number[]> {
  const ids: number[] = [];
  for await (const id of g) ids.push(id);
  return ids;
}

test('generate (chunked prefill) and prefill + decode on a CausalSequence (one forward) give the golden ids', async () => {
  const { transformer, story } = await storyModel();
  const prompt = story.slice(0, 9);
  const stop = new Set<number>();
  const viaGenerate = await all(generate(transformer, prompt, { maxTokens: 12, temperature: 0, stopIds: stop, prefillChunk: 4 }));
  assert.deepEqual(viaGenerate, story.slice(9, 21));
  const seq = new CausalSequence(transformer, 64);
  try {
    const first = (await prefill(seq, prompt, { chunk: prompt.length }))!;
    const r = await collectDecode(decode(seq, first, { maxTokens: 12, temperature: 0, stopIds: stop }), performance.now());
    assert.deepEqual(r.ids, viaGenerate);
    assert.equal(r.finish, 'length');
    assert.ok(r.ttftMs >= 0 && r.decodeTokensPerSec > 0);
  } finally {
    seq.dispose();
  }
});

test('decode ends at a stop id (not yielded) and throws CancelledError when aborted', async () => {
  const { transformer, story } = await storyModel();
  const prompt = story.slice(0, 9);
  const stopAt = story[12]!;
  const ids = await all(generate(transformer, prompt, { maxTokens: 12, temperature: 0, stopIds: new Set([stopAt]) }));
  assert.deepEqual(ids, story.slice(9, 9 + story.slice(9).indexOf(stopAt)));
  const controller = new AbortController();
  const tokens = generate(transformer, prompt, { maxTokens: 12, temperature: 0, stopIds: new Set(), signal: controller.signal });
  await tokens.next();
  controller.abort();
  await assert.rejects(tokens.next(), CancelledError);
});

test('near the end of the context, generate and the Star answer stop at the same length (one rule)', async () => {
  const { model, transformer, story } = await storyModel();
  const limit = model.config.contextLength;
  const prompt = Array.from({ length: limit - 3 }, (_, i) => story[i % story.length]!);
  const generated = await all(generate(transformer, prompt, { maxTokens: 100, temperature: 0, stopIds: new Set() }));
  assert.equal(generated.length, 3);
  await assert.rejects(all(generate(transformer, [...prompt, 1, 1, 1], { maxTokens: 1, temperature: 0, stopIds: new Set() })), EngineError);
  const pool = await createInProcessHostPool(model, { backend: 'cpu' });
  try {
    // Phase 2 alone (no block held): its budget comes from the same rule.
    const star = await pool.answer({ contextLength: limit - 4, query: [1], maxTokens: 100, temperature: 0, attentionShares: false }, () => {});
    assert.equal(star.capped, 3);
    assert.ok(star.ids.length <= 3);
  } finally {
    await pool.dispose();
  }
});
