// star-ask bench kernels through the built CLI on WebGPU (SwiftShader here) with the real-GPU kernels ('gpu'
// tuning): the --json contract, the measured device peaks, every op's fraction of them, and the --f16 run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';

test('star-ask bench kernels --tuning gpu --json: measured peaks, and GEMV / matmul as fractions of them', () => {
  const r = runCli(['bench', 'kernels', '--backend', 'webgpu', '--tuning', 'gpu', '--types', 'Q8_0,Q4_K', '--gemv', '64x256',
    '--matmul', '70x130x256', '--reps', '1', '--model', modelPath('stories260K.gguf'), '--prefill', '16', '--decode', '2', '--f16', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const [b, half] = JSON.parse(r.stdout).backends;
  // --f16: a second WebGPU run with f16 products, or a line saying why not (SwiftShader has no shader-f16).
  if (half.f16 === true) assert.ok(half.peak.fmaGflopPerS > 0 && half.matmul.length === 2);
  else assert.match(half.f16, /no shader-f16/);
  assert.equal(b.f16, false);
  assert.equal(b.backend, 'webgpu');
  assert.equal(b.kernels.tuning, 'gpu');
  if (/swiftshader/i.test(b.device)) assert.equal(b.kernels.gemvKernel, 'gemv-subgroup');
  assert.ok(b.peak.fmaGflopPerS > 0 && b.peak.readGbPerS > 0, JSON.stringify(b.peak));
  const ops = [...b.gemv, ...b.matmul];
  assert.deepEqual(ops.map((o: { type: string; shape: string }) => `${o.type} ${o.shape}`),
    ['Q8_0 64x256', 'Q4_K 64x256', 'Q8_0 70x130x256', 'Q4_K 70x130x256']);
  // Three significant figures (an emulator's GEMV reaches well under 0.1% of its read peak).
  for (const o of b.gemv) assert.equal(o.ofPeak, Number((o.gbPerS / b.peak.readGbPerS).toPrecision(3)));
  for (const o of b.matmul) assert.equal(o.ofPeak, Number((o.gflopPerS / b.peak.fmaGflopPerS).toPrecision(3)));
  for (const o of ops) assert.ok(o.ofPeak > 0, `${o.type} ${o.shape}: ${o.ofPeak}`);
  assert.ok(b.model.prefillTokensPerS > 0 && b.model.decodeTokensPerS > 0);
});

test('star-ask bench kernels --tuning rejects an unknown value', () => {
  const r = runCli(['bench', 'kernels', '--tuning', 'fast']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--tuning: "fast" is not gpu or emulated/);
});
