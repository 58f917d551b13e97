// The chat panel: a webview view in its own activity-bar container. Its page (webview/main.ts) shows the
// conversation AND hosts the WebGPU Worker hosts, so the view is kept alive while hidden
// (retainContextWhenHidden): hiding the panel must not drop the GPU devices and the weights they hold.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseFromChat, type FromChat, type ToChat } from '../protocol/chatMessages';
import type { HostChannel } from '../node/star/webviewHostPool';
import { readSettings } from './settings';
import { Transcript } from './transcript';

export const CHAT_VIEW_ID = 'starAttention.chat';

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private ready: Promise<void> | undefined;
  private readyResolve: (() => void) | undefined;
  private readonly uiListeners = new Set<(msg: FromChat) => void>();
  private readonly hostListeners = new Set<(msg: unknown) => void>();
  private readonly disposedListeners = new Set<() => void>();
  /** What the UI must show again after the page (re)loads. */
  private lastStatus: ToChat | undefined;
  /** The conversation: a reloaded page (new resource roots, a recreated view) gets it back. */
  private readonly transcript = new Transcript();
  private modelDir: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** Payload bytes that crossed the extension host <-> webview boundary on the hosts' channel. */
  readonly bytes = { sent: 0, received: 0 };

  constructor(private readonly extensionUri: vscode.Uri) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
    // The configured model's folder is allowed from the start: changing the options later reloads the page, and
    // with it the question already shown (its streamed answer would go nowhere).
    this.modelDir ??= configuredModelDir();
    view.webview.options = this.webviewOptions();
    view.webview.html = this.html(view.webview);
    this.disposables.push(
      view.webview.onDidReceiveMessage((msg: unknown) => this.receive(msg)),
      view.onDidDispose(() => {
        this.view = undefined;
        this.ready = undefined;
        for (const l of [...this.disposedListeners]) l();
      }),
    );
  }

  /** Shows the panel (creating its page if needed) and waits until the page has started. */
  async reveal(preserveFocus = true): Promise<vscode.Webview> {
    if (!this.view) await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`, { preserveFocus });
    else if (!this.view.visible) this.view.show(preserveFocus);
    for (let i = 0; i < 100 && !this.view; i++) await new Promise((r) => setTimeout(r, 50));
    if (!this.view || !this.ready) throw new Error('the Star Attention chat view could not be opened');
    await this.ready;
    return this.view.webview;
  }

  /** The model's folder must be readable by the page (its Workers fetch the weights from there). */
  allowModelFolder(modelPath: string, isFolder: boolean): void {
    const dir = isFolder ? modelPath : dirname(modelPath);
    if (dir === this.modelDir) return;
    this.modelDir = dir;
    if (!this.view) return;
    // New options reload the page: wait for the new one's 'ready' before talking to it.
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
    this.view.webview.options = this.webviewOptions();
  }

  asWebviewUri(path: string): string {
    if (!this.view) throw new Error('the chat view is not open');
    return this.view.webview.asWebviewUri(vscode.Uri.file(path)).toString();
  }

  workerScriptUri(): string {
    if (!this.view) throw new Error('the chat view is not open');
    return this.view.webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'hostWorker.js')).toString();
  }

  postUi(msg: ToChat): void {
    if (msg.type === 'status') this.lastStatus = msg;
    else this.transcript.record(msg);
    void this.view?.webview.postMessage(msg);
  }

  onUi(listener: (msg: FromChat) => void): vscode.Disposable {
    this.uiListeners.add(listener);
    return new vscode.Disposable(() => this.uiListeners.delete(listener));
  }

  /** Called once when the current page goes away (the view was disposed): its Workers are gone with it. */
  onPageDisposed(listener: () => void): vscode.Disposable {
    this.disposedListeners.add(listener);
    return new vscode.Disposable(() => this.disposedListeners.delete(listener));
  }

  /** The hosts' side of the webview: what createWebviewHostPool talks through. */
  hostChannel(): HostChannel {
    const provider = this;
    return {
      post(message: unknown) {
        if (!provider.view) throw new Error('the chat view was closed: its GPU workers are gone');
        void provider.view.webview.postMessage(message);
      },
      onMessage(listener: (message: unknown) => void) {
        provider.hostListeners.add(listener);
        return () => provider.hostListeners.delete(listener);
      },
      bytes: provider.bytes,
      onClose(listener: () => void) {
        provider.disposedListeners.add(listener);
        return () => provider.disposedListeners.delete(listener);
      },
    };
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private receive(msg: unknown): void {
    if (typeof msg === 'object' && msg !== null && (msg as { channel?: unknown }).channel === 'hosts') {
      for (const l of this.hostListeners) l(msg);
      return;
    }
    const ui = parseFromChat(msg);
    if (!ui) return;
    if (ui.type === 'ready') {
      this.readyResolve?.();
      void this.view?.webview.postMessage(this.transcript.restoreMessage());
      if (this.lastStatus) void this.view?.webview.postMessage(this.lastStatus);
    }
    for (const l of this.uiListeners) l(ui);
  }

  private webviewOptions(): vscode.WebviewOptions {
    const roots = [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(this.extensionUri, 'media')];
    if (this.modelDir) roots.push(vscode.Uri.file(this.modelDir));
    return { enableScripts: true, localResourceRoots: roots };
  }

  private html(webview: vscode.Webview): string {
    const nonce = randomBytes(18).toString('base64url');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'chat.css'));
    // Scripts: only this nonce's module. Workers: only blob: (made from the fetched worker bundle). Fetch: only
    // this webview's resources (the worker bundle and the model files). No inline script, no eval, no remote code.
    const csp = [
      "default-src 'none'",
      `script-src 'nonce-${nonce}' ${webview.cspSource}`,
      'worker-src blob:',
      `connect-src ${webview.cspSource}`,
      `style-src ${webview.cspSource}`,
      `img-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>Star Attention</title>
</head>
<body>
<main id="app"></main>
<script type="module" nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}

/** The folder of the configured model (itself when it is a folder), or undefined when none is set or readable. */
function configuredModelDir(): string | undefined {
  const model = readSettings().model;
  if (!model) return undefined;
  try {
    return statSync(model).isDirectory() ? model : dirname(model);
  } catch {
    return undefined;
  }
}
