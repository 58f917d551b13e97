// A long computation made of awaits that resolve at once (the CPU backend's are plain promises) never lets the
// event loop run: a worker running it would read its "cancel" message only when the work is over. A yield
// point, awaited between steps, gives the event loop a turn every `intervalMs` of wall time (a macrotask via
// setTimeout; ~1 ms each, so about 4% at the default), and costs nothing in between.

export const DEFAULT_YIELD_INTERVAL_MS = 25;

export function createYieldPoint(intervalMs = DEFAULT_YIELD_INTERVAL_MS): () => Promise<void> {
  let last = performance.now();
  return async () => {
    const now = performance.now();
    if (now - last < intervalMs) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    last = performance.now();
  };
}
