// A HostPool whose hosts are dedicated Workers in the extension's webview (webview/hostBridge.ts starts them),
// each with its own WebGPU device and weights; worker 0 is the query host and reaches the others through
// MessagePorts inside the page. The extension host talks to each worker through the HostChannel (the webview's
// postMessage) with the same StarHostClient as a worker thread. No `vscode` import: the caller wraps its webview.
import { EngineError } from '../../engine/errors';
import { deserializeError } from '../../protocol/errors';
import { HOSTS_CHANNEL, isHostsMessage, payloadBytes, type FromPage, type HostWorkersStart, type ToPage } from '../../protocol/hostChannel';
import type { MessagePortLike } from '../../protocol/port';
import { StarHostClient } from '../../protocol/starHost';
import { poolOfClients, type HostPool } from './hostPool';
import { checkHostCount } from './localHosts';

/** The extension's webview, seen from the extension host. */
export interface HostChannel {
  /** webview.postMessage */
  post(message: unknown): void;
  /** webview.onDidReceiveMessage; returns the unsubscribe. */
  onMessage(listener: (message: unknown) => void): () => void;
  /** Payload bytes that crossed the boundary (payloadBytes); the pool adds to them. */
  readonly bytes: { sent: number; received: number };
  /** Optional: the webview was disposed (the hosts are gone with it); returns the unsubscribe. */
  onClose?(listener: () => void): () => void;
}

/** What the webview's workers are started with (the workers' script and model files as URLs the webview can fetch). */
export type WebviewPoolOptions = HostWorkersStart;

let sessions = 0;

/** How long the page may take to acknowledge 'start' (only that: fetching the model and starting workers take longer). */
export const BRIDGE_ACCEPT_TIMEOUT_MS = 15_000;

/**
 * Starts the webview's host workers. Rejects with DeviceError('WebGPU is not available in the webview: ...') when
 * navigator.gpu or an adapter is missing (the caller falls back to createThreadHostPool); a worker that crashes, or
 * the webview closing, rejects pending calls with an EngineError and leaves the pool unusable.
 */
export async function createWebviewHostPool(channel: HostChannel, opts: WebviewPoolOptions): Promise<HostPool> {
  const count = checkHostCount(opts.hosts);
  const session = `hosts-${process.pid}-${++sessions}-${Date.now()}`;
  const send = (m: ToPage) => {
    channel.bytes.sent += payloadBytes(m);
    channel.post(m);
  };
  const receivers = new Map<number, Set<(m: unknown) => void>>();
  const closers = new Set<(reason: Error) => void>();
  let started: { resolve(): void; reject(err: Error): void } | undefined;
  const startedP = new Promise<void>((resolve, reject) => { started = { resolve, reject }; });
  let acceptTimer: ReturnType<typeof setTimeout> | undefined;
  const closeAll = (reason: Error) => {
    started?.reject(reason);
    for (const c of [...closers]) c(reason);
  };

  const unsubscribe = channel.onMessage((raw) => {
    if (!isHostsMessage(raw)) return;
    const m = raw as FromPage;
    if (m.session !== session) return;
    channel.bytes.received += payloadBytes(m);
    if (m.type === 'accepted') {
      clearTimeout(acceptTimer);
    } else if (m.type === 'started') {
      if (m.error) started?.reject(deserializeError(m.error));
      else started?.resolve();
    } else if (m.type === 'from') {
      for (const r of receivers.get(m.worker) ?? []) r(m.message);
    } else if (m.type === 'crashed') {
      // One worker lost is the pool lost (its blocks are gone): every host's calls fail.
      closeAll(new EngineError(`host ${m.worker} (webview worker) crashed: ${m.message}`));
    }
  });
  const unsubscribeClose = channel.onClose?.(() => closeAll(new EngineError('the webview holding the hosts was closed; ask again to start them anew')));
  const stop = async () => {
    send({ channel: HOSTS_CHANNEL, type: 'stop', session });
    unsubscribe();
    unsubscribeClose?.();
  };

  send({ ...opts, channel: HOSTS_CHANNEL, type: 'start', session, hosts: count });
  // A page without the bridge would leave us waiting for ever: say so instead.
  acceptTimer = setTimeout(() => started?.reject(new EngineError(
    `the webview did not acknowledge starting the hosts within ${BRIDGE_ACCEPT_TIMEOUT_MS / 1000} s (is installHostBridge running on the page?)`)), BRIDGE_ACCEPT_TIMEOUT_MS);
  try {
    await startedP;
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(acceptTimer);
  }
  const port = (worker: number): MessagePortLike => ({
    postMessage: (message) => send({ channel: HOSTS_CHANNEL, type: 'to', session, worker, message }),
    onMessage(handler) {
      const set = receivers.get(worker) ?? new Set();
      receivers.set(worker, set.add(handler));
      return () => set.delete(handler);
    },
    onClose(handler) {
      closers.add(handler);
      return () => closers.delete(handler);
    },
  });
  const clients = Array.from({ length: count }, (_, i) => new StarHostClient(port(i), `host ${i} (webview)`));
  return poolOfClients(clients, () => 'webview-webgpu', stop);
}
