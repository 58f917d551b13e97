// A Star Attention host in a dedicated Worker of the webview (dist/webview/hostWorker.js; the page's hostBridge.ts
// starts it from a blob: URL). Its first message is the init (model files as Blobs, the ports to its peers); it
// then opens the model, makes a WebGPU device of its own and runs the platform-free host runtime, exactly as
// the Node worker thread does (src/node/star/hostWorker.ts).
import { createWebGpuBackend } from '../src/engine/backend/webgpu';
import { DeviceError } from '../src/engine/errors';
import { loadModel } from '../src/engine/model/loadModel';
import { runHostRuntime, type HostRuntimeInit } from '../src/protocol/hostRuntime';
import { BlobByteSource, blobFileSet } from './blobByteSource';
import { domPort, type DomMessageTarget } from './domPort';

/** The worker's first message (hostBridge.ts posts it, the ports in its transfer list). */
export interface WebviewHostWorkerInit {
  readonly kind: 'init';
  readonly runtime: HostRuntimeInit;
  readonly modelName: string;
  /** Relative name -> file (one GGUF, or a Hugging Face folder's files). */
  readonly files: Record<string, Blob>;
  /** Host 0 only: one port to each other host. */
  readonly peers: MessagePort[];
  /** Hosts 1..n-1: the port host 0 calls them through. */
  readonly served: MessagePort[];
}

const scope = self as unknown as DomMessageTarget & { navigator: Navigator };

const onInit = (event: MessageEvent) => {
  const init = event.data as WebviewHostWorkerInit;
  if (init?.kind !== 'init') return;
  scope.removeEventListener('message', onInit);
  runHostRuntime(domPort(scope, init.runtime.name), {
    init: init.runtime,
    async open() {
      const gpu = scope.navigator.gpu;
      if (!gpu) throw new DeviceError('WebGPU is not available in the webview worker (navigator.gpu is missing)');
      const names = Object.keys(init.files);
      const only = names.length === 1 ? init.files[names[0]!] : undefined;
      const model = await loadModel(only ? new BlobByteSource(init.modelName, only) : blobFileSet(init.modelName, init.files));
      const budget = init.runtime.memoryBudgetBytes;
      const backend = await createWebGpuBackend(gpu, budget !== undefined ? { memoryBudgetBytes: budget } : {});
      return { model, backend, close: async () => backend.destroy() };
    },
    peers: init.peers.map((p, i) => domPort(p, `host ${i + 1}`)),
    served: init.served.map((p) => domPort(p, `${init.runtime.name} (from the query host)`)),
  });
};
scope.addEventListener('message', onInit);
