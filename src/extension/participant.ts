// `@codebase` in VS Code's chat view, where the chat participant API exists: the same question path, streamed as
// markdown, with the sources as references to the lines the model attended to.
import * as vscode from 'vscode';
import type { CodebaseService } from './codebaseService';
import { explainError } from './errorActions';
import { questionFolder } from './folders';

export function registerParticipant(service: CodebaseService, extensionUri: vscode.Uri, log: vscode.LogOutputChannel): vscode.Disposable | undefined {
  // Older hosts and some forks have no chat API: the rest of the extension works without it.
  const chat = (vscode as { chat?: typeof vscode.chat }).chat;
  if (!chat || typeof chat.createChatParticipant !== 'function') {
    log.info('the chat participant API is not available here: @codebase is not registered');
    return undefined;
  }
  const participant = chat.createChatParticipant('starAttention.codebase', async (request, _context, stream, token) => {
    const folder = await questionFolder();
    if (!folder) return;
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    try {
      stream.progress('Reading the repository…');
      const result = await service.ask({ question: request.prompt, folder, signal: abort.signal, onText: (t) => stream.markdown(t) });
      for (const s of result.sources.slice(0, 8)) {
        const uri = vscode.Uri.joinPath(folder.uri, s.path);
        const span = s.spans[0];
        stream.reference(span ? new vscode.Location(uri, new vscode.Range(span.startLine - 1, 0, span.endLine - 1, 0)) : uri);
      }
      return { metadata: { tokens: result.ids.length } };
    } catch (err) {
      const e = explainError(err);
      if (e.cancelled) return {};
      for (const a of e.actions) stream.button({ command: a.command, title: a.label });
      return { errorDetails: { message: e.message } };
    } finally {
      sub.dispose();
    }
  });
  participant.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
  return participant;
}
