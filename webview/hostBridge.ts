// The webview page's side of the host workers (src/protocol/hostChannel.ts): on 'start' it checks WebGPU, fetches
// the worker script (a webview resource URL cannot be a Worker URL: it becomes a blob: URL) and the model files
// (as Blobs, once, shared by every worker), starts N dedicated Workers, and wires a MessageChannel from worker 0
// (the query host) to each other worker, so phase 2's per-layer calls never leave the page. Then it relays the
// extension host's coarse messages to the workers and back.
import { DeviceError } from '../src/engine/errors';
import { serializeError } from '../src/protocol/errors';
import { HOSTS_CHANNEL, isHostsMessage, type FromPage, type HostWorkersStart, type ToPage } from '../src/protocol/hostChannel';
import type { WebviewHostWorkerInit } from './hostWorker';

interface Session {
  readonly id: string;
  workers: Worker[];
  /** Set by 'stop' (possibly while the workers are still being made). */
  stopped: boolean;
  blobUrl?: string;
}

/**
 * Installs the bridge; `post` sends to the extension host (vscode.postMessage). Returns the handler for the
 * incoming `channel: 'hosts'` messages.
 */
export function installHostBridge(post: (msg: unknown) => void): (msg: unknown) => void {
  const sessions = new Map<string, Session>();
  const send = (m: FromPage) => post(m);

  const start = async (s: Session, o: HostWorkersStart): Promise<void> => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) throw new DeviceError('WebGPU is not available in the webview: navigator.gpu is missing');
    if (!(await gpu.requestAdapter())) throw new DeviceError('WebGPU is not available in the webview: no GPU adapter was found');
    const script = await fetchOk(o.workerScriptUrl);
    s.blobUrl = URL.createObjectURL(new Blob([await script.text()], { type: 'text/javascript' }));
    const files: Record<string, Blob> = {};
    for (const [name, url] of Object.entries(o.modelFiles)) files[name] = await (await fetchOk(url)).blob();
    if (s.stopped) return;
    const channels = Array.from({ length: o.hosts - 1 }, () => new MessageChannel());
    s.workers = Array.from({ length: o.hosts }, (_, i) => {
      const worker = new Worker(s.blobUrl!, { type: 'module', name: `star-host-${i}` });
      worker.onmessage = (e) => send({ channel: HOSTS_CHANNEL, type: 'from', session: s.id, worker: i, message: e.data });
      worker.onerror = (e) => send({ channel: HOSTS_CHANNEL, type: 'crashed', session: s.id, worker: i, message: e.message || 'the worker script failed' });
      const peers = i === 0 ? channels.map((c) => c.port1) : [];
      const served = i === 0 ? [] : [channels[i - 1]!.port2];
      const init: WebviewHostWorkerInit = {
        kind: 'init', modelName: o.modelName, files, peers, served,
        runtime: { name: `host ${i} (webview)`, memoryBudgetBytes: o.memoryBudgetBytes, maxBatchRows: o.maxBatchRows },
      };
      worker.postMessage(init, [...peers, ...served]);
      return worker;
    });
  };

  const stop = (s: Session) => {
    s.stopped = true;
    for (const w of s.workers) w.terminate();
    if (s.blobUrl) URL.revokeObjectURL(s.blobUrl);
    sessions.delete(s.id);
  };

  return (msg: unknown) => {
    if (!isHostsMessage(msg)) return;
    const m = msg as ToPage;
    switch (m.type) {
      case 'start': {
        const s: Session = { id: m.session, workers: [], stopped: false };
        sessions.set(m.session, s);
        send({ channel: HOSTS_CHANNEL, type: 'accepted', session: s.id });
        start(s, m).then(
          () => send({ channel: HOSTS_CHANNEL, type: 'started', session: s.id }),
          (err: unknown) => {
            stop(s);
            send({ channel: HOSTS_CHANNEL, type: 'started', session: s.id, error: serializeError(err) });
          },
        );
        return;
      }
      case 'to': {
        // The message was deserialized for this page: its buffers are ours to move into the worker.
        sessions.get(m.session)?.workers[m.worker]?.postMessage(m.message, buffersOf(m.message));
        return;
      }
      case 'stop': {
        const s = sessions.get(m.session);
        if (s) stop(s);
        return;
      }
    }
  };
}

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url}: HTTP ${r.status}`);
  return r;
}

/** Every whole ArrayBuffer under `value` (each once). */
function buffersOf(value: unknown, out = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) out.add(value.buffer);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) buffersOf(v, out);
  }
  return [...out];
}
