// The one object the extension's surfaces (palette, chat panel, inline chat, @codebase, background indexer) ask
// through. It owns the model (opened here for its tokenizer and shapes only), the hosts (starHostPools.ts) and one
// RepoSession per workspace folder (src/node/star/repoSession.ts: walk, blocks, disk cache, phase 1 and 2), and
// runs one operation at a time on them. Everything heavy happens in the hosts, never on this thread.
import * as vscode from 'vscode';
import { appendFile, mkdir } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { basename, dirname } from 'node:path';
import { CancelledError, DeviceError, EngineError } from '../engine/errors';
import { serialQueue, type SerialQueue } from '../engine/util/serialQueue';
import { defaultCacheDir } from '../node/cache/defaultCacheDir';
import { openModel, type OpenedModel } from '../node/openModel';
import { RepoSession } from '../node/star/repoSession';
import type { AskResult, IndexProgress, IndexStats, LeadFor, QuestionFor, RepositorySize } from '../node/star/repoSession';
import type { StatusView } from '../protocol/chatMessages';
import type { ChatViewProvider } from './chatView';
import { explainError } from './errorActions';
import { cancelledStatus, failedStatus, indexingStatus, progressStatus, readyStatus, sizedStatus } from './indexStatus';
import { startHostPool, type StartedPool } from './starHostPools';
import { readSettings, type Settings } from './settings';

/** No model is configured: every surface offers "Select Model". */
export class NoModelError extends EngineError {
  constructor() {
    super('no model is selected: run "Star Attention: Select Model" to choose a GGUF file or download one');
  }
}

export interface AskRequest {
  /** The query, or a function writing it once the question's index is known (RepoSession.ask). */
  readonly question: string | QuestionFor;
  readonly folder: vscode.WorkspaceFolder;
  readonly signal: AbortSignal;
  /** Called with the text as it streams; the surface shows the first text at once (the timeline's `firstText`). */
  readonly onText: (text: string) => void;
  /** performance.now() when the user asked (the input box accepted, the panel's Ask arrived): the timeline's zero. */
  readonly askedAt?: number;
}

/**
 * Where a question's time went, in ms from AskRequest.askedAt: the surface's own work before it called ask
 * (`called`), the wait for an earlier operation on the hosts (`started`), the model and hosts ready (`session`),
 * the question's index done (`indexed`), the first answer text handed to the surface (`firstText`), the end (`done`).
 */
export interface AskTimeline {
  called: number;
  started?: number;
  session?: number;
  indexed?: number;
  firstText?: number;
  done?: number;
}

export class CodebaseService implements vscode.Disposable {
  private model: { path: string; opened: OpenedModel } | undefined;
  private pool: StartedPool | undefined;
  private readonly sessions = new Map<string, RepoSession>();
  /** One operation at a time on the hosts; a later one waits for the earlier (which it may have cancelled). */
  private readonly serial: SerialQueue = serialQueue();
  /** Times the page holding webview hosts went away; an operation that saw it change failed because of it. */
  private pageLosses = 0;
  private readonly statusEmitter = new vscode.EventEmitter<StatusView>();
  private statusValue: StatusView = {};
  private readonly disposables: vscode.Disposable[] = [];
  readonly onStatus = this.statusEmitter.event;

  constructor(
    private readonly extensionPath: string,
    private readonly chat: ChatViewProvider,
    private readonly log: vscode.LogOutputChannel,
    /** JSON lines of figures (hosts, index, ask), beside the log. */
    private readonly metricsFile: string,
  ) {
    // The page that held the webview hosts is gone: so are their devices and every block they held.
    this.disposables.push(chat.onPageDisposed(() => {
      if (this.pool?.pool.kind !== 'webview-webgpu') return;
      this.pageLosses++;
      this.log.warn('the chat view was closed: its GPU workers stopped; the next question starts them again');
      void this.resetPool();
    }));
    const s = readSettings();
    this.setStatus({ model: s.model ? basename(s.model) : undefined });
  }

  get status(): StatusView {
    return this.statusValue;
  }

  /**
   * Phase 1 for `folder`: brings the hosts and the disk cache up to date. An index that stopped for a question
   * (RepoSession.questionComing) resumes behind it.
   */
  async index(folder: vscode.WorkspaceFolder, signal: AbortSignal): Promise<IndexStats> {
    const stats = await this.exclusive(async () => {
      const session = await this.session(folder).catch((err: unknown) => { this.indexFailed(folder, err); throw err; });
      return this.indexing(folder, (progress) => session.index({ signal, ...progress }));
    });
    return stats.interrupted && !signal.aborted ? this.index(folder, signal) : stats;
  }

  /**
   * One index (nothing to do when the repository is unchanged), then the answer, streaming the text. A background
   * index of a repository beyond the context stops for it (the question is answered from the blocks ready and the
   * selected ones encoded on demand), and resumes after it.
   */
  ask(r: AskRequest): Promise<AskResult> {
    const zero = r.askedAt ?? performance.now();
    const at = () => Math.round(performance.now() - zero);
    const timeline: AskTimeline = { called: at() };
    this.sessions.get(r.folder.uri.toString())?.questionComing();
    return this.exclusive(async () => {
      timeline.started = at();
      const session = await this.session(r.folder).catch((err: unknown) => { this.indexFailed(r.folder, err); throw err; });
      timeline.session = at();
      const s = readSettings();
      const started = performance.now();
      const onText = (text: string) => {
        timeline.firstText ??= at();
        r.onText(text);
      };
      const result = await this.indexing(r.folder, (progress) => session.ask(r.question, {
        maxTokens: s.maxNewTokens, temperature: s.temperature, signal: r.signal, onText, selection: s.selection, ...progress,
        onIndexed: (stats) => { timeline.indexed = at(); progress.onIndexed(stats); },
      }));
      timeline.done = at();
      this.metric('ask', {
        folder: r.folder.name, hostKind: this.pool?.pool.kind, question: result.question, tokens: result.ids.length, ids: result.ids, queryTokens: result.stats.queryTokens, prefilledTokens: result.stats.prefilledTokens,
        ttftMs: Math.round(result.stats.ttftMs), decodeTokensPerSec: result.stats.decodeTokensPerSec,
        wallMs: Math.round(performance.now() - started), sources: result.sources.slice(0, 5).map((x) => x.path),
        selection: { ...result.stats.selection, attended: undefined }, size: result.stats.size,
        boundaryBytes: { ...this.chat.bytes }, timeline,
      });
      return result;
    });
  }

  /**
   * Runs the lead of a question still being typed (Ask About Selection: which code it is about) on the hosts ahead
   * of it (RepoSession.prepare), so the question's first token waits only for the words typed. Only for a folder
   * already indexed on the hosts running now; false where nothing was run.
   */
  async prepare(folder: vscode.WorkspaceFolder, lead: LeadFor, signal: AbortSignal): Promise<number> {
    const started = performance.now();
    const session = this.sessions.get(folder.uri.toString());
    const tokens = !session ? 0 : await this.exclusive(() => (this.sessions.get(folder.uri.toString()) === session
      ? session.prepare(lead, { maxTokens: readSettings().maxNewTokens, signal }) : Promise.resolve(0)));
    this.metric('prepare', { folder: folder.name, hostKind: this.pool?.pool.kind, tokens, wallMs: Math.round(performance.now() - started) });
    return tokens;
  }

  /** The model or the host settings changed: drop the hosts (the next operation starts new ones). */
  async resetPool(): Promise<void> {
    const old = this.pool;
    this.pool = undefined;
    this.sessions.clear();
    if (old) await old.pool.dispose().catch((err: unknown) => this.log.warn(`disposing hosts: ${String(err)}`));
    const model = this.model;
    this.model = undefined;
    if (model) await model.opened.close().catch(() => undefined);
    const s = readSettings();
    this.setStatus({ model: s.model ? basename(s.model) : undefined, modelContext: undefined, hostKind: undefined, hostReason: undefined, device: undefined, index: { state: 'idle' } });
  }

  /** Chunk size, anchor, include/exclude or the cache cap changed: new block plans, same hosts. */
  resetSessions(): void {
    // The hosts still hold the old plan's blocks: the next session finds another's blocks there and clears them.
    this.sessions.clear();
    this.setStatus({ index: { state: 'idle' } });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    void this.resetPool();
    this.statusEmitter.dispose();
  }

  /**
   * Runs `op` (an index, or a question's index then answer) with the index shown in the status and its figures in
   * the metrics: `op` gets the hooks to pass to the session.
   */
  private async indexing<T>(
    folder: vscode.WorkspaceFolder,
    op: (hooks: { onProgress: (p: IndexProgress) => void; onIndexed: (stats: IndexStats) => void; onSized: (size: RepositorySize) => void }) => Promise<T>,
  ): Promise<T> {
    this.setStatus({ folder: folder.name, index: indexingStatus(this.statusValue.index) });
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    const bytesBefore = { ...this.chat.bytes };
    const started = performance.now();
    let indexed: { stats: IndexStats; wallMs: number; bytes: { sent: number; received: number } } | undefined;
    const onIndexed = (stats: IndexStats) => {
      indexed = {
        stats, wallMs: Math.round(performance.now() - started),
        bytes: { sent: this.chat.bytes.sent - bytesBefore.sent, received: this.chat.bytes.received - bytesBefore.received },
      };
      this.setStatus({ index: readyStatus(this.statusValue.index, stats, new Date()) });
    };
    try {
      return await op({
        onProgress: (p) => this.setStatus({ index: progressStatus(this.statusValue.index, p) }),
        onIndexed,
        // Known before anything is encoded: the panel shows it against the model's context from the start.
        onSized: (size) => this.setStatus({ index: sizedStatus(this.statusValue.index, size.repositoryTokens) }),
      });
    } catch (err) {
      if (!indexed) {
        if (err instanceof CancelledError) this.setStatus({ index: cancelledStatus(this.statusValue.index) });
        else this.indexFailed(folder, err);
      }
      throw err;
    } finally {
      // The histogram records a stall when its timer fires late: give it that turn, so the last one counts too.
      await new Promise((r) => setTimeout(r, 0));
      stalls.disable();
      if (indexed) {
        const { stats, wallMs, bytes } = indexed;
        this.metric('index', {
          folder: folder.name, hostKind: this.pool?.pool.kind, files: stats.files, blocks: stats.blocks,
          blocksEncoded: stats.blocksEncoded, blocksReused: stats.blocksReused, blocksShifted: stats.blocksShifted,
          encodedPaths: stats.encodedPaths, contextTokens: stats.contextTokens, wallMs,
          // Over the whole operation: a question's answer too (it streams through this thread).
          maxEventLoopStallMs: Math.round(stalls.max / 1e6),
          boundaryBytes: bytes,
        });
      }
    }
  }

  /** The status bar and the panel say why the index failed, with what fixes it. */
  private indexFailed(folder: vscode.WorkspaceFolder, err: unknown): void {
    const e = explainError(err);
    this.setStatus({ folder: folder.name, index: failedStatus(this.statusValue.index, e.message, e.actions) });
  }

  private async session(folder: vscode.WorkspaceFolder): Promise<RepoSession> {
    const s = readSettings();
    if (!s.model) throw new NoModelError();
    if (this.model && this.model.path !== s.model) await this.resetPool();
    const model = await this.openModel(s);
    const pool = await this.hosts(s);
    const key = folder.uri.toString();
    // Sessions of other folders share the hosts: a session that finds another's blocks there clears them.
    let session = this.sessions.get(key);
    if (!session) {
      session = new RepoSession({
        repo: folder.uri.fsPath, model, pool: pool.pool,
        chunkSize: s.chunkSize, anchorSize: s.anchorSize, include: s.include, exclude: s.exclude,
        cacheDir: defaultCacheDir(), cacheMaxBytes: s.cacheMaxBytes, cacheDtype: s.cacheKvDtype,
        onWarning: (m) => this.log.warn(m),
      });
      this.sessions.set(key, session);
    }
    return session;
  }

  private async openModel(s: Settings): Promise<OpenedModel> {
    if (this.model?.path === s.model) return this.model.opened;
    this.log.info(`opening model ${s.model}`);
    const opened = await openModel(s.model);
    this.model = { path: s.model, opened };
    this.setStatus({ model: basename(s.model), modelContext: opened.config.contextLength });
    return opened;
  }

  private async hosts(s: Settings): Promise<StartedPool> {
    if (this.pool) return this.pool;
    this.setStatus({ hostKind: 'starting…', hostReason: undefined, device: undefined });
    try {
      this.pool = await startHostPool({ kind: s.hostKind, modelPath: s.model, hosts: s.hosts, extensionPath: this.extensionPath, chat: this.chat, log: this.log });
    } catch (err) {
      this.setStatus({ hostKind: 'unavailable', hostReason: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    this.setStatus({ hostKind: `${this.pool.label} (${s.hosts} host${s.hosts > 1 ? 's' : ''})`, hostReason: this.pool.reason, device: this.pool.pool.device });
    this.metric('hosts', { hostKind: this.pool.pool.kind, device: this.pool.pool.device, reason: this.pool.reason, hosts: s.hosts });
    return this.pool;
  }

  /** One operation at a time on the hosts; a later one waits for the earlier (which it may have cancelled). */
  private exclusive<T>(op: () => Promise<T>): Promise<T> {
    const guarded = async () => {
      const losses = this.pageLosses;
      try {
        return await op();
      } catch (err) {
        if (this.pageLosses !== losses && !(err instanceof CancelledError)) {
          throw new EngineError('the chat view was closed while the model was working, and its GPU workers stopped with it; ask again to start them');
        }
        // A lost GPU device (driver reset, GPU removed, out of memory) stays lost: drop the hosts so the next
        // operation starts new ones (on the same kind if it comes back, else the next one in starHostPools.ts's order).
        if (err instanceof DeviceError) {
          this.log.warn(`GPU device error: ${err.message}; the hosts are restarted on the next question`);
          await this.resetPool();
          throw new DeviceError(`${err.message} (the hosts were stopped: ask again to start new ones)`);
        }
        throw err;
      }
    };
    return this.serial(guarded);
  }

  private setStatus(patch: Partial<StatusView>): void {
    this.statusValue = { ...this.statusValue, ...patch };
    this.statusEmitter.fire(this.statusValue);
  }

  /** Machine-readable figures in the log (the end-to-end test and the README's figures read them). */
  private metric(kind: string, data: Record<string, unknown>): void {
    const line = JSON.stringify({ kind, at: new Date().toISOString(), ...data });
    this.log.info(`[metrics] ${line}`);
    void mkdir(dirname(this.metricsFile), { recursive: true })
      .then(() => appendFile(this.metricsFile, line + '\n'))
      .catch((err: unknown) => this.log.warn(`cannot write ${this.metricsFile}: ${String(err)}`));
  }
}
