// star-ask bench repo --json through the built CLI at a tiny size on the CPU: the JSON contract (every field,
// ratios that are the quotients of the reported times, the edit re-encoding only some blocks). llama.cpp is
// optional (installed beside the checkout, see src/cli/commands/bench/llamaCpp.ts): without it the star-ask side
// must still run and the output must say llama.cpp is missing and how to install it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';

test('star-ask bench repo --json (cpu, tiny repository)', () => {
  const args = ['bench', 'repo', '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--sizes', '600', '--file-tokens', '100', '--chunk-size', '256', '--reps', '1', '--json'];
  const r = runCli(args);
  assert.equal(r.status, 0, `star-ask ${args.join(' ')} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { llamaCpp: Record<string, unknown>; rows: Record<string, number | null>[]; backend: string };
  assert.equal(out.backend, 'cpu');
  assert.equal(out.rows.length, 1);
  const row = out.rows[0]!;
  assert.deepEqual(Object.keys(row).sort(), [
    'blocks', 'contextTokens', 'editBlocksEncoded', 'editBlocksShifted', 'editTailTokens', 'files', 'indexMs', 'llamaCppEditTailTtftMs',
    'llamaCppTtftMs', 'promptTokens', 'ratioEdit', 'ratioWarm', 'repoTokens', 'starEditCallMs', 'starEditTtftMs', 'starGlobalTtftMs',
    'starWarmCallMs', 'starWarmTtftMs',
  ]);
  for (const k of ['starWarmTtftMs', 'starEditTtftMs', 'starGlobalTtftMs', 'indexMs']) assert.ok(row[k]! > 0, k);
  assert.ok(row.starWarmCallMs! >= row.starWarmTtftMs!, 'the whole call includes the ttft');
  assert.ok(row.promptTokens! > row.contextTokens!, 'the prompt is the context and the question');
  assert.ok(row.blocks! >= 4 && row.files! >= 2);
  // The edit re-encodes the edited file's blocks, not the repository.
  assert.ok(row.editBlocksEncoded! >= 1 && row.editBlocksEncoded! < row.blocks!, `edit encoded ${row.editBlocksEncoded} of ${row.blocks}`);
  assert.ok(row.editTailTokens! > 0 && row.editTailTokens! < row.promptTokens!);

  if (out.llamaCpp.installed) {
    assert.equal(typeof out.llamaCpp.device, 'string');
    for (const k of ['llamaCppTtftMs', 'llamaCppEditTailTtftMs']) assert.ok(row[k]! > 0, k);
    // Ratios are the times' quotients (2 decimals, of times rounded to 0.1 ms).
    const close = (ratio: number, num: number, den: number) => assert.ok(Math.abs(ratio - num / den) <= 0.006 + (num / den) * 2e-3, `${ratio} vs ${num}/${den}`);
    close(row.ratioWarm!, row.llamaCppTtftMs!, row.starWarmTtftMs!);
    close(row.ratioEdit!, row.llamaCppTtftMs!, row.starEditTtftMs!);
  } else {
    assert.match(String(out.llamaCpp.install), /node-llama-cpp@/);
    for (const k of ['llamaCppTtftMs', 'llamaCppEditTailTtftMs', 'ratioWarm', 'ratioEdit']) assert.equal(row[k], null, k);
  }
});
