// The page's side of the engine worker: request/reply by id, streamed tokens, cancellation, and errors rebuilt
// into the engine's classes. A Worker inside a VS Code webview must come from a blob: URL (a webview resource
// URI is another origin), so the worker script is fetched as text first.
import { deserializeError, type EngineReply, type EngineRequest, type GenerationStats } from '../src/protocol/engineMessages';

type Pending = {
  resolve(reply: EngineReply): void;
  reject(err: Error): void;
  onToken?: (token: number, text: string) => void;
};

export interface GenerateRequest {
  readonly promptIds: number[];
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP?: number;
  readonly seed?: number;
}

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(private readonly worker: Worker) {
    worker.onmessage = (event: MessageEvent<EngineReply>) => this.receive(event.data);
    worker.onerror = (event) => this.failAll(new Error(`engine worker failed: ${event.message}`));
  }

  static async start(workerScriptUrl: string): Promise<EngineClient> {
    const response = await fetch(workerScriptUrl);
    if (!response.ok) throw new Error(`cannot fetch the engine worker script ${workerScriptUrl}: HTTP ${response.status}`);
    const blobUrl = URL.createObjectURL(new Blob([await response.text()], { type: 'text/javascript' }));
    return new EngineClient(new Worker(blobUrl, { type: 'module', name: 'star-engine' }));
  }

  async load(name: string, files: Record<string, Blob>): Promise<{ device: string; architecture: string; f16: boolean }> {
    const reply = await this.request({ kind: 'load', id: this.nextId++, name, files });
    if (reply.kind !== 'loaded') throw new Error(`unexpected reply ${reply.kind} to load`);
    return reply;
  }

  async generate(
    req: GenerateRequest,
    onToken?: (token: number, text: string) => void,
    signal?: AbortSignal,
  ): Promise<{ ids: number[]; text: string; stats: GenerationStats }> {
    const id = this.nextId++;
    const abort = () => this.worker.postMessage({ kind: 'cancel', id: this.nextId++, target: id } satisfies EngineRequest);
    signal?.addEventListener('abort', abort, { once: true });
    try {
      const reply = await this.request({ kind: 'generate', id, ...req }, onToken);
      if (reply.kind !== 'done') throw new Error(`unexpected reply ${reply.kind} to generate`);
      return reply;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  dispose(): void {
    this.worker.terminate();
    this.failAll(new Error('engine worker disposed'));
  }

  private request(message: EngineRequest, onToken?: Pending['onToken']): Promise<EngineReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject, onToken });
      this.worker.postMessage(message);
    });
  }

  private receive(reply: EngineReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    if (reply.kind === 'token') {
      pending.onToken?.(reply.token, reply.text);
      return;
    }
    this.pending.delete(reply.id);
    if (reply.kind === 'error') pending.reject(deserializeError(reply.error));
    else pending.resolve(reply);
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
