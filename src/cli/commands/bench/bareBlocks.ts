// The paper's "no anchor" ablation on a repository, for bench needle and bench qa: the prompt's tokens and
// positions are exactly Star Attention's (chat prefix + overview, file blocks, question), but every file block is
// encoded after the prompt's first token only (BOS, or the chat template's first token where the model has no BOS:
// `<|im_start|>` on ChatML) instead of after the anchor. That one token is what any prompt starts with and what a
// block alone would otherwise lack entirely (its first tokens would become the attention sink). The chat prefix and
// overview are still in the context, as one more block encoded after that token (causally exact), so the question
// attends to the same tokens as in every other mode: only what the blocks saw while being encoded differs.
// Kept in the bench, not in RepoSession: it is a measurement of what the anchor buys, not a way to answer.
import { EngineError } from '../../../engine/errors';
import type { LoadedModel } from '../../../engine/model/types';
import { answerQuery } from '../../../engine/star/answer';
import { encodeContext } from '../../../engine/star/context';
import type { StarLayout } from '../../../engine/star/layout';
import { shiftBlockKv } from '../../../engine/star/shift';
import type { BlockSpec } from '../../../engine/star/types';
import { openKvBlockStore } from '../../../node/cache/kvBlockStore';
import type { BackendKind } from '../../../node/createBackend';
import { buildRepoLayout } from '../../../node/star/repoLayout';
import { createLocalHosts } from '../../../node/star/localHosts';
import { DEFAULT_CACHE_MAX_BYTES } from '../../../node/star/repoSession';

/** `layout` with the anchor cut to its first token: block 0 = that token, block 1 = the rest of the old anchor, then the file blocks. */
export function bareLayout(layout: StarLayout): StarLayout {
  const [first, ...rest] = layout.anchor;
  if (first === undefined || rest.length === 0) throw new EngineError('bare blocks: the anchor has fewer than two tokens');
  const anchor = [first];
  const blocks: BlockSpec[] = [{ index: 0, tokens: anchor, start: 0 }, { index: 1, tokens: rest, start: 1 }];
  for (const b of layout.blocks.slice(1)) blocks.push({ ...b, index: blocks.length });
  return { anchor, blocks, contextLength: layout.contextLength, query: layout.query };
}

export interface BareAskOptions {
  readonly repo: string;
  readonly model: LoadedModel;
  readonly chunkSize: number;
  readonly question: string;
  readonly maxTokens: number;
  readonly backend: BackendKind;
  /** Disk KV cache: the blocks of a first question are loaded by the next (their keys hold the one-token anchor). */
  readonly cacheDir: string;
}

/** One greedy answer over bare blocks; ttftMs counts from the walk (phase 1 included when the cache is cold), as `ask` does. */
export async function askBareBlocks(o: BareAskOptions): Promise<{ answer: string; ttftMs: number; contextTokens: number }> {
  const started = performance.now();
  const { layout: full } = await buildRepoLayout({ repo: o.repo, model: o.model, chunkSize: o.chunkSize, question: o.question });
  const layout = bareLayout(full);
  const local = await createLocalHosts(o.model, { backend: o.backend, hosts: 1 });
  try {
    const t = local.query;
    const c = t.config;
    await encodeContext({
      modelIdentity: o.model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts: local.hosts,
      store: openKvBlockStore({ dir: o.cacheDir, maxSizeBytes: DEFAULT_CACHE_MAX_BYTES }),
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
      shift: (kv, start) => shiftBlockKv(t.backend, kv, start, c.headDim, c.rope),
    });
    const answerStarted = performance.now();
    const r = await answerQuery({ transformer: t, tokenizer: o.model.tokenizer }, local.hosts, local.hosts[0], {
      contextLength: layout.contextLength, query: layout.query, maxTokens: o.maxTokens, temperature: 0, attentionShares: false,
    }, () => {});
    return { answer: r.text, ttftMs: answerStarted - started + r.ttftMs, contextTokens: layout.contextLength };
  } finally {
    await local.dispose();
  }
}
