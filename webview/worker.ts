// The engine in a dedicated Worker: it owns a WebGPU device (navigator.gpu) and a model, and answers the
// typed messages of src/protocol/engineMessages.ts. The same engine code runs in Node (Dawn) and here.
import { createWebGpuBackend } from '../src/engine/backend/webgpu';
import type { Backend } from '../src/engine/backend/types';
import { CancelledError, DeviceError, EngineError } from '../src/engine/errors';
import { loadModel } from '../src/engine/model/loadModel';
import type { LoadedModel } from '../src/engine/model/types';
import { generateText } from '../src/engine/runtime/generateText';
import { Transformer } from '../src/engine/runtime/transformer';
import { serializeError, type EngineReply, type EngineRequest } from '../src/protocol/engineMessages';
import { BlobByteSource, blobFileSet } from './blobByteSource';

// Typed as the two members used: the DOM lib (for the page) and the WebWorker lib cannot share one program.
const scope = self as unknown as {
  postMessage(message: EngineReply): void;
  onmessage: ((event: MessageEvent<EngineRequest>) => void) | null;
};

let state: { model: LoadedModel; backend: Backend; transformer: Transformer } | undefined;
const running = new Map<number, AbortController>();

const reply = (message: EngineReply) => scope.postMessage(message);

scope.onmessage = (event: MessageEvent<EngineRequest>) => {
  const request = event.data;
  if (request.kind === 'cancel') {
    running.get(request.target)?.abort();
    return;
  }
  handle(request).catch((err: unknown) => reply({ kind: 'error', id: request.id, error: serializeError(err) }));
};

async function handle(request: Exclude<EngineRequest, { kind: 'cancel' }>): Promise<void> {
  switch (request.kind) {
    case 'load': {
      state?.backend.destroy();
      state = undefined;
      const names = Object.keys(request.files);
      const only = names.length === 1 ? request.files[names[0]!] : undefined;
      const model = await loadModel(only ? new BlobByteSource(request.name, only) : blobFileSet(request.name, request.files));
      if (!('gpu' in navigator) || !navigator.gpu) throw new DeviceError('WebGPU is not available in this worker (navigator.gpu is missing)');
      const backend = await createWebGpuBackend(navigator.gpu);
      const transformer = await Transformer.create(model, backend);
      state = { model, backend, transformer };
      reply({ kind: 'loaded', id: request.id, device: backend.deviceName, architecture: model.config.architecture, f16: backend.f16 });
      return;
    }
    case 'generate': {
      if (!state) throw new EngineError('no model is loaded in this worker');
      const controller = new AbortController();
      running.set(request.id, controller);
      try {
        const { transformer, model, backend } = state;
        let prefillMs = 0;
        let firstAt = 0;
        let lastAt = 0;
        const ids: number[] = [];
        let text = '';
        const stream = generateText(transformer, model.tokenizer, request.promptIds, {
          maxTokens: request.maxTokens, temperature: request.temperature, topP: request.topP, seed: request.seed,
          signal: controller.signal, onPrefill: (ms) => { prefillMs = ms; },
        });
        for (;;) {
          const next = await stream.next();
          if (next.done) {
            text += next.value.tail;
            break;
          }
          lastAt = performance.now();
          if (ids.length === 0) firstAt = lastAt;
          ids.push(next.value.id);
          text += next.value.text;
          reply({ kind: 'token', id: request.id, token: next.value.id, text: next.value.text });
        }
        const decodeSec = (lastAt - firstAt) / 1000;
        reply({
          kind: 'done', id: request.id, ids, text,
          stats: {
            promptTokens: request.promptIds.length,
            generatedTokens: ids.length,
            prefillTokensPerSec: prefillMs > 0 ? request.promptIds.length / (prefillMs / 1000) : 0,
            decodeTokensPerSec: ids.length > 1 && decodeSec > 0 ? (ids.length - 1) / decodeSec : 0,
            device: backend.deviceName,
          },
        });
      } catch (err) {
        if (controller.signal.aborted && !(err instanceof CancelledError)) throw new CancelledError();
        throw err;
      } finally {
        running.delete(request.id);
      }
      return;
    }
  }
}
