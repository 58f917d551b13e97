// A Star Attention host in a worker thread (ThreadStarHost) must be a drop-in StarHost: the query
// host in this thread plus one worker host give the single in-process host's logits and greedy ids
// (the log-sum-exp merge is exact, so only f32 rounding differs); errors inside the worker arrive as
// the engine's error classes naming the file; dispose ends the thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, FormatError } from '../src/engine/errors';
import type { LoadedModel } from '../src/engine/model/types';
import type { Transformer } from '../src/engine/runtime/transformer';
import { encodeContext } from '../src/engine/star/context';
import type { StarHost } from '../src/engine/star/host';
import { fixedLayout, type StarLayout } from '../src/engine/star/layout';
import type { LocalStarHost } from '../src/engine/star/localHost';
import { StarQuery } from '../src/engine/star/query';
import { shiftBlockKv } from '../src/engine/star/shift';
import { createLocalHosts } from '../src/node/star/localHosts';
import { ThreadStarHost } from '../src/node/star/threadHost';
import { createThreadHosts } from '../src/node/star/threadHosts';
import { runCli } from './support/cli';
import { modelOpener } from './support/models';
import { modelPath, readGolden, repoRoot } from './support/paths';

const openShared = modelOpener();
const storiesPath = modelPath('stories260K.gguf');
const workerScript = `${repoRoot}/dist/hostWorker.mjs`;

const ids = readGolden<{ star_vs_global_case: { token_ids: number[] } }>('stories260K.golden.json').star_vs_global_case.token_ids;
// The golden star case of star-hosts.test.ts: 384 context tokens in blocks of 64, a 24-token query.
const layout: StarLayout = fixedLayout(ids.slice(0, 408), 384, 64);

interface Hosts {
  query: Transformer;
  colocated: LocalStarHost;
  hosts: readonly StarHost[];
}

async function runStar(model: LoadedModel, h: Hosts): Promise<{ logits: Float32Array; generated: number[]; hostOfBlock: number[] }> {
  const c = h.query.config;
  const stats = await encodeContext({
    modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: h.hosts,
    kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
    shift: (kv, s) => shiftBlockKv(h.query.backend, kv, s, c.headDim, c.rope),
  });
  const query = new StarQuery(h.query, { contextLength: layout.contextLength, hosts: h.hosts, colocated: h.colocated, capacity: 64 });
  try {
    const logits = await h.query.backend.readAct((await query.forward(layout.query, 'all'))!);
    const last = logits.subarray(logits.length - c.vocabSize);
    let id = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[id]!) id = i;
    const generated = [id];
    for (let i = 0; i < 12; i++) {
      id = (await h.query.backend.argmax((await query.forward([id], 'last'))!))[0]!;
      generated.push(id);
    }
    return { logits, generated, hostOfBlock: [...stats.hostOfBlock] };
  } finally {
    query.dispose();
  }
}

test('a worker-thread host beside the query host gives the single in-process host answer', async () => {
  const model = await openShared('stories260K.gguf');
  const one = await createLocalHosts(model, { backend: 'cpu', hosts: 1 });
  const single = await runStar(model, { query: one.query, colocated: one.hosts[0]!, hosts: one.hosts }).finally(() => one.dispose());

  const two = await createThreadHosts(model, { backend: 'cpu', hosts: 2, modelPath: storiesPath, workerScript });
  const worker = two.hosts[1] as ThreadStarHost;
  assert.ok(worker instanceof ThreadStarHost);
  let split;
  try {
    split = await runStar(model, two);
    // The worker really holds blocks (so phase 2 really merged its attention).
    const held = await worker.blockIndices();
    assert.ok(held.length > 0, 'worker host holds no blocks');
    assert.deepEqual(held, split.hostOfBlock.flatMap((h, b) => (h === 1 ? [b] : [])));
  } finally {
    await two.dispose();
  }
  let diff = 0;
  for (let i = 0; i < single.logits.length; i++) diff = Math.max(diff, Math.abs(split.logits[i]! - single.logits[i]!));
  assert.equal(split.logits.length, single.logits.length);
  assert.ok(diff <= 1e-5, `logits differ by ${diff}`);
  assert.deepEqual(split.generated, single.generated);

  // dispose ended the thread, and the proxy refuses further calls.
  const code = await Promise.race([worker.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 5000).unref())]);
  assert.equal(typeof code, 'number', `worker after dispose: ${code}`);
  await assert.rejects(worker.blockIndices(), /disposed/);
});

test('errors inside the worker arrive as engine errors naming the file', async () => {
  const missing = `${repoRoot}/../shared/models/no-such-model.gguf`;
  await assert.rejects(ThreadStarHost.start({ modelPath: missing, backend: 'cpu', workerScript }), (err: unknown) => {
    assert.ok(err instanceof FormatError, `got ${String(err)}`);
    assert.match(err.message, /no-such-model\.gguf/);
    assert.equal(err.file, missing);
    return true;
  });
  await assert.rejects(ThreadStarHost.start({ modelPath: storiesPath, backend: 'cpu', workerScript: `${repoRoot}/dist/nope.mjs` }), /nope\.mjs/);

  // A request the worker's host rejects (a KV of the wrong width), and a cancelled encode.
  const host = await ThreadStarHost.start({ modelPath: storiesPath, backend: 'cpu', workerScript });
  try {
    const bad = { index: 1, start: 8, length: 1, width: 3, k: [new Float32Array(3)], v: [new Float32Array(3)] };
    await assert.rejects(host.load([bad]), /block 1: KV of width 3/);
    const controller = new AbortController();
    const encoding = host.encode(layout.anchor, layout.blocks.slice(1), controller.signal);
    controller.abort();
    await assert.rejects(encoding, (err: unknown) => err instanceof CancelledError);
    // Still answers after the cancel.
    assert.ok(Array.isArray(await host.blockIndices()));
  } finally {
    await host.dispose();
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
