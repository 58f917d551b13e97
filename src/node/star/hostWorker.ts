// Worker-thread entry of a host of createThreadHostPool (dist/hostWorker.mjs): opens the model itself (its own
// file handles and weights), makes its own backend and runs the platform-free host runtime on its ports.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { runHostRuntime, type HostRuntimeInit } from '../../protocol/hostRuntime';
import { createBackend, type BackendKind } from '../createBackend';
import { openModel } from '../openModel';
import { nodeMessagePort } from './nodePort';

/** The worker's workerData (createThreadHostPool sends it; the ports travel in its transfer list). */
export interface NodeHostWorkerData {
  readonly modelPath: string;
  readonly backend: BackendKind;
  /** Threads of the `cpu` backend's products in this host (the cores shared among the pool's hosts). */
  readonly cpuThreads?: number;
  readonly runtime: HostRuntimeInit;
  /** Host 0 only: one port to each other host. */
  readonly peers: readonly MessagePort[];
  /** Hosts 1..k-1: the port host 0 calls them through. */
  readonly served: readonly MessagePort[];
}

if (!parentPort) throw new Error('hostWorker.ts must run as a worker thread');
const data = workerData as NodeHostWorkerData;

runHostRuntime(nodeMessagePort(parentPort, data.runtime.name), {
  init: data.runtime,
  async open() {
    const model = await openModel(data.modelPath);
    try {
      const budget = data.runtime.memoryBudgetBytes;
      const backend = await createBackend(data.backend, {
        ...(budget !== undefined ? { memoryBudgetBytes: budget } : {}),
        ...(data.cpuThreads !== undefined ? { threads: data.cpuThreads } : {}),
      });
      return { model, backend, close: async () => { backend.destroy(); await model.close(); } };
    } catch (err) {
      await model.close();
      throw err;
    }
  },
  peers: data.peers.map((p, i) => nodeMessagePort(p, `host ${i + 1}`)),
  served: data.served.map((p) => nodeMessagePort(p, `${data.runtime.name} (from the query host)`)),
});
