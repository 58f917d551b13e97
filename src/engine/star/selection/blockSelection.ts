import { EngineError } from '../../errors';
import type { StarHost } from '../host';
import { wrapHost } from '../wrapHost';
import type { BlockKv } from '../types';
import { DEFAULT_SUMMARY_PAGE, scoreSummaries, summarizeKeys, type AttentionShape, type KeySummary, type QuestionQueries } from './keySummary';
import { LexicalIndex } from './lexical';

/*
 * A session's state for answering repositories larger than the model's context: the key summary of every block it
 * has seen (by cache key, so an edit keeps the summaries of unchanged blocks), the anchor's KV (for the question's
 * query probe), and the lexical index of the current layout. Also the rule for where blocks are encoded.
 *
 * Positions, chosen per repository size (positionsFor): a repository whose anchor and blocks fit the model's
 * context is encoded at global positions, as always, so where the question fits too nothing changes. A larger one
 * is encoded with every block right after the anchor (start = anchor length): the anchor-to-block distances are
 * those of the first block, which the model was trained on, whatever the repository's size, and every block's
 * keys share one frame (what the key summaries need). A selected block is moved to its placement by re-rotating
 * its keys (shift.ts): exact for RoPE, approximate only in that the block saw the anchor at the local distance.
 */

/** How a question's blocks are ranked where not every block fits: see `chooseRanking`. */
export type SelectionMode = 'auto' | 'attention' | 'lexical';
export const SELECTION_MODES: readonly SelectionMode[] = ['auto', 'attention', 'lexical'];

/** Global positions where the anchor and every block fit the model's context, local (after the anchor) otherwise. */
export function positionsFor(contextTokens: number, modelContext: number): 'global' | 'local' {
  return contextTokens <= modelContext ? 'global' : 'local';
}

/**
 * The answer's reserve when blocks are selected: the request's maxTokens, at most a quarter of the model's context
 * (more would leave few blocks to read; an answer that needs more continues to the context's end anyway).
 */
export function selectionAnswerReserve(maxTokens: number, modelContext: number): number {
  return Math.max(1, Math.min(maxTokens, Math.floor(modelContext / 4)));
}

/**
 * The most block tokens a question attends when the repository does not fit: a quarter of the model's context
 * (SmolLM2's 8K: 2,048 tokens, four blocks of 512; a 128K model: 32K). More room filled with weakly ranked blocks
 * lost needles on a small model (plan.ts says what was measured); a larger model's context is larger too.
 */
export function selectionFocus(modelContext: number): number {
  return Math.floor(modelContext / 4);
}

/** Where summaries outlive a session and a block's KV entry (the disk cache's summaries folder in Node). */
export interface SummaryStore {
  /** Undefined on a miss, or for a summary taken with pages of another size. */
  get(key: string, pageSize: number): Promise<KeySummary | undefined>;
  /** Never throws: a summary not stored is taken again next time. */
  put(key: string, summary: KeySummary): Promise<void>;
}

export class BlockSelection {
  private readonly summaries = new Map<string, KeySummary>();
  private anchorKv: { key: string; kv: BlockKv } | undefined;
  private lexical: { signature: string; index: LexicalIndex } | undefined;

  /**
   * `shift` re-rotates a block's keys to a start (shiftBlockKv on a CPU backend): summaries are taken with every
   * block at `localStart` whatever start its KV arrived at.
   */
  constructor(
    private readonly shift: (kv: BlockKv, start: number) => Promise<BlockKv>,
    private readonly store?: SummaryStore,
    readonly pageSize = DEFAULT_SUMMARY_PAGE,
  ) {}

  /** Takes the block's summary from the store when it has one; true when the block now has a summary. */
  async recall(key: string): Promise<boolean> {
    if (this.summaries.has(key)) return true;
    const stored = await this.store?.get(key, this.pageSize);
    if (stored) this.summaries.set(key, stored);
    return stored !== undefined;
  }

  hasSummary(key: string): boolean {
    return this.summaries.has(key);
  }

  summaryOf(key: string): KeySummary | undefined {
    return this.summaries.get(key);
  }

  anchorOf(key: string): BlockKv | undefined {
    return this.anchorKv?.key === key ? this.anchorKv.kv : undefined;
  }

  /** Records a block's KV as it passed to or from a host: the anchor's kept whole, any other block summarised. */
  async observe(key: string, kv: BlockKv, localStart: number): Promise<void> {
    if (kv.start === 0) {
      this.anchorKv = { key, kv };
      return;
    }
    if (this.summaries.has(key)) return;
    const placed = kv.start === localStart ? kv : await this.shift({ ...kv, v: [] }, localStart);
    const summary = summarizeKeys(placed, this.pageSize);
    this.summaries.set(key, summary);
    await this.store?.put(key, summary);
  }

  /** Forgets the summaries of blocks no longer in the layout (`keep`: the current layout's keys). */
  prune(keep: ReadonlySet<string>): void {
    for (const key of this.summaries.keys()) if (!keep.has(key)) this.summaries.delete(key);
  }

  /** `host` with every block it encodes or loads observed (keyOf: the cache key of a block index). */
  observing(host: StarHost, keyOf: (index: number) => string | undefined, localStart: number): StarHost {
    const observe = async (kvs: readonly BlockKv[]) => {
      for (const kv of kvs) {
        const key = keyOf(kv.index);
        if (key !== undefined) await this.observe(key, kv, localStart);
      }
    };
    return wrapHost(host, {
      encode: async (anchor, blocks, signal) => {
        const kvs = await host.encode(anchor, blocks, signal);
        await observe(kvs);
        return kvs;
      },
      load: async (blocks) => {
        // Observed first: a host may take over the arrays it is given.
        await observe(blocks);
        await host.load(blocks);
      },
    });
  }

  /** The BM25 index of the layout's blocks, rebuilt only when their keys change. */
  lexicalIndex(blocks: readonly { readonly index: number; readonly key: string }[], textOf: (index: number) => string): LexicalIndex {
    const signature = blocks.map((b) => b.key).join(',');
    if (this.lexical?.signature !== signature) {
      this.lexical = { signature, index: new LexicalIndex(blocks.map((b) => ({ index: b.index, text: textOf(b.index) }))) };
    }
    return this.lexical.index;
  }

  /**
   * The ranking a question gets. `attention` is the two-stage ranking (twoStage.ts: BM25 candidates, then exact
   * attention from the question's probe over their keys) and needs a query probe on the query host (an in-process
   * pool); without one it is an EngineError. `auto` is lexical: on SmolLM2-135M (small one-line files, 18 questions
   * with and without decoys that share their words) the two stages put the answer's block first 6 to 8 times, BM25
   * 9 (README, "Repositories larger than the model's context").
   */
  static chooseRanking(mode: SelectionMode, canProbe: boolean): 'attention' | 'lexical' {
    if (mode !== 'attention') return 'lexical';
    if (!canProbe) throw new EngineError('selection by attention needs a query probe on the query host, which this host pool cannot run (use --selection lexical or auto)');
    return 'attention';
  }

  /** Blocks best first by their key bounds (every block must have a summary). */
  rankByAttention(blocks: readonly { readonly index: number; readonly key: string }[], queries: QuestionQueries, shape: AttentionShape): { index: number; score: number }[] {
    const summaries = blocks.map((b) => {
      const s = this.summaries.get(b.key);
      if (!s) throw new EngineError(`block ${b.index} has no key summary`);
      return { ...s, index: b.index };
    });
    return scoreSummaries(summaries, queries, shape);
  }
}
