// The messages between the extension host and its webview that carry the host workers (hostBridge.ts on the
// page, webviewHostPool.ts in the extension host). Every one has `channel: 'hosts'` so the page can route it.
// Coarse by design: StarHost calls (blocks to encode, KV to load), the question and the streamed tokens cross
// here; per-layer traffic stays between the workers (MessagePorts inside the page). KV crosses as typed arrays
// inside the message (the webview's postMessage carries them as binary), never as JSON arrays of numbers.
import type { SerializedError } from './errors';

export const HOSTS_CHANNEL = 'hosts';

export interface HostWorkersStart {
  /** The dist/webview/hostWorker.js URL the page may fetch (webview.asWebviewUri; it becomes a blob: URL there). */
  readonly workerScriptUrl: string;
  /** Relative name -> URL the page may fetch; fetched once, the Blobs handed to every worker. */
  readonly modelFiles: Record<string, string>;
  readonly modelName: string;
  readonly hosts: number;
  readonly memoryBudgetBytes?: number;
  readonly maxBatchRows?: number;
}

/** Extension host -> page. */
export type ToPage =
  | ({ readonly channel: 'hosts'; readonly type: 'start'; readonly session: string } & HostWorkersStart)
  /** A message (an RPC message, rpc.ts) for worker `worker`. */
  | { readonly channel: 'hosts'; readonly type: 'to'; readonly session: string; readonly worker: number; readonly message: unknown }
  | { readonly channel: 'hosts'; readonly type: 'stop'; readonly session: string };

/** Page -> extension host. */
export type FromPage =
  /** At once on 'start': the bridge is there (the workers and the model files take longer). */
  | { readonly channel: 'hosts'; readonly type: 'accepted'; readonly session: string }
  /** The workers exist and got their init (each still opens its model: describe() waits for it); or why not. */
  | { readonly channel: 'hosts'; readonly type: 'started'; readonly session: string; readonly error?: SerializedError }
  | { readonly channel: 'hosts'; readonly type: 'from'; readonly session: string; readonly worker: number; readonly message: unknown }
  | { readonly channel: 'hosts'; readonly type: 'crashed'; readonly session: string; readonly worker: number; readonly message: string };

export function isHostsMessage(m: unknown): m is ToPage | FromPage {
  return typeof m === 'object' && m !== null && (m as { channel?: unknown }).channel === HOSTS_CHANNEL;
}

/**
 * Payload bytes of a message as it crosses: typed arrays and buffers by their byte length, strings by their
 * length, other scalars 8 bytes, plus object keys. Exact for the binary part (KV), an estimate for the rest.
 */
export function payloadBytes(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object') return 8;
  if (Array.isArray(value)) return value.reduce((s: number, v) => s + payloadBytes(v), 0);
  let sum = 0;
  for (const [k, v] of Object.entries(value)) sum += k.length + payloadBytes(v);
  return sum;
}
