// Worker-thread entry of a ThreadStarHost: opens the model itself (its own file handles and weights),
// makes its own backend, wraps a LocalStarHost and answers hostMessages requests one at a time
// (a dispose never interleaves with an encode). A 'cancel' is handled at once: it aborts the
// target's controller, which the host checks between forwards.
import { parentPort, workerData } from 'node:worker_threads';
import { CancelledError } from '../../engine/errors';
import { Transformer } from '../../engine/runtime/transformer';
import { LocalStarHost } from '../../engine/star/localHost';
import type { BlockKv, HostAttention } from '../../engine/star/types';
import { serializeError } from '../../protocol/engineMessages';
import { createBackend } from '../createBackend';
import { openModel, type OpenedModel } from '../openModel';
import { transferList, type HostReply, type HostRequest, type HostWorkerInit } from './hostMessages';

const port = parentPort;
if (!port) throw new Error('hostWorker.ts must run as a worker thread');
const init = workerData as HostWorkerInit;

function reply(msg: HostReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

async function start(): Promise<{ host: LocalStarHost; close(): Promise<void> }> {
  const model: OpenedModel = await openModel(init.modelPath);
  try {
    const backend = await createBackend(init.backend, init.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: init.memoryBudgetBytes } : {});
    try {
      const transformer = await Transformer.create(model, backend);
      const host = new LocalStarHost(transformer, { name: init.name, memoryBudgetBytes: init.memoryBudgetBytes, maxBatchRows: init.maxBatchRows });
      return { host, close: async () => { backend.destroy(); await model.close(); } };
    } catch (err) {
      backend.destroy();
      throw err;
    }
  } catch (err) {
    await model.close();
    throw err;
  }
}

const ready = start();
ready.then(
  (s) => reply({ kind: 'ready', id: 0, name: s.host.name }),
  (err) => reply({ kind: 'error', id: 0, error: serializeError(err) }),
);

const controllers = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

port.on('message', (req: HostRequest) => {
  if (req.kind === 'cancel') {
    controllers.get(req.target)?.abort(new CancelledError());
    return;
  }
  const controller = new AbortController();
  controllers.set(req.id, controller);
  queue = queue.then(async () => {
    try {
      const { host, close } = await ready;
      const [value, transfer] = await handle(host, req, controller.signal);
      if (req.kind === 'dispose') await close();
      reply({ kind: 'result', id: req.id, value }, transfer);
    } catch (err) {
      reply({ kind: 'error', id: req.id, error: serializeError(err) });
    } finally {
      controllers.delete(req.id);
    }
  });
});

async function handle(host: LocalStarHost, req: Exclude<HostRequest, { kind: 'cancel' }>, signal: AbortSignal): Promise<[unknown, ArrayBuffer[]]> {
  switch (req.kind) {
    case 'encode': {
      if (signal.aborted) throw new CancelledError();
      const kvs = await host.encode(req.anchor, req.blocks, signal);
      // The host keeps a block's host-memory copy only when it is not resident; while everything
      // fits the budget (every block it added stayed on the device) the arrays are ours to move.
      const movable = host.totalBytes <= host.budgetBytes;
      return [kvs, movable ? transferList(kvs.flatMap((kv: BlockKv) => [...kv.k, ...kv.v])) : []];
    }
    case 'load':
      await host.load(req.blocks);
      return [undefined, []];
    case 'blockIndices':
      return [await host.blockIndices(), []];
    case 'attend': {
      const r: HostAttention = await host.attend(req.layer, req.q, req.rows, req.perBlock);
      // Fresh arrays (the accumulator and read-backs), not referenced by the host afterwards.
      return [r, transferList([r.out, r.lse, ...(r.blocks ?? []).map((b) => b.lse)])];
    }
    case 'dispose':
      await host.dispose();
      return [undefined, []];
  }
}
