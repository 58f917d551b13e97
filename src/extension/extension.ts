// VS Code extension entry point: thin glue over the engine (src/engine) and its Node layer (src/node), which have no
// dependency on `vscode`. One question, from the palette to the streamed answer:
//   Ask Codebase (here) -> ChatController.ask -> CodebaseService.ask -> RepoSession.ask (src/node/star)
//   -> the hosts (WebGPU Workers in the chat webview, or worker threads) -> tokens stream back to the panel.
import * as vscode from 'vscode';
import { join } from 'node:path';
import { BackgroundIndexer } from './backgroundIndexer';
import { ChatController } from './chatController';
import { CHAT_VIEW_ID, ChatViewProvider } from './chatView';
import { CodebaseService } from './codebaseService';
import { questionFolder } from './folders';
import { InlineChat } from './inlineChat';
import { selectModel } from './modelPicker';
import { registerParticipant } from './participant';
import { LAYOUT_SETTINGS, POOL_SETTINGS } from './settings';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Star Attention', { log: true });
  const chat = new ChatViewProvider(context.extensionUri);
  const service = new CodebaseService(context.extensionPath, chat, log, join(context.logUri.fsPath, 'metrics.jsonl'));
  const controller = new ChatController(service, chat, log);
  const inline = new InlineChat(service, log);
  const indexer = new BackgroundIndexer(service, log);
  const participant = registerParticipant(service, context.extensionUri, log);

  context.subscriptions.push(
    log, chat, service, controller, inline, indexer, ...(participant ? [participant] : []),
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, chat, { webviewOptions: { retainContextWhenHidden: true } }),

    vscode.commands.registerCommand('starAttention.askCodebase', async (question?: string) => {
      const q = typeof question === 'string' && question.trim() ? question : await vscode.window.showInputBox({
        title: 'Ask Codebase', prompt: 'Ask a question about the whole repository', placeHolder: 'e.g. Where are settings read, and what happens when they change?',
      });
      if (!q?.trim()) return;
      const folder = await controller.ask(q.trim());
      if (folder) indexer.markIndexed(folder);
    }),
    vscode.commands.registerCommand('starAttention.openChat', async () => {
      await chat.reveal(false);
      chat.postUi({ channel: 'ui', type: 'focusInput' });
    }),
    vscode.commands.registerCommand('starAttention.askAboutSelection', async () => {
      await inline.askAboutSelection();
      const editor = vscode.window.activeTextEditor;
      const folder = editor && vscode.workspace.getWorkspaceFolder(editor.document.uri);
      if (folder) indexer.markIndexed(folder);
    }),
    vscode.commands.registerCommand('starAttention.selectModel', () => selectModel(context.globalStorageUri, log)),
    vscode.commands.registerCommand('starAttention.indexRepository', async () => {
      const folder = await questionFolder();
      if (folder) await indexer.indexNow(folder);
    }),
    vscode.commands.registerCommand('starAttention.cancel', () => {
      controller.stop();
      inline.stopAll();
      indexer.cancel();
    }),
    vscode.commands.registerCommand('starAttention.showLog', () => log.show()),
    // The files to index: the settings editor showing only `include` and `exclude`.
    vscode.commands.registerCommand('starAttention.openIndexSettings', () =>
      vscode.commands.executeCommand('workbench.action.openSettings', '@id:starAttention.include @id:starAttention.exclude')),

    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (POOL_SETTINGS.some((s) => e.affectsConfiguration(s))) {
        indexer.cancel();
        await service.resetPool();
        indexer.startup();
      } else if (LAYOUT_SETTINGS.some((s) => e.affectsConfiguration(s))) {
        indexer.cancel();
        service.resetSessions();
        indexer.startup();
      }
    }),
  );
  indexer.startup();
}

export function deactivate(): void {}
