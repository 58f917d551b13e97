// A repository as a Star Attention layout: the prompt prefix (system turn + user header) is the
// anchor, the repository's files packed into blocks (src/engine/star/blocks.ts) are the context
// blocks, and the question with the assistant header is the query:
//   [prefix = anchor, block 0] [file block 1] ... [file block n] [question + "Assistant:" = query]
// The prefix does not depend on the question, so blocks' KV is reused across questions.
//
// --anchor-size n: the paper makes the anchor one full block (its content matters, see
// STAR_ATTENTION.md). With n > the prefix's length, leading file blocks are moved into the anchor
// until it holds at least n tokens. The price: editing a file in the anchor re-encodes every
// block (all blocks' keys include the anchor tokens). Default: the prefix alone.
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { packBlocks, type BlockSpan } from '../../engine/star/blocks';
import type { StarLayout } from '../../engine/star/layout';
import type { BlockSpec } from '../../engine/star/types';
import { splitChatPrompt } from '../../engine/tokenizer/chatTemplate';
import { encodeRenderedPrompt } from '../../engine/tokenizer/promptEncoding';
import { walkRepository } from '../repo/walkRepository';

export const SYSTEM_PROMPT = 'You answer questions about a code repository. Its files follow; cite file paths in your answer.';
const BEFORE_CONTEXT = "The repository's files:\n\n";

export interface RepoLayoutOptions {
  readonly repo: string;
  readonly model: LoadedModel;
  readonly chunkSize: number;
  readonly anchorSize?: number;
  /** Without a question the layout has an empty query (indexing only). */
  readonly question?: string;
  readonly signal?: AbortSignal;
}

export interface RepoLayout {
  readonly layout: StarLayout;
  readonly files: number;
  readonly skipped: number;
  /** Per layout block index: the file lines it holds ([] for the prompt prefix). */
  readonly spans: readonly (readonly BlockSpan[])[];
  /** Per layout block index: its tokens per path (to split a block's attention share among its files). */
  readonly fileTokens: readonly ReadonlyMap<string, number>[];
}

export async function buildRepoLayout(o: RepoLayoutOptions): Promise<RepoLayout> {
  const { files, skipped } = await walkRepository([o.repo], { signal: o.signal });
  if (files.length === 0) throw new EngineError('no text files to index (everything was skipped or ignored)', o.repo);
  const tokenizer = o.model.tokenizer;
  const prompt = splitChatPrompt(
    o.model.chatTemplate,
    { system: SYSTEM_PROMPT, beforeContext: BEFORE_CONTEXT, afterContext: o.question !== undefined ? `\n\nQuestion: ${o.question}` : '' },
    { bosToken: tokenizer.bos !== undefined ? tokenizer.tokenText(tokenizer.bos) : '' },
  );
  const prefix = encodeRenderedPrompt(tokenizer, prompt.prefix);
  const packed = packBlocks(files.map((f) => ({ path: f.path, text: f.text })), tokenizer, { chunkSize: o.chunkSize });
  const query = o.question !== undefined ? tokenizer.encode(prompt.suffix, { addBos: false, parseSpecial: true }) : [];

  // Anchor: the prefix, plus leading file blocks while it is shorter than --anchor-size.
  const anchor = [...prefix];
  const anchorSpans: BlockSpan[] = [];
  let next = 0;
  while (o.anchorSize !== undefined && anchor.length < o.anchorSize && next < packed.blocks.length) {
    anchor.push(...packed.blocks[next]!.ids);
    anchorSpans.push(...packed.blocks[next]!.spans);
    next++;
  }
  const blocks: BlockSpec[] = [{ index: 0, tokens: anchor, start: 0 }];
  const spans: BlockSpan[][] = [anchorSpans];
  let position = anchor.length;
  for (const b of packed.blocks.slice(next)) {
    blocks.push({ index: blocks.length, tokens: b.ids, start: position });
    spans.push([...b.spans]);
    position += b.ids.length;
  }
  const fileTokens = spans.map((s, i) => tokensPerPath(s, blocks[i]!.tokens.length - (i === 0 ? prefix.length : 0)));
  return {
    layout: { anchor, blocks, contextLength: position, query },
    files: files.length,
    skipped: skipped.length,
    spans,
    fileTokens,
  };
}

/**
 * A block's tokens split among its files by line count: the packer keeps whole lines per piece,
 * so lines are a close proxy for tokens (headers included), without re-tokenizing every piece.
 */
function tokensPerPath(spans: readonly BlockSpan[], tokens: number): Map<string, number> {
  const out = new Map<string, number>();
  const lines = spans.reduce((s, x) => s + x.endLine - x.startLine + 1, 0);
  for (const s of spans) out.set(s.path, (out.get(s.path) ?? 0) + (tokens * (s.endLine - s.startLine + 1)) / Math.max(1, lines));
  return out;
}
