// Chooses where the model runs and starts the Star Attention hosts there, in the order the product promises
// ("host" alone is always a Star Attention host here; VS Code's process is "the extension host", in full):
// WebGPU Workers in the chat webview (the user's GPU, through the browser) -> Dawn WebGPU in worker threads of the
// extension host -> the CPU in worker threads. Heavy work never runs on the extension host's main thread. The
// reason for the choice is kept, so the status bar and the panel can say why.
import * as vscode from 'vscode';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DeviceError } from '../engine/errors';
import { createThreadHostPool, type HostPool } from '../node/star/hostPool';
import { createWebviewHostPool } from '../node/star/webviewHostPool';
import type { ChatViewProvider } from './chatView';
import type { HostKindSetting } from './settings';

export interface StartedPool {
  readonly pool: HostPool;
  /** For people: "WebGPU workers in the webview", "Dawn WebGPU (extension host)", "CPU (extension host)". */
  readonly label: string;
  /** Why this kind: the failures of the kinds tried before it, or the setting. */
  readonly reason: string;
}

export const HOST_KIND_LABELS: Record<HostPool['kind'], string> = {
  'webview-webgpu': 'WebGPU workers in the webview',
  'node-webgpu': 'Dawn WebGPU in the extension host',
  'node-cpu': 'CPU in the extension host',
  'in-process': 'in-process',
};

export async function startHostPool(o: {
  readonly kind: HostKindSetting;
  readonly modelPath: string;
  readonly hosts: number;
  readonly extensionPath: string;
  readonly chat: ChatViewProvider;
  readonly log: vscode.LogOutputChannel;
}): Promise<StartedPool> {
  const failures: string[] = [];
  const attempts: [HostPool['kind'], () => Promise<HostPool>][] = [];
  const workerScript = join(o.extensionPath, 'dist', 'extensionHostWorker.mjs');
  if (o.kind === 'auto' || o.kind === 'webview') attempts.push(['webview-webgpu', () => startWebviewPool(o)]);
  if (o.kind === 'auto' || o.kind === 'node-webgpu') {
    attempts.push(['node-webgpu', () => createThreadHostPool({ modelPath: o.modelPath, backend: 'webgpu', hosts: o.hosts, workerScript })]);
  }
  if (o.kind === 'auto' || o.kind === 'cpu') {
    attempts.push(['node-cpu', () => createThreadHostPool({ modelPath: o.modelPath, backend: 'cpu', hosts: o.hosts, workerScript })]);
  }
  for (const [kind, start] of attempts) {
    try {
      o.log.info(`starting hosts: ${HOST_KIND_LABELS[kind]} (${o.hosts})`);
      const pool = await start();
      const reason = failures.length ? failures.join('; ') : o.kind === 'auto' ? `${HOST_KIND_LABELS[kind]}: the first choice, available here` : `starAttention.hostKind is "${o.kind}"`;
      o.log.info(`hosts ready: ${HOST_KIND_LABELS[pool.kind]} on ${pool.device} (${reason})`);
      return { pool, label: HOST_KIND_LABELS[pool.kind], reason };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      o.log.warn(`${HOST_KIND_LABELS[kind]} unavailable: ${message}`);
      // Only a missing or failing device moves on to the next kind; a bad model fails the same everywhere.
      if (!(err instanceof DeviceError) && !/webgpu|adapter|device|gpu/i.test(message)) throw err;
      failures.push(`${HOST_KIND_LABELS[kind]} unavailable: ${message}`);
    }
  }
  throw new DeviceError(`no host could start: ${failures.join('; ')}`);
}

async function startWebviewPool(o: { modelPath: string; hosts: number; chat: ChatViewProvider }): Promise<HostPool> {
  const isFolder = (await stat(o.modelPath)).isDirectory();
  o.chat.allowModelFolder(o.modelPath, isFolder);
  await o.chat.reveal(true);
  const files: Record<string, string> = {};
  if (isFolder) {
    for (const name of await readdir(o.modelPath)) {
      if (/\.(json|safetensors|txt|model|gguf)$/i.test(name)) files[name] = o.chat.asWebviewUri(join(o.modelPath, name));
    }
  } else {
    files[basename(o.modelPath)] = o.chat.asWebviewUri(o.modelPath);
  }
  return createWebviewHostPool(o.chat.hostChannel(), {
    workerScriptUrl: o.chat.workerScriptUri(),
    modelFiles: files,
    modelName: basename(o.modelPath),
    hosts: o.hosts,
  });
}
