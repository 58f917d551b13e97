// A CPU forward pass runs as one long chain of already-resolved promises: no timer, I/O callback or signal
// handler (Ctrl-C) gets to run until it ends. Awaiting this between layers lets them run, so an abort fired by
// such a handler is seen within the block being encoded, and pending cache writes make progress.
type Schedule = (callback: () => void) => unknown;

interface Port {
  onmessage: (() => void) | null;
  postMessage(message: unknown): void;
  close?(): void;
}

const host = globalThis as {
  setImmediate?: Schedule;
  MessageChannel?: new () => { port1: Port; port2: Port };
  setTimeout?: (callback: () => void, ms: number) => unknown;
};

/** Resolves after the host's pending events have had a turn (Node: setImmediate; browsers: a message). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (host.setImmediate) {
      host.setImmediate(resolve);
    } else if (host.MessageChannel) {
      // setTimeout(0) is clamped to >= 4 ms in browsers after a few nested calls; a message is not.
      const channel = new host.MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close?.();
        resolve();
      };
      channel.port2.postMessage(0);
    } else {
      host.setTimeout!(resolve, 0);
    }
  });
}
