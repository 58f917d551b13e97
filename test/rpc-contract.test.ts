// The host protocol's method map (src/protocol/hostMethods.ts) is the one contract of both sides. At compile time:
// a wrong method name, wrong arguments, a wrong result type or a handler of the wrong shape fails `npm run
// typecheck` (the @ts-expect-error lines below become unused errors if the types loosen). At run time: every field
// of a BlockSpec crosses, so a worker encodes a block the cache stores in f16 in f16, exactly as an in-process host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { Transformer } from '../src/engine/runtime/transformer';
import { LocalStarHost } from '../src/engine/star/localHost';
import type { BlockSpec } from '../src/engine/star/types';
import { createThreadHostPool } from '../src/node/star/hostPool';
import { nodeMessagePort } from '../src/node/star/nodePort';
import type { HostDescription, HostMethods, StarHostMethods } from '../src/protocol/hostMethods';
import { RpcServer, type Handlers, type RpcClient } from '../src/protocol/rpc';
import { starHostHandlers, StarHostClient } from '../src/protocol/starHost';
import { modelOpener } from './support/models';
import { modelPath, repoRoot } from './support/paths';

const openShared = modelOpener();
const anchor = [1, 400, 401, 402, 403, 404, 405, 406];
const blocks: BlockSpec[] = [{ index: 1, start: 8, tokens: [410, 411, 412, 413, 414, 415], kvDtype: 'f16' }];

// Never called: only compiled.
async function contractErrors(rpc: RpcClient<HostMethods>): Promise<void> {
  // @ts-expect-error an unknown method
  await rpc.call('describ', []);
  // @ts-expect-error wrong arguments
  await rpc.call('attend', [0, new Float32Array(1), 1]);
  // @ts-expect-error wrong result type
  const d: number[] = await rpc.call('describe', []);
  // @ts-expect-error the event of answer() is an AnswerToken, not a string
  await rpc.call('answer', [{ contextLength: 0, query: [], maxTokens: 1, temperature: 0 }], { onEvent: (t: string) => t });
  const ok: HostDescription = await rpc.call('describe', []);
  void d; void ok;
  const wrongHandler: Handlers<Pick<HostMethods, 'describe'>> = {
    // @ts-expect-error a handler returning the wrong result
    describe: () => ({ name: 'x' }),
  };
  void wrongHandler;
}
void contractErrors;

test('a BlockSpec crosses whole: a block asked in f16 comes back from the other side of a port as from the host itself', async () => {
  const model = await openShared('stories260K.gguf');
  const make = async (name: string) => new LocalStarHost(await Transformer.create(model, new CpuBackend()), { name });
  const direct = await make('direct');
  const served = await make('served');
  const channel = new MessageChannel();
  new RpcServer<StarHostMethods>(starHostHandlers(served)).serve(nodeMessagePort(channel.port2, 'server'));
  const client = new StarHostClient(nodeMessagePort(channel.port1, 'client'), 'client');
  try {
    const want = await direct.encode(anchor, blocks);
    const got = await client.encode(anchor, blocks);
    const f32 = await direct.encode(anchor, [{ ...blocks[0]!, index: 2, kvDtype: undefined }]);
    // The f16 rounding is visible (else this test could not tell the two apart)...
    assert.notDeepEqual([...f32[0]!.k[0]!], [...want[0]!.k[0]!]);
    // ...and the served host applied it.
    assert.equal(got.length, 1);
    for (let l = 0; l < want[0]!.k.length; l++) {
      assert.deepEqual(got[0]!.k[l], want[0]!.k[l], `K of layer ${l}`);
      assert.deepEqual(got[0]!.v[l], want[0]!.v[l], `V of layer ${l}`);
    }
  } finally {
    await client.dispose();
    await direct.dispose();
    channel.port1.close();
    channel.port2.close();
  }
});

test('a worker host keeps the f16 block it encoded (the reply copies what the host still holds) and attends over it', async () => {
  const model = await openShared('stories260K.gguf');
  // Both sides on the JS reference backend: the port must not change a bit of what the host computes.
  const direct = new LocalStarHost(await Transformer.create(model, new CpuBackend()), { name: 'direct' });
  const pool = await createThreadHostPool({ backend: 'cpu-ref', hosts: 1, modelPath: modelPath('stories260K.gguf'), workerScript: `${repoRoot}/dist/hostWorker.mjs` });
  try {
    await direct.encode(anchor, blocks);
    const kvs = await pool.hosts[0]!.encode(anchor, blocks);
    assert.equal(kvs[0]!.k[0]!.length, blocks[0]!.tokens.length * kvs[0]!.width);
    const c = model.config;
    const q = Float32Array.from({ length: 2 * c.nHeads * c.headDim }, (_, i) => Math.sin(i));
    const want = await direct.attend(0, q, 2, false);
    const got = await pool.hosts[0]!.attend(0, q, 2, false);
    assert.deepEqual(got.out, want.out);
    assert.deepEqual(got.lse, want.lse);
  } finally {
    await pool.dispose();
    await direct.dispose();
  }
});
