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
  // Each op's fraction of its own peak, to three significant figures (an emulator's GEMV reaches well under 0.1% of
  // its read peak, which fixed decimals would print as 0). The figures shown are rounded to three significant
  // figures each, so their ratio lies within 1 % of the unrounded one (two roundings of at most 0.5 %), and the
  // fraction, itself rounded, within 1.5 % of that ratio.
  const check = (o: { type: string; shape: string; ofPeak: number }, rate: number, peak: number) => {
    const what = `${o.type} ${o.shape}: ofPeak ${o.ofPeak}, rate ${rate}, peak ${peak}`;
    assert.ok(o.ofPeak > 0, what);
    assert.equal(o.ofPeak, Number(o.ofPeak.toPrecision(3)), `${what}: more than three significant figures`);
    assert.ok(Math.abs(o.ofPeak / (rate / peak) - 1) <= 0.015, `${what}: not the rate over the peak`);
  };
  for (const o of b.gemv) check(o, o.gbPerS, b.peak.readGbPerS);
  for (const o of b.matmul) check(o, o.gflopPerS, b.peak.fmaGflopPerS);
  assert.ok(b.model.prefillTokensPerS > 0 && b.model.decodeTokensPerS > 0);
});

// The WebAssembly kernels' own ceilings: the 16-bit dot their quantized products are built of, and a read pass.
test('star-ask bench kernels --backend cpu --json: the kernels\' measured peaks, GEMV and matmul as fractions of them', () => {
  const r = runCli(['bench', 'kernels', '--backend', 'cpu', '--types', 'Q4_1,Q4_K', '--gemv', '64x256', '--matmul', '70x130x256',
    '--reps', '1', '--model', modelPath('stories260K.gguf'), '--prefill', '16', '--decode', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const [b] = JSON.parse(r.stdout).backends;
  assert.equal(b.backend, 'cpu');
  assert.match(b.device, /wasm simd128/);
  assert.ok(b.peak.fmaGflopPerS > 0 && b.peak.readGbPerS > 0, JSON.stringify(b.peak));
  // The peak is the build's own products' instruction: the 8-bit relaxed dot where the relaxed build runs, else the 16-bit one.
  assert.match(b.peak.what, /relaxed/.test(b.device) ? /relaxed_dot_i8x16_i7x16_s/ : /i32x4.dot_i16x8_s/);
  for (const o of b.gemv) assert.ok(Math.abs(o.ofPeak / (o.gbPerS / b.peak.readGbPerS) - 1) <= 0.015, JSON.stringify(o));
  for (const o of b.matmul) assert.ok(Math.abs(o.ofPeak / (o.gflopPerS / b.peak.fmaGflopPerS) - 1) <= 0.015, JSON.stringify(o));
  assert.equal(b.gemv.length + b.matmul.length, 4);
});

test('star-ask bench kernels --tuning rejects an unknown value', () => {
  const r = runCli(['bench', 'kernels', '--tuning', 'fast']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--tuning: "fast" is not gpu or emulated/);
});
