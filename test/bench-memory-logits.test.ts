// star-ask bench memory and bench logits through the built CLI on stories260K (cpu).
// memory: the --json contract, and the KV sizes against the formula written out from the model's shape
// (5 layers x 2 x 4 KV heads x 8 dims). logits: against llama.cpp on the same file when it is installed beside the
// checkout (src/cli/commands/bench/llamaCpp.ts); skipped otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';

test('star-ask bench memory --json (cpu, stories260K)', () => {
  const r = runCli(['bench', 'memory', '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--repo-tokens', '200', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.fileBytes, statSync(modelPath('stories260K.gguf')).size);
  const m = out.memory;
  assert.ok(m.peakRssBytes >= m.rssBeforeBytes && m.peakRssBytes >= m.peakRssAfterOpenBytes);
  assert.ok(m.peakHeapUsedBytes > 0 && m.peakArrayBuffersBytes > 0 && m.peakJsBytes <= m.peakHeapUsedBytes + m.peakArrayBuffersBytes);
  assert.equal(m.peakRssOverFile, Math.round((m.peakRssBytes / out.fileBytes) * 1000) / 1000);
  assert.deepEqual(out.kv.shape, { nLayers: 5, nKvHeads: 4, headDim: 8 });
  assert.equal(out.kv.bytesPerTokenF32, 5 * 2 * 4 * 8 * 4);
  assert.equal(out.kv.bytesPerTokenF16, 5 * 2 * 4 * 8 * 2);
  assert.equal(out.kv.repositoryDiskBytesF16, 5 * 2 * 4 * 8 * 2 * 100_000);
  const qwen15 = out.kv.referenceShapes.find((s: { name: string }) => s.name === 'Qwen2.5-Coder-1.5B');
  assert.equal(qwen15.bytesPerTokenF16, 28 * 2 * 256 * 2); // issue 7: 28 layers x 2 x 256 values
  assert.equal(qwen15.bytesPerTokenQ8, 28 * 2 * (256 / 32) * 34); // q8: 34 bytes per 32 values
  assert.ok(out.timesMs.ttft > 0 && out.repository.blocks >= 1);
});

test('star-ask bench logits: stories260K equals llama.cpp on the same file (cpu)', (t) => {
  const r = runCli(['bench', 'logits', '--model', modelPath('stories260K.gguf'), '--backend', 'cpu', '--json']);
  const out = JSON.parse(r.stdout);
  if (!out.llamaCpp.installed) {
    assert.equal(r.status, 1);
    assert.match(out.llamaCpp.install, /node-llama-cpp@/);
    t.skip('llama.cpp is not installed beside the checkout');
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.equal(out.rows.length, 5);
  for (const row of out.rows) {
    // An F32 file: both sides compute in f32 (llama.cpp's probabilities are f32), so only rounding differs.
    assert.ok(row.maxAbsDeltaLogP < 1e-4, `position ${row.position}: max |Δ log p| ${row.maxAbsDeltaLogP}`);
    assert.ok(row.kl >= 0 && row.kl < 1e-8, `position ${row.position}: KL ${row.kl}`);
    assert.equal(row.top1Agrees, true);
    assert.equal(row.llamaCppTokens, out.vocab);
  }
});
