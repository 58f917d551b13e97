// A repository answered over a HostPool, question after question: index() walks and packs the repository and
// brings the pool's hosts and the disk cache up to date (phase 1); ask() runs phase 2 on the pool's query host.
// The hosts keep their blocks between questions: while the layout is unchanged nothing is sent again; after an
// edit the blocks whose text did not change stay on their hosts (renumbered, and re-rotated there when they
// moved), the stale ones are dropped, and only the new ones are sent: loaded from the disk cache, or encoded.
import { CpuBackend } from '../../engine/backend/cpu/cpuBackend';
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import type { AnswerResult } from '../../engine/star/answer';
import type { BlockSpan } from '../../engine/star/blocks';
import { blockCacheKey, encodeContext, type BlockStore, type ContextStats } from '../../engine/star/context';
import { heldAfter, isUnchanged, planPoolUpdate, type PoolState, type PoolUpdate } from '../../engine/star/poolPlan';
import type { StarHost } from '../../engine/star/host';
import { serialQueue, type SerialQueue } from '../../engine/util/serialQueue';
import type { BlockKv, BlockSpec } from '../../engine/star/types';
import { PieceKeys, pieceKeysBudget } from '../../engine/star/pieceKeys';
import { buildQuery, queryLead, questionText, type LedQuestion } from '../../engine/star/prompt';
import { shiftBlockKv } from '../../engine/star/shift';
import { fileShares, type TokenRange } from '../../engine/star/attentionMass';
import { kvDtypeFor, type KvDtypeSetting } from '../../engine/runtime/kvBytes';
import { openKvBlockStore } from '../cache/kvBlockStore';
import { openOverviewStore, type OverviewStore } from '../cache/overviewStore';
import { openPieceStore, type PieceStore } from '../cache/pieceStore';
import { openSummaryStore } from '../cache/summaryStore';
import { BlockSelection, positionsFor, type SelectionMode } from '../../engine/star/selection/blockSelection';
import { recordingEncodes } from '../../engine/star/wrapHost';
import type { HostPool } from './hostPool';
import { chooseBlocks, selectedLayout, selectionStats, summarizeRepository, type SessionHosts, type SummaryPass } from './selectionPasses';
import { buildRepoLayout, duplicateBlocks, type RepoLayout } from './repoLayout';
import { EncodeCache } from '../../engine/tokenizer/encodeCache';
import type { Tokenizer } from '../../engine/tokenizer';

export const DEFAULT_CACHE_MAX_BYTES = 4 * 1024 ** 3;

// Moved, still importable from here.
export { recordingEncodes } from '../../engine/star/wrapHost';
export { duplicateBlocks } from './repoLayout';

export interface RepoSessionOptions {
  readonly repo: string;
  /** Opened in the caller's thread: its tokenizer, chat template and config are used (no weights). */
  readonly model: LoadedModel;
  readonly pool: HostPool;
  readonly chunkSize: number;
  readonly anchorSize?: number;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  /** Disk cache folder; undefined = no disk cache. */
  readonly cacheDir?: string;
  /**
   * With a disk cache: start from the tokenized pieces the last session of this model and repository left there,
   * and leave this one's (pieceStore.ts). For sessions that live for one command (the CLI), which would otherwise
   * tokenize every file each time; a long-lived session (the extension's) keeps its pieces in memory anyway.
   */
  readonly keepPieces?: boolean;
  /** Size cap of the disk cache (least recently used entries go first); default 4 GiB. */
  readonly cacheMaxBytes?: number;
  /** Storage type of new disk cache entries: 'auto' (default: kvDtypeFor, f16 within the context, q8 beyond), 'f16', 'q8' or 'f32'. */
  readonly cacheDtype?: KvDtypeSetting;
  readonly onWarning?: (message: string) => void;
  /** Cap on the keys sent for exact per-file shares of multi-file blocks (default: pieceKeysBudget's per question). */
  readonly pieceKeysBudgetBytes?: number;
}

export interface IndexProgress {
  readonly done: number;
  readonly total: number;
  /** Tokens encoded per second so far in this run (0 before the first encode ends). */
  readonly tokensPerSec: number;
}

/** The repository's size against the model's context, known before anything is encoded. */
export interface RepositorySize {
  /** Tokens of the anchor and every block. */
  readonly repositoryTokens: number;
  readonly anchorTokens: number;
  readonly blocks: number;
  /** The model's context length. */
  readonly modelContext: number;
  /**
   * Where the blocks are encoded (blockSelection.ts, positionsFor): 'global' when the anchor and every block fit
   * the context (a question then attends to every block where it fits too), 'local' (each block right after the
   * anchor) when they do not: a question then attends to the blocks selected for it.
   */
  readonly positions: 'global' | 'local';
}

/** Which blocks a question attended to. */
export interface SelectionStats {
  /** 'all': every block (the repository and the question fit); otherwise the ranking that chose them. */
  readonly ranking: 'all' | 'attention' | 'lexical';
  /** Blocks attended, and of how many (the anchor not counted). */
  readonly blocks: number;
  readonly of: number;
  /** Tokens of the attended blocks, and of every block. */
  readonly tokens: number;
  readonly totalTokens: number;
  /** The attended blocks' indices in the repository's layout, in order. */
  readonly attended: readonly number[];
  /** Selected blocks neither held nor in the disk cache, encoded for this question. */
  readonly encodedOnDemand: number;
  /**
   * Blocks whose keys the attention ranking read (its BM25 candidates), their tokens, and how many of them were in
   * no cache and encoded (right after the anchor, and stored); absent when not ranked by attention.
   */
  readonly candidates?: { readonly blocks: number; readonly tokens: number; readonly encoded: number };
  /**
   * Asked while the repository's index was unfinished (it stopped for this question, or for an earlier one and has
   * not been finished since): how many file blocks were ready (encoded and summarised) of how many. The selection was made all
   * the same (BM25 needs only the text), its blocks that were not ready encoded on demand.
   */
  readonly whileIndexing?: { readonly ready: number; readonly of: number };
}

/** Phase 1's counts (see ContextStats for each), with encodeMs rounded, plus the repository's own. */
export type IndexStats = Omit<ContextStats, 'hostOfBlock'> & {
  readonly size: RepositorySize;
  readonly files: number;
  readonly skipped: number;
  /** Skipped files per reason (see SkipReason). */
  readonly skippedByReason: Readonly<Record<string, number>>;
  /**
   * File blocks with the same tokens as an earlier block (e.g. the parts of a long repetitive line). The cache key
   * leaves the position out, so they share one entry, kept at the first occurrence's start: the first occurrence
   * alone is read or encoded, and each duplicate gets that KV re-rotated to its own start, every run (so they
   * count in blocksShifted even when nothing moved, and never in blocksEncoded).
   */
  readonly blocksDuplicate: number;
  /**
   * Blocks the hosts already held from an earlier index of this session (not sent again; counted as reused; those
   * that moved were re-rotated on their host and count as shifted, their disk entries left where they were).
   */
  readonly blocksHeld: number;
  /** Files whose blocks were encoded this run (sorted). */
  readonly encodedPaths: string[];
  /** Beyond the context: file blocks with a key summary (their KV encoded and cached at least once), of `blocks - 1`. */
  readonly blocksSummarized?: number;
  /**
   * A question came while this index was summarising a repository larger than the context (RepoSession.questionComing):
   * it stopped there to let the question through, keeping everything stored so far. Index again to finish.
   */
  readonly interrupted?: boolean;
};

export interface IndexOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: IndexProgress) => void;
  /** Phase 1 is done: its figures (for a question, before the answer starts). */
  readonly onIndexed?: (stats: IndexStats) => void;
  /** The repository is packed and nothing is encoded yet: its size against the model's context. */
  readonly onSized?: (size: RepositorySize) => void;
}

export interface AskOptions extends IndexOptions {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Streamed answer text, as generated. */
  readonly onText?: (text: string) => void;
  /** How blocks are ranked when not all fit (default 'auto', see BlockSelection.chooseRanking). */
  readonly selection?: SelectionMode;
}

export interface SourceFile {
  readonly path: string;
  readonly share: number;
  /** The file's lines in the context, 1-based and inclusive, in order (adjacent pieces merged). */
  readonly spans: { startLine: number; endLine: number }[];
}

export interface AskResult {
  /** The question as asked (a QuestionFor's, as written after the index). */
  readonly question: string;
  readonly answer: string;
  readonly ids: number[];
  /**
   * Per file, its share of the query prefill's attention to the context, highest first; with stats.anchorShare
   * they sum to 1. A block holding several files is split exactly (each file's token range attended alone,
   * attentionMass.ts) while the kept keys fit pieceKeysBudget, by token counts beyond it.
   */
  readonly sources: SourceFile[];
  readonly stats: Omit<IndexStats, 'skipped' | 'skippedByReason'> & {
    readonly mode: 'star' | 'global';
    readonly queryTokens: number;
    /** The query's first tokens that ran before the question was asked (prepare): not on the way to the first token. */
    readonly prefilledTokens: number;
    /** From the start of phase 1 (cache lookups included) to the first generated token. */
    readonly ttftMs: number;
    readonly decodeTokensPerSec: number;
    readonly finish: AnswerResult['finish'];
    /** Share of the query's context attention on the anchor (chat prefix + overview), not on any file block. */
    readonly anchorShare: number;
    readonly selection: SelectionStats;
  };
}

/** A question written once the index is known: `holds(path)` says whether the index holds that file's text. */
export type QuestionFor = (holds: (path: string) => boolean) => string | LedQuestion;

/** The lead of a question still being typed, from the same `holds` as its QuestionFor; undefined: no lead. */
export type LeadFor = (holds: (path: string) => boolean) => string | undefined;

export interface PrepareOptions {
  /** The answer's token limit the question will be asked with (room is kept for it after the prefix). */
  readonly maxTokens: number;
  readonly signal?: AbortSignal;
}

/** Query tokens a prefilled lead leaves room for, beyond the answer: the question typed after it. */
const QUESTION_ROOM = 512;

function holdsFile(repository: RepoLayout, path: string): boolean {
  return repository.spans.some((spans) => spans.some((s) => s.path === path));
}

/**
 * The session whose blocks each pool's hosts hold (they hold one layout at a time): a session that finds another
 * one's blocks there clears them first. Kept beside the pools, not in them, so every kind of pool gets it.
 */
const poolHolders = new WeakMap<HostPool, RepoSession>();

export class RepoSession {
  private readonly shifter = new CpuBackend();
  private layout: RepoLayout | undefined;
  /** What the pool's hosts hold, as far as this session knows. */
  private hosts: PoolState = { kind: 'empty' };
  private pieceKeys = new PieceKeys(() => undefined, 0);
  /** index() and ask() run one at a time (the hosts' state is this session's to keep consistent). */
  private readonly serial: SerialQueue = serialQueue();

  /** Encodes the files, remembering the pieces of the last layout: a re-index encodes only changed text. */
  private readonly encodes = new EncodeCache();
  private readonly tokenizer: Tokenizer;
  /** The repository's whole layout (this.layout is what the hosts hold: the same, or a question's selection). */
  private repository: RepoLayout | undefined;
  /** Key summaries and the anchor's KV, for repositories larger than the context. */
  private readonly selection: BlockSelection;
  /** Where the repository's blocks are encoded (its last index): picks the disk cache's dtype under 'auto'. */
  private positions: RepositorySize['positions'] = 'global';
  /** What the selection passes (selectionPasses.ts) use of this session. */
  private readonly passHosts: SessionHosts;
  /** Aborted by questionComing(): the running index's summary pass stops for a question. */
  private preempt: AbortController | undefined;
  /** The last index of this session stopped for a question (questionComing) and has not been finished since. */
  private indexInterrupted = false;
  /** The lead prefilled on the query host (prepare) and over which hosts' state: the next ask uses it or drops it. */
  private prefilled: { hosts: PoolState; contextLength: number; ids: readonly number[] } | undefined;
  /** Where the anchor's overview is kept between sessions (with a disk cache), else only in this session. */
  private readonly overviews: OverviewStore | undefined;
  /** Where the tokenized pieces are kept between sessions (keepPieces), and whether they were read yet. */
  private readonly pieces: PieceStore | undefined;
  private piecesRead = false;
  private piecesSaved = 0;

  constructor(private readonly o: RepoSessionOptions) {
    this.tokenizer = this.encodes.wrap(o.model.tokenizer);
    const c = o.model.config;
    const shift = (kv: BlockKv, start: number) => shiftBlockKv(this.shifter, kv, start, c.headDim, c.rope);
    this.selection = new BlockSelection(shift, o.cacheDir !== undefined ? openSummaryStore(o.cacheDir, o.onWarning) : undefined);
    // Both are best effort and say nothing when they cannot write: an unwritable cache folder is reported by the
    // KV cache itself, once.
    this.overviews = o.cacheDir !== undefined ? openOverviewStore(o.cacheDir, { repo: o.repo, include: o.include, exclude: o.exclude }) : undefined;
    this.pieces = o.cacheDir !== undefined && o.keepPieces
      ? openPieceStore(o.cacheDir, { model: o.model.identity, repo: o.repo, include: o.include, exclude: o.exclude })
      : undefined;
    this.passHosts = {
      model: o.model, pool: o.pool, selection: this.selection, shift,
      openStore: () => this.openStore(),
      takeEmptyHosts: () => this.takeEmptyHosts(),
    };
  }

  /** encode() calls that ran the tokenizer (the others were answered from the pieces of the previous layout). */
  get piecesEncoded(): number {
    return this.encodes.misses;
  }

  /**
   * Walks, packs, and brings the pool's hosts and the disk cache up to date. Blocks the hosts already hold (same
   * cache keys and starts) are not sent again; others are loaded from the disk cache or encoded.
   */
  index(opts: IndexOptions = {}): Promise<IndexStats> {
    return this.serial(() => this.runIndex(opts));
  }

  /**
   * One index (nothing to do when the repository is unchanged), then phase 2 on the pool's query host. A running
   * index of a repository beyond the context lets the question through (questionComing). A function `question` is
   * called after that index with whether it holds a file (a repository-relative path, '/'-separated): a question
   * about code the index skipped (ignored, excluded, too large) must bring that code itself.
   */
  ask(question: string | QuestionFor, opts: AskOptions): Promise<AskResult> {
    this.questionComing();
    return this.serial(() => this.runAsk(question, opts));
  }

  /**
   * Runs a question's lead through phase 2 while the rest of it is still being typed, over the blocks the hosts
   * hold now (no index: the question's own finds them unchanged, or the prefix is dropped). Only where every block
   * is attended whatever the question (the repository fits the context): beyond it the blocks depend on the
   * question. Resolves to the lead's tokens held for the next ask (0: none).
   */
  prepare(lead: LeadFor, opts: PrepareOptions): Promise<number> {
    return this.serial(() => this.runPrepare(lead, opts));
  }

  /**
   * A question is on its way (a caller that queues it elsewhere first says so): an index summarising a repository
   * larger than the context stops at once, keeping what it stored, and reports `interrupted` (index again to
   * finish), so the question waits for one batch of blocks, not for the whole index. An index of a repository that
   * fits is not interrupted: every block is attended then, so the question needs them all anyway.
   */
  questionComing(): void {
    this.preempt?.abort();
  }

  private async runIndex(opts: IndexOptions): Promise<IndexStats> {
    const preempt = (this.preempt = new AbortController());
    try {
      const stats = await this.updateHosts(opts, 'all', preempt.signal);
      if (!stats.interrupted) opts.onIndexed?.(stats);
      return stats;
    } finally {
      if (this.preempt === preempt) this.preempt = undefined;
    }
  }

  /**
   * Phase 1: the repository's layout, and the hosts and the disk cache brought up to it. A repository larger than
   * the context is encoded at local positions into the disk cache and summarised (`summaries` 'all'; with 'none'
   * nothing is encoded now: a question's selected blocks are, on demand), the hosts keeping only a question's
   * selection.
   */
  private async updateHosts(opts: IndexOptions, summaries: SummaryPass = 'all', preempt?: AbortSignal): Promise<IndexStats> {
    const o = this.o;
    // The anchor keeps the last index's overview while it stands (prompt.ts keepOverview): a new directory must
    // not re-key every block.
    const earlierOverview = this.repository?.overviewLines ?? (await this.overviews?.get());
    if (this.pieces && !this.piecesRead) {
      this.piecesRead = true;
      const stored = await this.pieces.get();
      if (stored) this.encodes.seed(stored);
    }
    const repo = await buildRepoLayout({
      repo: o.repo, model: o.model, chunkSize: o.chunkSize, anchorSize: o.anchorSize, include: o.include, exclude: o.exclude,
      signal: opts.signal, tokenizer: this.tokenizer, earlierOverview,
    });
    if (repo.overviewLines !== earlierOverview) await this.overviews?.put(repo.overviewLines);
    this.encodes.next();
    if (this.pieces && this.encodes.misses !== this.piecesSaved) {
      this.piecesSaved = this.encodes.misses;
      await this.pieces.put(this.encodes.entries());
    }
    const size: RepositorySize = {
      repositoryTokens: repo.layout.contextLength, anchorTokens: repo.layout.anchor.length, blocks: repo.layout.blocks.length,
      modelContext: o.model.config.contextLength, positions: positionsFor(repo.layout.contextLength, o.model.config.contextLength),
    };
    opts.onSized?.(size);
    this.repository = repo;
    this.positions = size.positions;
    if (size.positions === 'local') {
      const stats = await summarizeRepository(this.passHosts, repo, opts, summaries, preempt);
      if (summaries === 'all') this.indexInterrupted = stats.interrupted === true;
      return { ...stats, size };
    }
    const { encodedFileBlocks: _encoded, ...stats } = await this.bringHosts(repo, opts, true);
    return { ...stats, size };
  }

  /** The hosts and the disk cache brought up to `repo` (the repository's layout, or a question's selection). */
  private async bringHosts(repo: RepoLayout, opts: IndexOptions, rewriteMoved: boolean): Promise<Omit<IndexStats, 'size'> & { encodedFileBlocks?: number }> {
    const o = this.o;
    const { layout } = repo;
    const keys = layout.blocks.map((b) => blockCacheKey(o.model.identity, layout.anchor, b));
    if (poolHolders.get(o.pool) !== this) {
      // Another session's blocks (or none, on a new pool) are on the hosts.
      this.hosts = poolHolders.has(o.pool) ? { kind: 'unknown' } : { kind: 'empty' };
      poolHolders.set(o.pool, this);
    }
    const update = planPoolUpdate(this.hosts, layout.blocks, keys, o.pool.hosts.every((h) => h.drop && h.move));
    const common = { files: repo.files, skipped: repo.skipped, skippedByReason: repo.skippedByReason, blocks: layout.blocks.length, contextTokens: layout.contextLength, blocksDuplicate: duplicateBlocks(repo) };
    if (isUnchanged(update)) {
      this.layout = repo;
      opts.onProgress?.({ done: layout.blocks.length, total: layout.blocks.length, tokensPerSec: 0 });
      return { ...common, blocksEncoded: 0, blocksReused: layout.blocks.length, blocksShifted: 0, entriesRewritten: 0, encodeMs: 0, blocksHeld: layout.blocks.length, encodedPaths: [] };
    }
    // From here until the end the hosts' state is in between: a failure leaves it unknown (cleared next time).
    const previousKeys = this.pieceKeys;
    this.hosts = { kind: 'unknown' };
    this.layout = undefined;
    await this.rearrangeHosts(update);
    const pieceKeys = await this.carryPieceKeys(previousKeys, update, repo);
    const sent = await this.sendBlocks(update.needed, layout.anchor, pieceKeys, update.kept.size, opts, rewriteMoved);
    this.hosts = heldAfter(update, layout.blocks, keys, (i) => sent.stats.hostOfBlock[i]!);
    this.layout = repo;
    this.pieceKeys = pieceKeys;
    const encodedPaths = [...new Set([...sent.encoded].flatMap((i) => (repo.spans[i] ?? []).map((sp) => sp.path)))].sort();
    return {
      ...common,
      blocksEncoded: sent.stats.blocksEncoded,
      blocksReused: sent.stats.blocksReused + update.kept.size,
      blocksShifted: sent.stats.blocksShifted + update.moved.filter((m) => m.start !== update.kept.get(m.to)!.start).length,
      entriesRewritten: sent.stats.entriesRewritten,
      encodeMs: Math.round(sent.stats.encodeMs),
      blocksHeld: update.kept.size,
      encodedPaths,
      encodedFileBlocks: [...sent.encoded].filter((i) => i > 0).length,
    };
  }

  /** The pool's hosts cleared for a pass of this session's own (summaries, candidates): nothing of a layout held. */
  private async takeEmptyHosts(): Promise<void> {
    poolHolders.set(this.o.pool, this);
    this.hosts = { kind: 'empty' };
    this.layout = undefined;
    this.pieceKeys = new PieceKeys(() => undefined, 0);
    await this.o.pool.clear();
  }

  /** Clears the hosts, or drops their stale blocks and renumbers (re-rotates) the kept ones that moved. */
  private async rearrangeHosts(update: PoolUpdate): Promise<void> {
    const pool = this.o.pool;
    if (update.clear) {
      await pool.clear();
      return;
    }
    await Promise.all(pool.hosts.map(async (host, h) => {
      const drops = update.stale.filter((b) => b.host === h).map((b) => b.index);
      const moves = update.moved.filter((m) => m.host === h).map(({ from, to, start }) => ({ from, to, start }));
      if (drops.length) await host.drop!(drops);
      if (moves.length) await host.move!(moves);
    }));
  }
  /** The piece keys of the kept blocks, carried over from the previous layout (re-rotated where they moved). */
  private async carryPieceKeys(previous: PieceKeys, update: PoolUpdate, repo: RepoLayout): Promise<PieceKeys> {
    const c = this.o.model.config;
    const pieceKeys = new PieceKeys((index) => pieceRanges(repo.spans[index]));
    if (update.clear) return pieceKeys;
    for (const [to, held] of update.kept) {
      const keys = previous.keysOf(held.from);
      const spec = repo.layout.blocks[to]!;
      if (!keys) continue;
      const kv = { index: to, start: held.start, length: spec.tokens.length, width: c.nKvHeads * c.headDim, k: [...keys], v: [] };
      pieceKeys.keep(held.start === spec.start ? kv : await shiftBlockKv(this.shifter, kv, spec.start, c.headDim, c.rope));
    }
    return pieceKeys;
  }

  /** Phase 1 for the blocks the hosts lack: loaded from the disk cache, or encoded (and stored). */
  private async sendBlocks(needed: readonly BlockSpec[], anchor: readonly number[], pieceKeys: PieceKeys, kept: number, opts: IndexOptions, rewriteMoved: boolean) {
    const o = this.o;
    const c = o.model.config;
    const encoded = new Set<number>();
    let encodedTokens = 0;
    let firstEncode = 0;
    const hosts = o.pool.hosts.map((h) => recordingEncodes(pieceKeys.wrap(h), (specs) => {
      for (const spec of specs) encoded.add(spec.index);
      encodedTokens += specs.reduce((t, spec) => t + spec.tokens.length, 0);
    }, () => { firstEncode ||= performance.now(); }));
    const store = this.openStore();
    const stats = await encodeContext({
      modelIdentity: o.model.identity, anchor, blocks: needed, hosts, store, rewriteMoved,
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      // Re-rotating keys is a small CPU job, done here: no forward runs in this thread.
      shift: (kv, start) => shiftBlockKv(this.shifter, kv, start, c.headDim, c.rope),
      signal: opts.signal,
      onProgress: opts.onProgress ? (done, total) => {
        const seconds = firstEncode ? (performance.now() - firstEncode) / 1000 : 0;
        opts.onProgress!({ done: done + kept, total: total + kept, tokensPerSec: seconds > 0 ? encodedTokens / seconds : 0 });
      } : undefined,
    });
    return { stats, encoded };
  }

  private openStore(): BlockStore | undefined {
    const o = this.o;
    return o.cacheDir
      ? openKvBlockStore({ dir: o.cacheDir, maxSizeBytes: o.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES, dtype: kvDtypeFor(o.cacheDtype, this.positions), onWarning: o.onWarning })
      : undefined;
  }

  /**
   * The blocks a question attends to when not all fit (chooseBlocks: ranked, and the best that fit), then the hosts
   * brought to that selection (kept blocks moved, others loaded from the disk cache, re-rotated to their placement,
   * or encoded there on demand).
   */
  private async selectFor(full: RepoLayout, indexed: IndexStats, question: string, query: readonly number[], opts: AskOptions): Promise<SelectionStats> {
    const choice = await chooseBlocks(this.passHosts, full, question, query, opts);
    const brought = await this.bringHosts(selectedLayout(full, choice.plan), opts, false);
    const stats = selectionStats(choice, brought.encodedFileBlocks ?? 0);
    const ready = indexed.blocksSummarized ?? 0;
    return this.indexInterrupted ? { ...stats, whileIndexing: { ready, of: choice.of } } : stats;
  }

  private async runPrepare(leadFor: LeadFor, opts: PrepareOptions): Promise<number> {
    const o = this.o;
    this.prefilled = undefined;
    const held = this.layout;
    if (!held || !this.repository || this.positions !== 'global' || poolHolders.get(o.pool) !== this) return 0;
    const lead = leadFor((path) => holdsFile(this.repository!, path));
    if (!lead) return 0;
    const ids = queryLead(lead, o.model.tokenizer, o.model.chatTemplate, this.promptOptions());
    const contextLength = held.layout.contextLength;
    if (ids.length === 0 || contextLength + ids.length + 1 >= o.model.config.contextLength) return 0;
    const budget = o.pieceKeysBudgetBytes ?? pieceKeysBudget(o.model.config, ids.length);
    const hosts = this.hosts;
    await o.pool.prefill({ contextLength, ids, room: QUESTION_ROOM + opts.maxTokens, attentionShares: true, pieces: this.pieceKeys.data(budget) }, opts.signal);
    this.prefilled = { hosts, contextLength, ids };
    return ids.length;
  }

  private promptOptions(): { bosToken?: string } {
    const tokenizer = this.o.model.tokenizer;
    return { bosToken: tokenizer.bos !== undefined ? tokenizer.tokenText(tokenizer.bos) : undefined };
  }

  private async runAsk(questionOrFor: string | QuestionFor, opts: AskOptions): Promise<AskResult> {
    const started = performance.now();
    const o = this.o;
    const prefilled = this.prefilled;
    this.prefilled = undefined;
    // A question never waits for the key summaries (index() makes them): the attention ranking reads its candidates.
    const indexed = await this.updateHosts(opts, 'none');
    opts.onIndexed?.(indexed);
    const asked = typeof questionOrFor === 'string' ? questionOrFor : questionOrFor((path) => holdsFile(this.repository!, path));
    const question = questionText(asked);
    const query = buildQuery(asked, o.model.tokenizer, o.model.chatTemplate, this.promptOptions());
    if (query.length === 0) throw new EngineError('the question encodes to no tokens');
    const full = this.repository!;
    // Where the repository and the question fit (today's rule: room for at least one answer token), every block is
    // attended as it always was; otherwise the question's blocks are selected.
    const fits = indexed.size.positions === 'global' && full.layout.contextLength + query.length < o.model.config.contextLength;
    const fileBlocks = full.layout.blocks.slice(1);
    const selection: SelectionStats = fits
      ? {
        ranking: 'all', blocks: fileBlocks.length, of: fileBlocks.length, attended: fileBlocks.map((b) => b.index), encodedOnDemand: 0,
        tokens: full.layout.contextLength - full.layout.anchor.length, totalTokens: full.layout.contextLength - full.layout.anchor.length,
      }
      : await this.selectFor(full, indexed, question, query, opts);
    const repo = this.layout!;
    const budget = o.pieceKeysBudgetBytes ?? pieceKeysBudget(o.model.config, query.length);
    let streamed = '';
    const answerStarted = performance.now();
    // The lead prefilled (prepare) attended these very blocks: the hosts' state is the one it ran over.
    const usePrefix = fits && prefilled !== undefined && prefilled.hosts === this.hosts && prefilled.contextLength === repo.layout.contextLength
      && prefilled.ids.every((id, i) => query[i] === id);
    const r = await o.pool.answer({
      contextLength: repo.layout.contextLength, query, maxTokens: opts.maxTokens, temperature: opts.temperature,
      topP: opts.topP, seed: opts.seed, attentionShares: true, pieces: this.pieceKeys.data(budget), prefilled: usePrefix,
    }, (_id, text) => {
      if (!text) return;
      streamed += text;
      opts.onText?.(text);
    }, opts.signal);
    // The stream holds back an unfinished character; the final text has it (as U+FFFD if it never completed).
    if (r.text.length > streamed.length && r.text.startsWith(streamed)) opts.onText?.(r.text.slice(streamed.length));
    if (r.capped !== undefined) o.onWarning?.(`the answer was capped at ${r.capped} tokens: the repository and the question fill the rest of the model's context of ${o.model.config.contextLength} tokens`);
    const shares = new Map(r.blockShares);
    const spansOf = (index: number) => repo.spans[index] ?? [];
    const sources = fileShares(shares, new Map(r.pieceShares), spansOf).map((s) => ({ ...s, spans: lineSpans(repo.spans, s.path) }));
    const { skipped: _skipped, skippedByReason: _byReason, ...rest } = indexed;
    return {
      question,
      answer: r.text,
      ids: r.ids,
      sources,
      stats: {
        ...rest,
        mode: 'star',
        queryTokens: query.length,
        prefilledTokens: r.prefilledTokens,
        ttftMs: answerStarted - started + r.ttftMs,
        decodeTokensPerSec: r.decodeTokensPerSec,
        finish: r.finish,
        // Block 0 is the anchor (chat prefix + overview): no file's lines, its share reported apart.
        anchorShare: shares.get(0) ?? 0,
        selection,
      },
    };
  }
}

/** A block's pieces as token ranges, when it holds two or more (only those are split). */
function pieceRanges(spans: readonly BlockSpan[] | undefined): TokenRange[] | undefined {
  if (!spans || spans.length < 2) return undefined;
  return spans.map((s) => ({ start: s.tokenStart, end: s.tokenEnd }));
}

/** The lines of `path` held by the context, in order, touching or overlapping pieces merged. */
function lineSpans(spans: readonly (readonly BlockSpan[])[], path: string): { startLine: number; endLine: number }[] {
  const pieces = spans.flat().filter((s) => s.path === path).map((s) => ({ startLine: s.startLine, endLine: s.endLine }));
  pieces.sort((a, b) => a.startLine - b.startLine);
  const out: { startLine: number; endLine: number }[] = [];
  for (const p of pieces) {
    const last = out[out.length - 1];
    if (last && p.startLine <= last.endLine + 1) last.endLine = Math.max(last.endLine, p.endLine);
    else out.push({ ...p });
  }
  return out;
}
