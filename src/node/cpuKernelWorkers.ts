// Kernel worker threads for the `cpu` backend (src/engine/backend/wasm/threadPool.ts): Node's worker_threads, each
// started from source (no worker file to find beside whichever bundle runs this) and unref'd so an idle pool never
// keeps the process alive.
import { Worker } from 'node:worker_threads';
import type { SpawnKernelWorker } from '../engine/backend/wasm/threadPool';

export const spawnKernelWorker: SpawnKernelWorker = (body, data) => new Promise((resolve, reject) => {
  const source = `const { workerData, parentPort } = require('node:worker_threads');\n(${body})(workerData, () => parentPort.postMessage('ready'));`;
  const worker = new Worker(source, { eval: true, workerData: data });
  worker.once('error', reject);
  worker.once('exit', (code) => reject(new Error(`kernel worker exited with code ${code} before it was ready`)));
  worker.once('message', () => {
    worker.removeAllListeners('exit');
    worker.unref();
    resolve({ terminate: () => void worker.terminate() });
  });
});
