// Test page: runs the engine worker (dist/webview/worker.js) exactly as the webview does, through EngineClient.
import { EngineClient } from '../../webview/engineClient';

async function fetchBlob(url: string): Promise<Blob> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.blob();
}

async function withClient<T>(fn: (client: EngineClient) => Promise<T>): Promise<T> {
  const client = await EngineClient.start('/worker.js');
  try {
    return await fn(client);
  } finally {
    client.dispose();
  }
}

const api = {
  /** Greedy ids from BOS, streamed token by token. */
  async greedy(modelUrl: string, name: string, maxTokens: number) {
    return withClient(async (client) => {
      const loaded = await client.load(name, { [name]: await fetchBlob(modelUrl) });
      const streamed: number[] = [];
      const done = await client.generate({ promptIds: [1], maxTokens, temperature: 0 }, (t) => streamed.push(t));
      return { loaded, ids: done.ids, streamed, stats: done.stats };
    });
  },
  /** Loads a model and reports how loading failed. */
  async loadError(modelUrl: string, name: string) {
    return withClient(async (client) => {
      try {
        await client.load(name, { [name]: await fetchBlob(modelUrl) });
        return null;
      } catch (err) {
        return { name: (err as Error).name, message: (err as Error).message };
      }
    });
  },
  /** Cancels a generation after `after` streamed tokens. */
  async cancelAfter(modelUrl: string, name: string, after: number) {
    return withClient(async (client) => {
      await client.load(name, { [name]: await fetchBlob(modelUrl) });
      const controller = new AbortController();
      let seen = 0;
      try {
        await client.generate({ promptIds: [1], maxTokens: 400, temperature: 0 }, () => {
          if (++seen === after) controller.abort();
        }, controller.signal);
        return { error: null, seen };
      } catch (err) {
        return { error: (err as Error).name, seen };
      }
    });
  },
};

export type Harness = { harness: typeof api };
(globalThis as unknown as Harness).harness = api;
