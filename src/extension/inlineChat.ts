// "Ask About Selection": the question and its streamed answer appear in the editor, at the selection, as a comment
// thread (the stable Comments API: no proposed API). Every query token attends to the whole repository before the
// first answer token (linear in query tokens: ~20 ms a token on SwiftShader in the end-to-end test), so a saved
// selection the index holds is named, not pasted: its path and first line (the context has the file under its
// `==> path <==` header; line numbers are not in the context, so they would cost tokens and tell the model nothing).
// A pasted selection made the inline answer start about 5x later than the chat panel's (182 vs 37 query tokens).
// The code itself goes into the query when the index does not hold it: an unsaved file's selection, or a file the
// index skipped (ignored, excluded, too large, generated); the question's comment says so.
// The name leads the question, and runs on the hosts while the question is typed (RepoSession.prepare), and the
// thread is drawn then too: after Enter only the typed words are left, as in the chat panel (issue 13 §6).
import * as vscode from 'vscode';
import type { LedQuestion } from '../engine/star/prompt';
import type { CodebaseService } from './codebaseService';
import { explainError } from './errorActions';

const ME: vscode.CommentAuthorInformation = { name: 'You' };
const MODEL: vscode.CommentAuthorInformation = { name: 'Star Attention' };
/** Longest selection passed to the model, in characters (the rest is cut with a note). */
const MAX_SELECTION_CHARS = 8000;
/** Longest first line of a saved selection sent with the question. */
const MAX_FIRST_LINE_CHARS = 40;

class Note implements vscode.Comment {
  mode = vscode.CommentMode.Preview;
  contextValue?: string;
  constructor(public body: vscode.MarkdownString | string, public author: vscode.CommentAuthorInformation, public label?: string) {}
}

export class InlineChat implements vscode.Disposable {
  private readonly controller = vscode.comments.createCommentController('starAttention.inline', 'Star Attention');
  private readonly running = new Set<AbortController>();

  constructor(private readonly service: CodebaseService, private readonly log: vscode.LogOutputChannel) {
    // Threads are created by the command only, never by clicking in the gutter.
    this.controller.commentingRangeProvider = { provideCommentingRanges: () => [] };
  }

  async askAboutSelection(editor: vscode.TextEditor | undefined = vscode.window.activeTextEditor): Promise<void> {
    if (!editor || editor.selection.isEmpty) {
      void vscode.window.showInformationMessage('Star Attention: select some code first, then ask about it.');
      return;
    }
    const folder = vscode.workspace.getWorkspaceFolder(editor.document.uri);
    if (!folder) {
      void vscode.window.showWarningMessage('Star Attention: this file is not inside a workspace folder, so there is no repository to ask about.');
      return;
    }
    // Read now, as the command runs: the selection asked about, whatever the editor does while the question is typed.
    const { start, end } = editor.selection;
    // A selection of whole lines ends at the next line's start: that line is not part of it.
    const last = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
    const range = new vscode.Range(start.line, 0, last, 0);
    const path = vscode.workspace.asRelativePath(editor.document.uri, false);
    const lines = `${start.line + 1}-${last + 1}`;
    const code = selectedCode(editor);
    const opening = firstLine(editor);
    // Named, not pasted, when the index holds the saved file: which code, ahead of the question, so it can run on
    // the hosts while the question is typed (CodebaseService.prepare): only the typed words are left after Enter.
    const lead = `(${path}: ${opening})`;
    // The thread appears before the question is typed, both its comments there: a window's first comment thread
    // costs the workbench 1-2 s of its main thread (which relays the answer's tokens too), and a comment added later
    // a relayout of the editor; spent while the user types, not after Enter, where only the two texts change.
    const asked = new Note(new vscode.MarkdownString(`_Asking about ${escapeMarkdown(path)}, lines ${lines}…_`), ME);
    const answer = new Note(new vscode.MarkdownString('_Waiting for the question…_'), MODEL);
    const thread = this.controller.createCommentThread(editor.document.uri, range, [asked, answer]);
    thread.label = 'Star Attention';
    thread.canReply = false;
    thread.collapsibleState = vscode.CommentThreadCollapsibleState.Expanded;
    const typing = new AbortController();
    const savedAtStart = !editor.document.isDirty;
    void this.service.prepare(folder, (holds) => (savedAtStart && holds(path) ? lead : undefined), typing.signal)
      .catch((err: unknown) => this.log.debug(`the selection was not run ahead of the question: ${explainError(err).message}`));
    const question = await vscode.window.showInputBox({ title: 'Ask About Selection', prompt: 'What do you want to know about the selected code?', placeHolder: 'e.g. What calls this, and why?' });
    if (!question?.trim()) {
      typing.abort();
      thread.dispose();
      return;
    }
    const askedAt = performance.now();
    const dirty = editor.document.isDirty;
    asked.body = question.trim();
    const withCode = (why: string) => `${question.trim()}\n\nThe question is about this code from ${path}, lines ${lines} (${why}):\n\`\`\`\n${code}\n\`\`\``;
    // Decided after the question's own index, which has just walked the saved files.
    const query = (holds: (path: string) => boolean): string | LedQuestion => {
      if (dirty) return withCode('not saved yet');
      // With its leading space: a BPE tokenizer sees " What" as it would in one text.
      if (holds(path)) return { lead, question: ` ${question.trim()}` };
      asked.body = new vscode.MarkdownString(`${escapeMarkdown(question.trim())}\n\n_${escapeMarkdown(path)} is not in the index (ignored, excluded, too large or generated): the selected code went with the question._`);
      thread.comments = [...thread.comments];
      return withCode('not in the index');
    };

    answer.body = new vscode.MarkdownString('_Thinking…_');
    thread.comments = [asked, answer];
    const abort = new AbortController();
    this.running.add(abort);
    let text = '';
    let pending: ReturnType<typeof setTimeout> | undefined;
    const show = (body: string) => {
      answer.body = markdown(body);
      thread.comments = [...thread.comments]; // a new array makes the editor re-render the thread
    };
    try {
      await this.service.ask({
        question: query, folder, signal: abort.signal, askedAt,
        onText: (t) => {
          const first = text === '';
          text += t;
          // The first text at once; then at most every 50 ms: each update redraws the whole thread.
          if (first) show(`${text}▍`);
          else pending ??= setTimeout(() => { pending = undefined; show(`${text}▍`); }, 50);
        },
      });
      if (pending) clearTimeout(pending);
      show(text || '_(no answer)_');
    } catch (err) {
      if (pending) clearTimeout(pending);
      const e = explainError(err);
      if (!e.cancelled) this.log.error(`inline question failed: ${e.message}`);
      const actions = e.actions.map((a) => `[${a.label}](command:${a.command})`).join(' · ');
      show(`${text}\n\n${e.cancelled ? '_Stopped._' : `**Error:** ${escapeMarkdown(e.message)}`}${actions ? `\n\n${actions}` : ''}`);
    } finally {
      this.running.delete(abort);
    }
  }

  stopAll(): void {
    for (const a of this.running) a.abort();
  }

  dispose(): void {
    this.stopAll();
    this.controller.dispose();
  }
}

function selectedCode(editor: vscode.TextEditor): string {
  const code = editor.document.getText(editor.selection);
  return code.length > MAX_SELECTION_CHARS ? `${code.slice(0, MAX_SELECTION_CHARS)}\n… (selection cut at ${MAX_SELECTION_CHARS} characters)` : code;
}

/** The selection's first non-blank line, trimmed (at most MAX_FIRST_LINE_CHARS): where it is in the file. */
function firstLine(editor: vscode.TextEditor): string {
  const { start, end } = editor.selection;
  for (let l = start.line; l <= end.line; l++) {
    const text = editor.document.lineAt(l).text.trim();
    if (text) return text.length > MAX_FIRST_LINE_CHARS ? `${text.slice(0, MAX_FIRST_LINE_CHARS)}…` : text;
  }
  return '';
}

/** Model output is untrusted: no HTML, and only our own commands are clickable (the error actions). */
function markdown(text: string): vscode.MarkdownString {
  const md = new vscode.MarkdownString(text);
  md.supportHtml = false;
  md.isTrusted = { enabledCommands: ['starAttention.selectModel', 'starAttention.showLog', 'workbench.action.openSettings'] };
  return md;
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
