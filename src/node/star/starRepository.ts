// Star Attention over a repository, end to end in Node: walk + pack (repoLayout), phase 1 on
// local hosts with the per-block disk cache (blockStore), then phase 2 (StarQuery) or, with
// mode 'global', one ordinary causal prefill of exactly the same token sequence as the baseline.
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import type { Transformer } from '../../engine/runtime/transformer';
import { encodeContext, type BlockStore, type ContextStats } from '../../engine/star/context';
import { decodeLoop, StarQuery, type DecodeResult } from '../../engine/star/query';
import { shiftBlockKv } from '../../engine/star/shift';
import type { BlockSpan } from '../../engine/star/blocks';
import { PieceKeys, pieceKeysBudget } from '../../engine/star/pieceKeys';
import { AttentionMass, fileShares, type TokenRange } from '../../engine/star/sources';
import { createStreamDecoder } from '../../engine/tokenizer/streamDecoder';
import type { BackendKind } from '../createBackend';
import { openKvBlockStore } from '../cache/kvBlockStore';
import { createLocalHosts } from './localHosts';
import { createThreadHosts, type ThreadHosts } from './threadHosts';
import { buildRepoLayout, type RepoLayout } from './repoLayout';

export const DEFAULT_CACHE_MAX_BYTES = 4 * 1024 ** 3;

export interface StarRepoOptions {
  readonly repo: string;
  readonly model: LoadedModel;
  readonly chunkSize: number;
  readonly anchorSize?: number;
  readonly hosts?: number;
  readonly backend: BackendKind;
  /** Disk cache folder; undefined = no disk cache. */
  readonly cacheDir?: string;
  /** Size cap of the disk cache (least recently used entries go first); default 4 GiB. */
  readonly cacheMaxBytes?: number;
  readonly memoryBudgetBytes?: number;
  /**
   * Hosts 1..k-1 in worker threads (threadHosts.ts), each opening the model from `modelPath` itself:
   * on the CPU the hosts then encode and attend on separate cores. Default: every host in this thread.
   */
  readonly hostThreads?: { readonly modelPath: string; readonly workerScript?: string };
  readonly signal?: AbortSignal;
  readonly onWarning?: (message: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Phase 1's counts (see ContextStats for each), with encodeMs rounded, plus the repository's own. */
export type IndexStats = Omit<ContextStats, 'hostOfBlock'> & {
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
};

/** Phase 1 only: brings the disk cache up to date for the repository. */
export async function indexRepository(o: StarRepoOptions): Promise<IndexStats> {
  const repo = await buildRepoLayout({ repo: o.repo, model: o.model, chunkSize: o.chunkSize, anchorSize: o.anchorSize, signal: o.signal });
  const local = await openHosts(o, o.hosts ?? 1);
  try {
    const stats = await runPhase1(o, repo, local.hosts, local.query);
    return indexStats(repo, stats);
  } finally {
    await local.dispose();
  }
}

export interface AskOptions extends StarRepoOptions {
  readonly question: string;
  readonly mode?: 'star' | 'global';
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Streamed answer text, as generated. */
  readonly onText?: (text: string) => void;
  /** Cap on the keys kept for exact per-file shares of multi-file blocks (default: pieceKeysBudget's). */
  readonly pieceKeysBudgetBytes?: number;
}

export interface AskResult {
  readonly answer: string;
  readonly ids: number[];
  /**
   * Per file, its share of the query prefill's attention to the context, highest first (star mode); with
   * stats.anchorShare they sum to 1. A block holding several files is split exactly (each file's token range
   * attended alone, sources.ts) while the kept keys fit pieceKeysBudget, by token counts beyond it.
   */
  readonly sources: { path: string; share: number }[];
  readonly stats: Omit<IndexStats, 'skipped' | 'skippedByReason'> & {
    readonly mode: 'star' | 'global';
    readonly queryTokens: number;
    /** From the start of phase 1 (cache lookups included) to the first generated token. */
    readonly ttftMs: number;
    readonly decodeTokensPerSec: number;
    readonly finish: 'stop' | 'length';
    /** Share of the query's context attention on the anchor (chat prefix + overview), not on any file block. */
    readonly anchorShare: number;
  };
}

export async function askRepository(o: AskOptions): Promise<AskResult> {
  const mode = o.mode ?? 'star';
  const repo = await buildRepoLayout({ repo: o.repo, model: o.model, chunkSize: o.chunkSize, anchorSize: o.anchorSize, question: o.question, signal: o.signal });
  const { layout } = repo;
  if (layout.query.length === 0) throw new EngineError('the question encodes to no tokens');
  const maxTokens = o.maxTokens ?? 128;
  const limit = o.model.config.contextLength;
  if (layout.contextLength + layout.query.length + maxTokens > limit) {
    o.onWarning?.(`the prompt (${layout.contextLength} context + ${layout.query.length} query tokens) runs past the model's context of ${limit} tokens; positions beyond it were not trained`);
  }
  const local = await openHosts(o, mode === 'star' ? o.hosts ?? 1 : 1);
  const decoder = createStreamDecoder(o.model.tokenizer);
  const decode = {
    maxTokens,
    temperature: o.temperature ?? 0,
    topP: o.topP,
    seed: o.seed,
    stopIds: o.model.tokenizer.eos,
    signal: o.signal,
    onToken: o.onText ? (id: number) => { const t = decoder.push(id); if (t) o.onText!(t); } : undefined,
  };
  try {
    const started = performance.now();
    let result: DecodeResult;
    let phase1: ContextStats | undefined;
    let sources: { path: string; share: number }[] = [];
    let anchorShare = 0;
    let pieceKeys = new PieceKeys(() => undefined, 0);
    if (mode === 'star') {
      // Keys of multi-file blocks, kept during phase 1 for the sources pass (exact per-file shares).
      const budget = o.pieceKeysBudgetBytes ?? pieceKeysBudget(o.model.config, layout.query.length);
      pieceKeys = new PieceKeys((index) => pieceRanges(repo.spans[index]), budget);
      phase1 = await runPhase1(o, repo, local.hosts.map((h) => pieceKeys.wrap(h)), local.query);
      const query = new StarQuery(local.query, {
        contextLength: layout.contextLength,
        hosts: local.hosts,
        colocated: local.colocated,
        capacity: layout.query.length + maxTokens,
      });
      try {
        const c = o.model.config;
        const mass = new AttentionMass(pieceKeys.splitOptions({ nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim }));
        const first = (await query.forward(layout.query, 'last', o.signal, mass))!;
        pieceKeys.clear();
        result = await decodeLoop(local.query, first, started, decode, query.cache, (id) => query.forward([id], 'last', o.signal).then((l) => l!));
        const shares = mass.shares();
        sources = fileShares(shares, mass.pieceShares(), (index) => repo.spans[index] ?? []);
        // Block 0 is the anchor (chat prefix + overview): no file's lines, its share reported apart.
        anchorShare = shares.get(0) ?? 0;
      } finally {
        query.dispose();
      }
    } else {
      result = await globalGenerate(local.query, [...layout.blocks.flatMap((b) => b.tokens), ...layout.query], started, decode);
    }
    const tail = decoder.flush();
    if (tail) o.onText?.(tail);
    return {
      answer: o.model.tokenizer.decode(result.ids, { skipSpecial: true }),
      ids: result.ids,
      sources,
      stats: {
        mode,
        files: repo.files,
        blocks: layout.blocks.length,
        blocksEncoded: phase1?.blocksEncoded ?? 0,
        blocksReused: phase1?.blocksReused ?? 0,
        blocksShifted: phase1?.blocksShifted ?? 0,
        entriesRewritten: phase1?.entriesRewritten ?? 0,
        blocksDuplicate: duplicateBlocks(repo),
        contextTokens: layout.contextLength,
        queryTokens: layout.query.length,
        encodeMs: Math.round(phase1?.encodeMs ?? 0),
        ttftMs: result.ttftMs,
        decodeTokensPerSec: result.decodeTokensPerSec,
        finish: result.finish,
        anchorShare,
      },
    };
  } finally {
    await local.dispose();
  }
}

/** Host 0 (the query host) in this thread; the others here too, or in worker threads with hostThreads. */
async function openHosts(o: StarRepoOptions, hosts: number): Promise<ThreadHosts> {
  if (o.hostThreads && hosts > 1) {
    return createThreadHosts(o.model, { backend: o.backend, hosts, memoryBudgetBytes: o.memoryBudgetBytes, ...o.hostThreads });
  }
  const local = await createLocalHosts(o.model, { backend: o.backend, hosts, memoryBudgetBytes: o.memoryBudgetBytes });
  return { query: local.query, colocated: local.hosts[0]!, hosts: local.hosts, dispose: () => local.dispose() };
}

async function runPhase1(o: StarRepoOptions, repo: RepoLayout, hosts: Parameters<typeof encodeContext>[0]['hosts'], query: Transformer): Promise<ContextStats> {
  const c = o.model.config;
  const store: BlockStore | undefined = o.cacheDir
    ? openKvBlockStore({ dir: o.cacheDir, maxSizeBytes: o.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES, onWarning: o.onWarning })
    : undefined;
  return encodeContext({
    modelIdentity: o.model.identity,
    anchor: repo.layout.anchor,
    blocks: repo.layout.blocks,
    hosts,
    store,
    kvWidth: c.nKvHeads * c.headDim,
    nLayers: c.nLayers,
    shift: (kv, start) => shiftBlockKv(query.backend, kv, start, c.headDim, c.rope),
    signal: o.signal,
    onProgress: o.onProgress,
  });
}

function indexStats(repo: RepoLayout, s: ContextStats): IndexStats {
  return {
    files: repo.files,
    skipped: repo.skipped,
    skippedByReason: repo.skippedByReason,
    blocks: s.blocks,
    contextTokens: s.contextTokens,
    blocksEncoded: s.blocksEncoded,
    blocksReused: s.blocksReused,
    blocksShifted: s.blocksShifted,
    entriesRewritten: s.entriesRewritten,
    blocksDuplicate: duplicateBlocks(repo),
    encodeMs: Math.round(s.encodeMs),
  };
}

/** File blocks whose tokens equal an earlier file block's (they share one cache entry). */
function duplicateBlocks(repo: RepoLayout): number {
  const seen = new Set<string>();
  let duplicates = 0;
  for (const b of repo.layout.blocks) {
    if (b.index === 0) continue;
    const key = b.tokens.join(',');
    if (seen.has(key)) duplicates++;
    else seen.add(key);
  }
  return duplicates;
}

/** A block's pieces as token ranges, when it holds two or more (only those are split). */
function pieceRanges(spans: readonly BlockSpan[] | undefined): TokenRange[] | undefined {
  if (!spans || spans.length < 2) return undefined;
  return spans.map((s) => ({ start: s.tokenStart, end: s.tokenEnd }));
}

/** The baseline: one causal prefill of the whole sequence (in chunks of rows), then decoding. */
async function globalGenerate(t: Transformer, ids: readonly number[], started: number, decode: Parameters<typeof decodeLoop>[3]): Promise<DecodeResult> {
  const cache = t.newCache(ids.length + decode.maxTokens);
  const chunk = 256;
  try {
    let logits = null;
    for (let s = 0; s < ids.length; s += chunk) {
      const e = Math.min(ids.length, s + chunk);
      const positions = new Int32Array(e - s);
      for (let i = 0; i < positions.length; i++) positions[i] = s + i;
      logits = await t.forward(Int32Array.from(ids.slice(s, e)), positions, cache, { logits: e === ids.length ? 'last' : 'none', signal: decode.signal });
    }
    const step = (id: number) => t.forward(Int32Array.of(id), Int32Array.of(cache.length), cache, { logits: 'last', signal: decode.signal }).then((l) => l!);
    return await decodeLoop(t, logits!, started, decode, cache, step);
  } finally {
    t.releaseCache(cache);
  }
}
