// Hosts in worker threads (createThreadHostPool: every host, the query host included, in its own thread, the
// query host calling the others through MessageChannels) must answer as the in-process hosts do: the log-sum-exp
// merge is exact, so the greedy ids agree and the attention shares agree to f32 rounding. Errors inside a worker
// arrive as the engine's error classes naming the file; a cancel reaches the worker and stops its encode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { CancelledError, FormatError } from '../src/engine/errors';
import type { LoadedModel } from '../src/engine/model/types';
import type { AnswerResult } from '../src/engine/star/answer';
import { encodeContext } from '../src/engine/star/context';
import { fixedLayout, type StarLayout } from '../src/engine/star/layout';
import { shiftBlockKv } from '../src/engine/star/shift';
import { createInProcessHostPool, createThreadHostPool, type HostPool } from '../src/node/star/hostPool';
import { StarHostClient } from '../src/protocol/starHost';
import { blocksEncodedAfterCancel } from './support/cancelProbe';
import { runCli } from './support/cli';
import { modelOpener } from './support/models';
import { modelPath, readGolden, repoRoot } from './support/paths';
import { withTempDir } from './support/tempDir';

const openShared = modelOpener();
const storiesPath = modelPath('stories260K.gguf');
const workerScript = `${repoRoot}/dist/hostWorker.mjs`;

const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;
// The golden star case of star-hosts.test.ts: 384 context tokens in blocks of 64, a 24-token query.
const layout: StarLayout = fixedLayout(ids.slice(0, 408), 384, 64);

async function runStar(model: LoadedModel, pool: HostPool): Promise<{ answer: AnswerResult; hostOfBlock: number[] }> {
  const c = model.config;
  const stats = await encodeContext({
    modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: pool.hosts,
    kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
    shift: (kv, s) => shiftBlockKv(new CpuBackend(), kv, s, c.headDim, c.rope),
  });
  const answer = await pool.answer({ contextLength: layout.contextLength, query: layout.query, maxTokens: 12, temperature: 0, attentionShares: true }, () => {});
  return { answer, hostOfBlock: [...stats.hostOfBlock] };
}

test('two worker-thread hosts (query host in a worker too) answer as one in-process host', async () => {
  const model = await openShared('stories260K.gguf');
  const one = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
  const single = await runStar(model, one).finally(() => one.dispose());

  const pool = await createThreadHostPool({ backend: 'cpu', hosts: 2, modelPath: storiesPath, workerScript });
  assert.equal(pool.kind, 'node-cpu');
  assert.match(pool.device, /cpu/i);
  let split;
  try {
    split = await runStar(model, pool);
    // Both workers really hold blocks (so phase 2 really merged host 1's attention through its MessagePort).
    for (const h of [0, 1]) {
      const held = await pool.hosts[h]!.blockIndices();
      assert.deepEqual(held, split.hostOfBlock.flatMap((owner, b) => (owner === h ? [b] : [])), `host ${h}`);
      assert.ok(held.length > 0, `host ${h} holds no blocks`);
    }
  } finally {
    await pool.dispose();
  }
  assert.equal(split.answer.ids.length, 12);
  assert.deepEqual(split.answer.ids, single.answer.ids);
  assert.equal(split.answer.text, single.answer.text);
  assert.equal(split.answer.blockShares.length, layout.blocks.length);
  const want = new Map(single.answer.blockShares);
  for (const [b, s] of split.answer.blockShares) assert.ok(Math.abs(s - want.get(b)!) < 1e-5, `share of block ${b}: ${s} vs ${want.get(b)}`);
  // After dispose the pool's hosts refuse further calls.
  await assert.rejects(pool.hosts[1]!.blockIndices(), /closed|disposed|exited/);
});

test('worker-thread hosts in waves mode (encode results copied, not moved) answer as one in-process host', async () => {
  const model = await openShared('stories260K.gguf');
  const c = model.config;
  const one = await createInProcessHostPool(model, { backend: 'cpu', hosts: 1 });
  const single = await runStar(model, one).finally(() => one.dispose());

  // 100 tokens' K+V of one layer: each host streams its 64-token blocks one per wave, so it keeps the arrays
  // encode() returned and the worker must copy them to the caller (moving them would empty the host's blocks).
  const memoryBudgetBytes = 100 * 2 * 4 * c.nKvHeads * c.headDim;
  const pool = await createThreadHostPool({ backend: 'cpu', hosts: 2, modelPath: storiesPath, workerScript, memoryBudgetBytes });
  let split;
  try {
    split = await runStar(model, pool);
    for (const h of [0, 1]) {
      const { wavesPerLayer } = await (pool.hosts[h] as StarHostClient).rpc.call('stats', []);
      assert.ok(wavesPerLayer >= 2, `host ${h}: ${wavesPerLayer} waves per layer`);
    }
  } finally {
    await pool.dispose();
  }
  assert.deepEqual(split.answer.ids, single.answer.ids);
  const want = new Map(single.answer.blockShares);
  for (const [b, s] of split.answer.blockShares) assert.ok(Math.abs(s - want.get(b)!) < 1e-5, `share of block ${b}: ${s} vs ${want.get(b)}`);
});

test('hosts on Dawn WebGPU in worker threads (SwiftShader here): greedy ids from BOS equal the golden ids', async () => {
  const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
  const pool = await createThreadHostPool({ backend: 'webgpu', hosts: 2, modelPath: storiesPath, workerScript });
  try {
    assert.equal(pool.kind, 'node-webgpu');
    const r = await pool.answer({ contextLength: 0, query: [1], maxTokens: 16, temperature: 0, attentionShares: false }, () => {});
    assert.deepEqual(r.ids, golden.slice(1, 17));
    process.stderr.write(`[thread hosts] ${pool.device}: ${r.decodeTokensPerSec.toFixed(1)} tokens/s\n`);
  } finally {
    await pool.dispose();
  }
});

test("the extension's worker bundle (dist/extensionHostWorker.mjs) runs with no node_modules beside it", async () => {
  // The .vsix ships no node_modules: copied into an empty folder, the bundle must still start and answer.
  await withTempDir('star-ext-worker-', async (dir) => {
    const script = join(dir, 'extensionHostWorker.mjs');
    copyFileSync(`${repoRoot}/dist/extensionHostWorker.mjs`, script);
    const golden = readGolden<{ greedy_from_bos_ids: number[] }>('stories260K.golden.json').greedy_from_bos_ids;
    const pool = await createThreadHostPool({ backend: 'cpu', hosts: 2, modelPath: storiesPath, workerScript: script });
    try {
      const r = await pool.answer({ contextLength: 0, query: [1], maxTokens: 8, temperature: 0, attentionShares: false }, () => {});
      assert.deepEqual(r.ids, golden.slice(1, 9));
    } finally {
      await pool.dispose();
    }
  });
});

test('errors inside a worker arrive as engine errors naming the file', async () => {
  const missing = `${repoRoot}/../shared/models/no-such-model.gguf`;
  await assert.rejects(createThreadHostPool({ modelPath: missing, backend: 'cpu', hosts: 2, workerScript }), (err: unknown) => {
    assert.ok(err instanceof FormatError, `got ${String(err)}`);
    assert.match(err.message, /no-such-model\.gguf/);
    assert.equal(err.file, missing);
    return true;
  });
  await assert.rejects(createThreadHostPool({ modelPath: storiesPath, backend: 'cpu', workerScript: `${repoRoot}/dist/nope.mjs` }), /nope\.mjs/);

  const pool = await createThreadHostPool({ modelPath: storiesPath, backend: 'cpu', workerScript });
  try {
    const bad = { index: 1, start: 8, length: 1, width: 3, k: [new Float32Array(3)], v: [new Float32Array(3)] };
    await assert.rejects(pool.hosts[0]!.load([bad]), /block 1: KV of width 3/);
    // Still answers after the error.
    assert.deepEqual(await pool.hosts[0]!.blockIndices(), []);
  } finally {
    await pool.dispose();
  }
});

test('a cancelled encode stops in the worker: it encodes far fewer blocks than asked, then answers the next call', async () => {
  // 200 blocks of 64 tokens, one block per forward: cancelled once it has begun, the worker must stop at its next
  // yield point. A worker that ignored the cancel would run all 200 before it answers `stats` (queued after).
  const pool = await createThreadHostPool({ modelPath: storiesPath, backend: 'cpu', workerScript, maxBatchRows: 1 });
  try {
    const host = pool.hosts[0] as StarHostClient;
    const blocks = Array.from({ length: 200 }, (_, i) => ({ index: i + 1, start: 64 + 64 * i, tokens: ids.slice(64, 128) }));
    const blocksEncoded = await blocksEncodedAfterCancel(host, layout.anchor, blocks);
    assert.ok(blocksEncoded > 0 && blocksEncoded < 100, `the worker went on encoding after the cancel: ${blocksEncoded} of 200 blocks`);
    process.stderr.write(`[cancel] the worker stopped after ${blocksEncoded} of 200 blocks\n`);
  } finally {
    await pool.dispose();
  }
});

test('a cancelled answer stops decoding in the query host worker', async () => {
  // Greedy from BOS: the golden run has no end token in its first 64 tokens, so a worker that ignored the cancel
  // would generate at least 64 before answering the call queued behind the answer.
  const pool = await createThreadHostPool({ modelPath: storiesPath, backend: 'cpu', hosts: 2, workerScript });
  try {
    const host = pool.hosts[0] as StarHostClient;
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(pool.answer({ contextLength: 0, query: [1], maxTokens: 400, temperature: 0, attentionShares: false }, () => {
      if (++seen === 3) controller.abort();
    }, controller.signal), (err: unknown) => err instanceof CancelledError);
    await host.blockIndices(); // queued behind the answer: answered once the worker has stopped it
    const { answerTokens } = await host.rpc.call('stats', []);
    assert.ok(answerTokens >= 3 && answerTokens < 40, `the worker generated ${answerTokens} tokens after a cancel at the 3rd`);
    process.stderr.write(`[cancel] the answer stopped after ${answerTokens} tokens\n`);
  } finally {
    await pool.dispose();
  }
});

test('star-ask ask --hosts 2 --host-threads answers as one host', () => {
  const repo = mkdtempSync(join(tmpdir(), 'star-threads-repo-'));
  try {
    writeFileSync(join(repo, 'max.txt'), 'Tom had a dog named Max. Max liked to run and jump in the park. '.repeat(4));
    writeFileSync(join(repo, 'lily.txt'), 'Lily had a red ball. She liked to throw it high in the sky. '.repeat(4));
    writeFileSync(join(repo, 'sun.txt'), 'The sun was warm and the birds sang in the big green tree. '.repeat(4));
    const ask = (extra: string[]) => {
      const r = runCli(['ask', '--repo', repo, '--model', storiesPath, '--chunk-size', '64', '--backend', 'cpu', '--no-cache', '--json',
        '--question', 'Who is Max?', '--max-tokens', '6', ...extra]);
      assert.equal(r.status, 0, `star-ask ask ${extra.join(' ')} failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as { ids: number[]; sources: { path: string; share: number }[]; stats: { blocks: number } };
    };
    const one = ask(['--hosts', '1']);
    const threads = ask(['--hosts', '2', '--host-threads']);
    assert.ok(one.stats.blocks >= 4, `only ${one.stats.blocks} blocks`);
    assert.deepEqual(threads.ids, one.ids);
    assert.deepEqual(threads.sources.map((x) => x.path).sort(), one.sources.map((x) => x.path).sort());
    for (const s of one.sources) assert.ok(Math.abs(threads.sources.find((x) => x.path === s.path)!.share - s.share) < 1e-5, `share of ${s.path}`);
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});
