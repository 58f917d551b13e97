// The chat panel's conversation: a question (typed in the panel, or from "Ask Codebase") becomes a turn whose
// answer streams into the panel, with its sources as links to the lines the model attended to, and Stop.
import * as vscode from 'vscode';
import { attendedLine } from '../node/star/selectionText';
import type { FromChat, SourceView } from '../protocol/chatMessages';
import type { AskResult } from '../node/star/repoSession';
import type { ChatViewProvider } from './chatView';
import type { CodebaseService } from './codebaseService';
import { explainError } from './errorActions';
import { questionFolder } from './folders';

/** Sources shown under an answer. */
const MAX_SOURCES = 10;

export class ChatController implements vscode.Disposable {
  private nextTurn = 1;
  private current: AbortController | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly service: CodebaseService, private readonly chat: ChatViewProvider, private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(
      chat.onUi((msg) => void this.onUi(msg)),
      service.onStatus((status) => this.chat.postUi({ channel: 'ui', type: 'status', status, busy: this.current !== undefined })),
    );
  }

  /** Asks `question` about the active folder; the answer streams into the panel. Returns the folder asked about. */
  async ask(question: string): Promise<vscode.WorkspaceFolder | undefined> {
    const askedAt = performance.now();
    const folder = await questionFolder();
    if (!folder) return undefined;
    this.stop();
    const controller = new AbortController();
    this.current = controller;
    const id = this.nextTurn++;
    await this.chat.reveal(false);
    this.postBusy();
    this.chat.postUi({ channel: 'ui', type: 'turnStart', id, question });
    try {
      const result = await this.service.ask({
        question, folder, signal: controller.signal, askedAt,
        onText: (text) => this.chat.postUi({ channel: 'ui', type: 'turnText', id, text }),
      });
      this.chat.postUi({
        channel: 'ui', type: 'turnDone', id,
        sources: sourceViews(result, folder),
        stats: {
          ttftMs: result.stats.ttftMs, decodeTokensPerSec: result.stats.decodeTokensPerSec, tokens: result.ids.length,
          finish: result.stats.finish, blocksEncoded: result.stats.blocksEncoded, blocksReused: result.stats.blocksReused,
          attended: attendedLine(result.stats.selection),
        },
      });
    } catch (err) {
      const e = explainError(err);
      if (!e.cancelled) this.log.error(`question failed: ${e.message}`);
      this.chat.postUi({ channel: 'ui', type: 'turnError', id, message: e.message, cancelled: e.cancelled, actions: e.actions });
    } finally {
      if (this.current === controller) this.current = undefined;
      this.postBusy();
    }
    return folder;
  }

  stop(): void {
    this.current?.abort();
  }

  dispose(): void {
    this.stop();
    for (const d of this.disposables) d.dispose();
  }

  private postBusy(): void {
    this.chat.postUi({ channel: 'ui', type: 'status', status: this.service.status, busy: this.current !== undefined });
  }

  private async onUi(msg: FromChat): Promise<void> {
    switch (msg.type) {
      case 'ask':
        await this.ask(msg.question);
        break;
      case 'stop':
        this.stop();
        break;
      case 'openSource':
        await openSource(vscode.Uri.parse(msg.uri), msg.startLine, msg.endLine);
        break;
      case 'openLink':
        if (/^https?:\/\//i.test(msg.href)) await vscode.env.openExternal(vscode.Uri.parse(msg.href));
        break;
      case 'command':
        await vscode.commands.executeCommand(msg.command, ...(msg.command === 'workbench.action.openSettings' ? ['starAttention'] : []));
        break;
      case 'ready':
        this.postBusy();
        break;
    }
  }
}

export function sourceViews(result: AskResult, folder: vscode.WorkspaceFolder): SourceView[] {
  return result.sources.slice(0, MAX_SOURCES).map((s) => ({
    path: s.path, uri: vscode.Uri.joinPath(folder.uri, s.path).toString(), share: s.share, spans: s.spans,
  }));
}

/** Opens a source file with its lines selected; only files inside a workspace folder (the URI came from the page). */
export async function openSource(uri: vscode.Uri, startLine: number, endLine: number): Promise<void> {
  if (!vscode.workspace.getWorkspaceFolder(uri)) return;
  const range = new vscode.Range(Math.max(0, startLine - 1), 0, Math.max(0, endLine - 1), Number.MAX_SAFE_INTEGER);
  try {
    await vscode.window.showTextDocument(uri, { selection: range, preview: true });
  } catch {
    void vscode.window.showWarningMessage(`Star Attention: ${vscode.workspace.asRelativePath(uri)} cannot be opened (moved or deleted?).`);
  }
}
