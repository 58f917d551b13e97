// A repository as a Star Attention layout (src/engine/star/prompt.ts): the anchor is the chat
// prefix plus a repository overview (block 0), the files packed into blocks are the context
// blocks at their global positions, and the question with the assistant header is the query.
// Nothing in the anchor depends on the question, so blocks' KV is reused across questions.
import { EngineError, throwIfAborted } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { packBlocksAsync, type BlockSpan } from '../../engine/star/blocks';
import type { StarLayout } from '../../engine/star/layout';
import type { Tokenizer } from '../../engine/tokenizer';
import { buildQuery, buildStarLayout, keepOverview, overviewLines } from '../../engine/star/prompt';
import { walkRepository } from '../repo/walkRepository';
import { createYieldPoint } from '../../engine/util/yieldPoint';

export interface RepoLayoutOptions {
  readonly repo: string;
  readonly model: LoadedModel;
  readonly chunkSize: number;
  readonly anchorSize?: number;
  /** Without a question the layout has an empty query (indexing only). */
  readonly question?: string;
  /** gitignore-style patterns of files to take (default: all) and to leave out. */
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly signal?: AbortSignal;
  /** Encodes the files (default: the model's tokenizer); a session passes one that remembers (EncodeCache). */
  readonly tokenizer?: Tokenizer;
  /** An earlier index's overview lines: the anchor keeps them while keepOverview says they still stand. */
  readonly earlierOverview?: readonly string[];
}

export interface RepoLayout {
  readonly layout: StarLayout;
  readonly files: number;
  readonly skipped: number;
  /** Skipped files per reason (walk and packing together), e.g. { binary: 2, 'path-too-long': 1 }. */
  readonly skippedByReason: Readonly<Record<string, number>>;
  /** Per layout block index: the file lines it holds, with their token ranges ([] for the anchor). */
  readonly spans: readonly (readonly BlockSpan[])[];
  /** The overview lines the anchor was built from (the earlier ones, where they stood). */
  readonly overviewLines: readonly string[];
}

export async function buildRepoLayout(o: RepoLayoutOptions): Promise<RepoLayout> {
  const { files, skipped } = await walkRepository([o.repo], { signal: o.signal, include: o.include, exclude: o.exclude });
  if (files.length === 0) throw new EngineError('no text files to index (everything was skipped or ignored)', o.repo);
  const tokenizer = o.tokenizer ?? o.model.tokenizer;
  const prompt = { bosToken: tokenizer.bos !== undefined ? tokenizer.tokenText(tokenizer.bos) : undefined };
  // Tokenizing is the long part (seconds for thousands of files) and runs on the caller's thread, the extension
  // host's in the extension: packed between yield points, the event loop gets a turn every few milliseconds.
  const yieldPoint = createYieldPoint();
  const packed = await packBlocksAsync(files, tokenizer, { chunkSize: o.chunkSize }, async () => {
    throwIfAborted(o.signal);
    await yieldPoint();
  });
  const current = overviewLines(files);
  const overview = o.earlierOverview && keepOverview(o.earlierOverview, current) ? o.earlierOverview : current;
  const star = buildStarLayout(files, tokenizer, o.model.chatTemplate, { ...prompt, chunkSize: o.chunkSize, anchorSize: o.anchorSize, packed, overviewLines: overview });
  const query = o.question !== undefined ? buildQuery(o.question, tokenizer, o.model.chatTemplate, prompt) : [];
  if (star.skipped.length === files.length) {
    throw new EngineError(`no file could be packed: every path's header line fills a block of ${o.chunkSize} tokens (raise the chunk size)`, o.repo);
  }
  const spans = star.blocks.map((b) => star.spansOf(b.index));
  const skippedByReason: Record<string, number> = {};
  for (const { reason } of [...skipped, ...star.skipped]) skippedByReason[reason] = (skippedByReason[reason] ?? 0) + 1;
  return {
    layout: { anchor: star.anchor, blocks: star.blocks, contextLength: star.contextLength, query },
    files: files.length - star.skipped.length,
    skipped: skipped.length + star.skipped.length,
    skippedByReason,
    spans,
    overviewLines: overview,
  };
}

/** File blocks whose tokens equal an earlier file block's (they share one cache entry). */
export function duplicateBlocks(repo: RepoLayout): number {
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
