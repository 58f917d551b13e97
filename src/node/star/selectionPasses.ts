// The passes a repository larger than the model's context needs beside ordinary phase 1, over a RepoSession's
// hosts: the index's key summaries (summarizeRepository), a question's ranking and plan (chooseBlocks: BM25, or two
// stages with the candidates' exact attention), and the reads of blocks as stored, right after the anchor
// (readLocal), that both use. The session then brings its hosts to the chosen blocks (RepoSession.bringHosts).
//
// One question beyond the context, in order: RepoSession.runAsk -> updateHosts (the layout; no summaries) ->
// chooseBlocks (here: lexical ranking; for `attention` the anchor read, the probe, the candidates read and scored)
// -> planSelection (plan.ts: the best that fit, placed after the anchor) -> selectedLayout -> RepoSession.bringHosts
// (the selected blocks loaded, re-rotated to their placement, or encoded there) -> the answer.
import type { LoadedModel } from '../../engine/model/types';
import { blockCacheKey, encodeContext, type BlockStore } from '../../engine/star/context';
import { roundKvAs } from '../../engine/quant/kvRounding';
import type { StarHost } from '../../engine/star/host';
import { BlockSelection, selectionFocus, selectionAnswerReserve } from '../../engine/star/selection/blockSelection';
import { blockLogMasses, rankByExactAttention } from '../../engine/star/selection/exactAttention';
import { defaultFirstLayer } from '../../engine/star/selection/keySummary';
import { planSelection, type SelectionPlan } from '../../engine/star/selection/plan';
import { CANDIDATE_FACTOR, pickCandidates, rerank } from '../../engine/star/selection/twoStage';
import type { BlockKv, BlockSpec } from '../../engine/star/types';
import { recordingEncodes, wrapHost } from '../../engine/star/wrapHost';
import type { HostPool } from './hostPool';
import { duplicateBlocks, type RepoLayout } from './repoLayout';
import type { AskOptions, IndexOptions, IndexStats, SelectionStats } from './repoSession';

/** How much of the key summaries phase 1 makes (see summarizeRepository). */
export type SummaryPass = 'all' | 'none';

/** Blocks per host encoded (or loaded) together for their key summaries before the hosts drop them. */
const SUMMARY_GROUP_BLOCKS = 8;

/** What the passes use of a RepoSession: its model, pool, summaries and disk cache, and a way to empty its hosts. */
export interface SessionHosts {
  readonly model: LoadedModel;
  readonly pool: HostPool;
  /** Key summaries, the anchor's KV and the lexical index, kept across questions. */
  readonly selection: BlockSelection;
  /** The disk cache (at the repository's dtype), or none. */
  openStore(): BlockStore | undefined;
  /** The pool's hosts cleared for a pass of this module's: nothing of a layout held (the session forgets its own). */
  takeEmptyHosts(): Promise<void>;
  /** Re-rotates a block's keys to a start (CPU). */
  shift(kv: BlockKv, start: number): Promise<BlockKv>;
}

/**
 * Phase 1 of a repository larger than the context: every block without a key summary is loaded from the disk
 * cache or encoded right after the anchor (and stored), summarised, and dropped from the hosts, a few at a time
 * (the hosts never hold more than a group); 'none' does nothing. `preempt` (a question is waiting) stops the pass
 * in the middle of its group: what was stored stays (encodeContext stores each batch as it ends), the hosts are
 * cleared, and the stats say `interrupted`.
 */
export async function summarizeRepository(h: SessionHosts, repo: RepoLayout, opts: IndexOptions, pass: SummaryPass, preempt?: AbortSignal): Promise<Omit<IndexStats, 'size'>> {
  const c = h.model.config;
  const { layout } = repo;
  const anchorLength = layout.anchor.length;
  const local = layout.blocks.map((b) => (b.index === 0 ? b : { ...b, start: anchorLength }));
  const keys = local.map((b) => blockCacheKey(h.model.identity, layout.anchor, b));
  h.selection.prune(new Set(keys));
  const missing: BlockSpec[] = [];
  // A summary on disk stands for its block: its KV is neither read nor encoded (it may even be evicted).
  if (pass === 'all') for (const b of local) if (b.index > 0 && !(await h.selection.recall(keys[b.index]!))) missing.push(b);
  const needAnchor = pass === 'all' && !h.selection.anchorOf(keys[0]!);
  const summarizedBefore = local.filter((b) => b.index > 0 && h.selection.hasSummary(keys[b.index]!)).length;
  const totals = { blocksEncoded: 0, blocksReused: 0, blocksShifted: 0, entriesRewritten: 0, encodeMs: 0 };
  const encoded = new Set<number>();
  let interrupted = false;
  if (missing.length > 0 || needAnchor) {
    // The hosts are cleared between groups: whatever they held (another session's, or a question's) goes.
    await h.takeEmptyHosts();
    const store = h.openStore();
    const perGroup = SUMMARY_GROUP_BLOCKS * h.pool.hosts.length;
    const groups: BlockSpec[][] = [];
    for (let i = 0; i < missing.length; i += perGroup) groups.push(missing.slice(i, i + perGroup));
    if (needAnchor) (groups[0] ??= []).unshift(local[0]!);
    let done = 0;
    for (const group of groups) {
      if (preempt?.aborted) {
        interrupted = true;
        break;
      }
      const hosts = h.pool.hosts.map((host) => recordingEncodes(h.selection.observing(host, (i) => keys[i], anchorLength), (specs) => {
        for (const spec of specs) encoded.add(spec.index);
      }, () => {}));
      let stats;
      try {
        stats = await encodeContext({
          modelIdentity: h.model.identity, anchor: layout.anchor, blocks: group, hosts, store,
          kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, shift: h.shift, signal: eitherSignal(opts.signal, preempt),
          onProgress: opts.onProgress ? (d) => opts.onProgress!({ done: done + d, total: missing.length, tokensPerSec: 0 }) : undefined,
        });
      } catch (err) {
        // The hosts may hold part of the group: none of it is this session's to keep.
        await h.pool.clear().catch(() => {});
        if (preempt?.aborted && !opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        throw err;
      }
      await h.pool.clear();
      done += group.length;
      totals.blocksEncoded += stats.blocksEncoded;
      totals.blocksReused += stats.blocksReused;
      totals.blocksShifted += stats.blocksShifted;
      totals.entriesRewritten += stats.entriesRewritten;
      totals.encodeMs += Math.round(stats.encodeMs);
    }
  }
  const encodedPaths = [...new Set([...encoded].flatMap((i) => (repo.spans[i] ?? []).map((sp) => sp.path)))].sort();
  return {
    files: repo.files, skipped: repo.skipped, skippedByReason: repo.skippedByReason, blocks: layout.blocks.length,
    contextTokens: layout.contextLength, blocksDuplicate: duplicateBlocks(repo), ...totals,
    // Blocks summarised in an earlier index of this session were not looked at again.
    blocksReused: totals.blocksReused + summarizedBefore, blocksHeld: 0, encodedPaths,
    blocksSummarized: local.filter((b) => b.index > 0 && h.selection.hasSummary(keys[b.index]!)).length,
    ...(interrupted ? { interrupted } : {}),
  };
}

/** Aborted when either is (an index's own cancel, or a question that came). */
function eitherSignal(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (!a || !b) return a ?? b;
  const both = new AbortController();
  const abort = () => both.abort();
  if (a.aborted || b.aborted) both.abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return both.signal;
}

/** A question's blocks: how they were ranked, what fits (the plan), and the attention ranking's candidates. */
export interface BlockChoice {
  readonly ranking: 'attention' | 'lexical';
  readonly plan: SelectionPlan;
  /** File blocks of the repository (the anchor not counted). */
  readonly of: number;
  readonly candidates?: SelectionStats['candidates'];
}

/**
 * The blocks a question attends to when not all fit: ranked (lexically, or in two stages: BM25 candidates, then
 * the question's exact attention over their keys), then the best that fit beside the question and the answer's
 * reserve (plan.ts).
 */
export async function chooseBlocks(h: SessionHosts, full: RepoLayout, question: string, query: readonly number[], opts: AskOptions): Promise<BlockChoice> {
  const c = h.model.config;
  const { layout } = full;
  const anchorLength = layout.anchor.length;
  const reserve = selectionAnswerReserve(opts.maxTokens, c.contextLength);
  const planBlocks = layout.blocks.slice(1).map((b) => ({ index: b.index, length: b.tokens.length }));
  const budget = { anchorLength, contextLength: c.contextLength, questionLength: query.length, answerReserve: reserve, focusTokens: selectionFocus(c.contextLength) };
  const room = planSelection([], budget, []).budget; // the anchor, question and reserve alone must fit: said before any ranking work
  const focus = Math.min(room, budget.focusTokens);
  const blocks = layout.blocks.slice(1).map((b) => ({ index: b.index, key: blockCacheKey(h.model.identity, layout.anchor, b) }));
  const ranking = BlockSelection.chooseRanking(opts.selection ?? 'auto', h.pool.probe !== undefined);
  const lexical = h.selection.lexicalIndex(blocks, (i) => h.model.tokenizer.decode(layout.blocks[i]!.tokens)).rank(question).map((r) => r.index);
  let ranked = lexical;
  let candidates: SelectionStats['candidates'];
  if (ranking === 'attention') {
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const anchorKey = blockCacheKey(h.model.identity, layout.anchor, layout.blocks[0]!);
    if (!h.selection.anchorOf(anchorKey)) await readLocal(h, full, [layout.blocks[0]!], opts, () => {});
    // The probe's question sits where a full selection puts it: every candidate's keys (right after the anchor)
    // are attended at the distance a placed block has from the question.
    const queries = await h.pool.probe!([h.selection.anchorOf(anchorKey)!], query, anchorLength + focus, opts.signal);
    // The summaries an earlier index stored (another process's, too) order the blocks BM25 leaves out; one missing
    // leaves them in repository order.
    let complete = true;
    for (const b of blocks) if (!(complete = await h.selection.recall(b.key))) break;
    const fallback = complete ? h.selection.rankByAttention(blocks, queries, shape).map((r) => r.index) : [];
    const picked = pickCandidates(planBlocks, [...lexical, ...fallback], CANDIDATE_FACTOR * focus);
    const firstLayer = defaultFirstLayer(c.nLayers);
    const masses = new Map<number, (Float64Array | undefined)[]>();
    const encoded = await readLocal(h, full, picked.map((i) => layout.blocks[i]!), opts, (kv) => { masses.set(kv.index, blockLogMasses(kv, queries, shape, firstLayer)); });
    const byAttention = rankByExactAttention(picked, masses, { ...shape, nLayers: c.nLayers }, queries.rows);
    ranked = rerank(byAttention.map((r) => r.index), [...lexical, ...fallback]);
    candidates = { blocks: picked.length, tokens: picked.reduce((n, i) => n + layout.blocks[i]!.tokens.length, 0), encoded };
  }
  return { ranking, plan: planSelection(planBlocks, budget, ranked), of: planBlocks.length, ...(candidates ? { candidates } : {}) };
}

/** The repository's layout cut down to a plan's blocks, placed where the plan put them (after the anchor, in order). */
export function selectedLayout(full: RepoLayout, plan: SelectionPlan): RepoLayout {
  const { layout } = full;
  return {
    ...full,
    layout: {
      anchor: layout.anchor, query: [], contextLength: plan.contextTokens,
      blocks: [layout.blocks[0]!, ...plan.blocks.map((p, i) => ({ index: i + 1, tokens: layout.blocks[p.index]!.tokens, start: p.start }))],
    },
    spans: [full.spans[0] ?? [], ...plan.blocks.map((p) => full.spans[p.index] ?? [])],
  };
}

/** What a question attended to, once the hosts hold the choice (`encodedOnDemand`: selected blocks encoded for it). */
export function selectionStats(choice: BlockChoice, encodedOnDemand: number): SelectionStats {
  const { plan } = choice;
  return {
    ranking: choice.ranking, blocks: plan.blocks.length, of: choice.of, tokens: plan.selectedTokens, totalTokens: plan.totalBlockTokens,
    attended: plan.blocks.map((p) => p.index), encodedOnDemand,
    ...(choice.candidates ? { candidates: choice.candidates } : {}),
  };
}

/**
 * Blocks of the repository's layout read as stored, right after the anchor: loaded from the disk cache or encoded
 * there (and stored), a group at a time through the pool's hosts, which are cleared before and after. Each block's
 * KV is handed to `onKv` (keys only) before a host takes it over; the anchor's is kept for the query probe.
 * Returns how many of the blocks were encoded.
 */
export async function readLocal(h: SessionHosts, repo: RepoLayout, specs: readonly BlockSpec[], opts: IndexOptions, onKv: (kv: BlockKv) => void): Promise<number> {
  const c = h.model.config;
  const { layout } = repo;
  const anchorLength = layout.anchor.length;
  const local = specs.map((b) => (b.index === 0 ? b : { ...b, start: anchorLength }));
  const see = async (kvs: readonly BlockKv[]) => {
    for (const kv of kvs) {
      if (kv.index === 0) {
        await h.selection.observe(blockCacheKey(h.model.identity, layout.anchor, layout.blocks[0]!), kv, anchorLength);
        continue;
      }
      onKv(kv.start === anchorLength ? kv : await h.shift({ ...kv, v: [] }, anchorLength));
    }
  };
  await h.takeEmptyHosts();
  const store = h.openStore();
  const perGroup = SUMMARY_GROUP_BLOCKS * h.pool.hosts.length;
  let encoded = 0;
  for (let i = 0; i < local.length; i += perGroup) {
    const hosts: StarHost[] = h.pool.hosts.map((host) => wrapHost(host, {
      encode: async (anchor, blocks, signal) => {
        const kvs = await host.encode(anchor, blocks, signal);
        encoded += blocks.length;
        // Rounded as encodeContext stores them (it rounds the same arrays again, a no-op): a block scores the same
        // encoded now as loaded later.
        for (const kv of kvs) roundKvAs(store?.dtype, kv);
        await see(kvs);
        return kvs;
      },
      load: async (blocks) => {
        await see(blocks);
        await host.load(blocks);
      },
    }));
    await encodeContext({
      modelIdentity: h.model.identity, anchor: layout.anchor, blocks: local.slice(i, i + perGroup), hosts, store,
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, shift: h.shift, signal: opts.signal,
    });
    await h.pool.clear();
  }
  return encoded;
}
