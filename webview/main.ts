// The chat webview's page. It does two jobs, kept apart by each message's `channel`:
// - 'ui': the conversation (chatUi.ts), driven by the extension host;
// - 'hosts': the Star Attention hosts, WebGPU Workers that live in this page (hostBridge.ts). The page only
//   relays their coarse messages; phase 2's per-layer traffic stays between the Workers (MessagePorts).
import type { FromChat, ToChat } from '../src/protocol/chatMessages';
import { ChatUi } from './chatUi';
import { installHostBridge } from './hostBridge';

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void };

const vscode = acquireVsCodeApi();
const ui = new ChatUi(document.getElementById('app')!, (msg: FromChat) => vscode.postMessage(msg));
const hosts = installHostBridge((msg) => vscode.postMessage(msg));

window.addEventListener('message', (event: MessageEvent) => {
  const msg = event.data as { channel?: string } | null;
  if (!msg || typeof msg !== 'object') return;
  if (msg.channel === 'hosts') hosts(msg);
  else if (msg.channel === 'ui') ui.handle(msg as ToChat);
});

vscode.postMessage({ channel: 'ui', type: 'ready' } satisfies FromChat);
