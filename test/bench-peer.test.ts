// star-ask bench peer --peer-cpu: llama.cpp's CPU builds side by side. ggml picks the best build for the CPU and
// has no setting to choose another, so a named build runs from a copy of the peer folder holding only that build's
// library (src/cli/commands/bench/llamaCpp.ts). What ggml loaded is read back from its own system info (the device
// string's [features]): the haswell row must be AVX2 without AVX-512 or AMX, whatever this machine has.
// Skipped where llama.cpp is not installed beside the checkout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';

test('bench peer --peer-cpu best,haswell: two llama.cpp builds beside the cpu backend; an unknown build is refused first', (t) => {
  const model = modelPath('stories260K.gguf');
  const args = ['bench', 'peer', '--model', model, '--backend', 'cpu', '--prefill', '16', '--decode', '4', '--reps', '1', '--threads', '1', '--json'];
  const r = runCli([...args, '--peer-cpu', 'best,haswell']);
  const out = JSON.parse(r.stdout);
  if (out.peerInstall) {
    t.skip('llama.cpp is not installed beside the checkout');
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const peers = out.rows.filter((row: { engine: string }) => row.engine === 'llama.cpp');
  assert.equal(peers.length, 2);
  const features = (device: string) => /\[([^\]]*)\]/.exec(device)![1]!.split(' ');
  const haswell = features(peers[1].device);
  assert.match(peers[1].device, /cpu haswell /);
  assert.ok(haswell.includes('AVX2'), peers[1].device);
  assert.ok(!haswell.some((f) => f.startsWith('AVX512') || f.startsWith('AMX')), peers[1].device);
  assert.match(peers[0].device, /cpu best build /);
  assert.ok(features(peers[0].device).includes('AVX2'), peers[0].device); // x86-64 CI machines have AVX2
  assert.deepEqual(Object.keys(out.ratiosByPeerCpu), ['best', 'haswell']);
  const ours = out.rows.find((row: { engine: string }) => row.engine === 'star-ask');
  assert.equal(out.ratiosByPeerCpu.haswell.cpu.prefillCpuVsLlamaCpp, Math.round((peers[1].prefillCpuMsPerToken / ours.prefillCpuMsPerToken) * 1000) / 1000);
  assert.deepEqual(out.ratios, out.ratiosByPeerCpu.best);

  const bad = runCli([...args, '--peer-cpu', 'best,no_such_cpu']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--peer-cpu: node-llama-cpp has no CPU build no_such_cpu \(it has: [a-z0-9_, ]*haswell/);
  assert.equal(bad.stdout, ''); // refused before any benchmark ran
});
