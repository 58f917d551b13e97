// Indexing in the background: on startup (when enabled and a model is set) and after files change (saves,
// creates, deletes, renames; debounced), with window progress and a status bar item that shows blocks done/total
// and tokens/s and cancels on click. Only the changed files' blocks are re-encoded: the RepoSession keeps what the
// hosts hold and the disk cache has the rest.
import * as vscode from 'vscode';
import { CancelledError } from '../engine/errors';
import type { StatusView } from '../protocol/chatMessages';
import { pathsText, sizeText } from '../protocol/statusText';
import type { CodebaseService } from './codebaseService';
import { readSettings } from './settings';

/** Quiet time after the last change before re-indexing. */
const DEBOUNCE_MS = 1500;
/** The status bar's command while the index has failed: the error, with the buttons that fix it. */
const SHOW_INDEX_ERROR = 'starAttention.showIndexError';

export class BackgroundIndexer implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('starAttention.status', vscode.StatusBarAlignment.Left, 50);
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Folders indexed in this window: only those are re-indexed when their files change. */
  private readonly indexed = new Set<string>();
  private current: AbortController | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly service: CodebaseService, private readonly log: vscode.LogOutputChannel) {
    this.item.name = 'Star Attention';
    this.render(service.status);
    this.item.show();
    const watcher = vscode.workspace.createFileSystemWatcher('**/*');
    const changed = (uri: vscode.Uri) => this.onFileChanged(uri);
    this.disposables.push(
      this.item, watcher,
      watcher.onDidChange(changed), watcher.onDidCreate(changed), watcher.onDidDelete(changed),
      vscode.workspace.onDidSaveTextDocument((d) => changed(d.uri)),
      vscode.workspace.onDidRenameFiles((e) => e.files.forEach((f) => { changed(f.oldUri); changed(f.newUri); })),
      service.onStatus((s) => this.render(s)),
      vscode.commands.registerCommand(SHOW_INDEX_ERROR, () => this.offerFix()),
    );
  }

  /** Indexes every workspace folder once, when the settings ask for it. */
  startup(): void {
    const s = readSettings();
    if (!s.indexOnStartup || !s.model) return;
    for (const folder of vscode.workspace.workspaceFolders ?? []) this.schedule(folder, 0);
  }

  /** Indexes `folder` now (the Index Repository command), in the background. */
  indexNow(folder: vscode.WorkspaceFolder): Promise<void> {
    return this.run(folder);
  }

  markIndexed(folder: vscode.WorkspaceFolder): void {
    this.indexed.add(folder.uri.toString());
  }

  cancel(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.current?.abort();
  }

  dispose(): void {
    this.cancel();
    for (const d of this.disposables) d.dispose();
  }

  private onFileChanged(uri: vscode.Uri): void {
    if (uri.scheme !== 'file' || /[\\/]\.git([\\/]|$)/.test(uri.path)) return;
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    if (!folder || !this.indexed.has(folder.uri.toString())) return;
    this.schedule(folder, DEBOUNCE_MS);
  }

  private schedule(folder: vscode.WorkspaceFolder, delay: number): void {
    const key = folder.uri.toString();
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      void this.run(folder);
    }, delay));
  }

  private async run(folder: vscode.WorkspaceFolder): Promise<void> {
    this.current?.abort();
    const abort = new AbortController();
    this.current = abort;
    try {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Star Attention: indexing ${folder.name}` }, async () => {
        const stats = await this.service.index(folder, abort.signal);
        this.indexed.add(folder.uri.toString());
        this.log.info(`indexed ${folder.name}: ${stats.files} files, ${stats.blocks} blocks (${stats.blocksEncoded} encoded, ${stats.blocksReused} reused, ${stats.blocksShifted} shifted)`);
      });
    } catch (err) {
      if (err instanceof CancelledError) this.log.info(`indexing ${folder.name} cancelled`);
      else this.log.error(`indexing ${folder.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (this.current === abort) this.current = undefined;
    }
  }

  private render(s: StatusView): void {
    const i = s.index;
    this.item.backgroundColor = undefined;
    if (!s.model) {
      this.item.text = '$(star-empty) Star: no model';
      this.item.tooltip = 'Star Attention: no model selected. Click to select one.';
      this.item.command = 'starAttention.selectModel';
      return;
    }
    const size = i?.contextTokens !== undefined ? `\nRepository: ${sizeText(i.contextTokens, s.modelContext)}` : '';
    const last = i?.lastChange ? `\nLast re-encoded: ${pathsText(i.lastChange.paths)} (${i.lastChange.blocks} block${i.lastChange.blocks === 1 ? '' : 's'}, ${new Date(i.lastChange.at).toLocaleTimeString()})` : '';
    const hosts = s.hostKind ? `\nHosts: ${s.hostKind}${s.device ? ` on ${s.device}` : ''}${s.hostReason ? `\n${s.hostReason}` : ''}` : '';
    if (i?.state === 'indexing') {
      const rate = i.tokensPerSec ? ` · ${Math.round(i.tokensPerSec)} tok/s` : '';
      this.item.text = `$(sync~spin) Star: ${i.done ?? 0}/${i.total ?? '?'} blocks${rate}`;
      this.item.tooltip = `Star Attention is indexing ${s.folder ?? ''}. Click to cancel.${size}${hosts}`;
      this.item.command = 'starAttention.cancel';
      return;
    }
    if (i?.state === 'failed') {
      this.item.text = '$(error) Star: index failed';
      this.item.tooltip = `Star Attention: indexing ${s.folder ?? ''} failed: ${i.error ?? 'see the log'}\nClick for what fixes it.`;
      this.item.command = SHOW_INDEX_ERROR;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      return;
    }
    const state = i?.state === 'ready' ? `${i.blocks ?? 0} blocks` : i?.state === 'cancelled' ? 'cancelled' : 'idle';
    this.item.text = `$(star-full) Star: ${state}`;
    this.item.tooltip = `Star Attention · model ${s.model}${size}${last}${hosts}\nClick to open the chat.`;
    this.item.command = 'starAttention.openChat';
  }

  private async offerFix(): Promise<void> {
    const i = this.service.status.index;
    if (i?.state !== 'failed') return void vscode.commands.executeCommand('starAttention.openChat');
    const actions = i.actions ?? [];
    const pick = await vscode.window.showErrorMessage(`Star Attention: indexing ${this.service.status.folder ?? ''} failed: ${i.error ?? 'see the log'}`, ...actions.map((a) => a.label));
    const action = actions.find((a) => a.label === pick);
    if (action) await vscode.commands.executeCommand(action.command);
  }
}
