// The one thing the host protocol needs from a message channel: post, and listen. Adapters live with their
// platform (src/node/star/nodePort.ts for worker_threads, webview/domPort.ts for DOM workers and ports,
// src/node/star/webviewHostPool.ts for the extension <-> webview channel); the protocol itself is platform-free.

/** What a transfer list may hold: ArrayBuffers and platform message ports, opaque here. */
export type Transferable = object;

export interface MessagePortLike {
  /** Posts a structured-clonable message; buffers in `transfer` move instead of being copied. */
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Listens for messages; returns the unsubscribe. */
  onMessage(handler: (message: unknown) => void): () => void;
  /**
   * Optional: called once when the other side is gone for good (a worker crashed or exited, a port closed), with
   * the reason; returns the unsubscribe. Clients reject their pending calls with it.
   */
  onClose?(handler: (reason: Error) => void): () => void;
}

/**
 * The buffers of `arrays` that may move instead of being copied: each array must span its whole buffer (a view
 * into a larger one would take its neighbours along); a buffer is listed once.
 */
export function transferList(arrays: Iterable<ArrayBufferView>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    const b = a.buffer;
    if (b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength) out.add(b);
  }
  return [...out];
}
