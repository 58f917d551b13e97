// The whole Star Attention prompt for a repository: anchor, file blocks, query, with global position ids.
//
//   anchor  = chat prefix (system turn + user header + intro line, via the model's chat template)
//             + a repository overview (directory outline + README head), at most `anchorSize` tokens
//   blocks  = the files packed by packBlocks (blocks.ts)
//   query   = the question + end of the user turn + the assistant header (buildQuery)
//
// Positions: the anchor holds 0..a-1 (a = anchor.length); file block i starts right after the previous one,
// at a + (tokens of blocks before it); the query continues at contextLength. In the engine's BlockSpec list
// the anchor is block 0 and file block i is block i + 1.
//
// Why this anchor: the paper's ablation shows the anchor's content matters a lot (constant tokens: 0% NIAH),
// and every block's KV is computed after it, so its tokens are part of every block's cache key. The overview is
// built to change rarely: directories only down to depth 2 (not every file), and the README's head. Adding or
// editing an ordinary file therefore leaves the anchor, and all other cached blocks, valid. The anchor is not
// padded to anchorSize: filler content would only hurt (see the ablation) and cost compute; when the prefix
// and overview are shorter, the anchor is shorter. A chat prefix longer than anchorSize is kept whole.
import { EngineError } from '../errors';
import { splitChatPrompt } from '../tokenizer/chatTemplate';
import { encodeRenderedPrompt } from '../tokenizer/promptEncoding';
import type { Tokenizer } from '../tokenizer/types';
import { packBlocks, type BlockSource, type BlockSpan, type FileBlock, type PackedBlocks } from './blocks';
import type { BlockSpec } from './types';

// Measured on SmolLM2-135M-Instruct (`bench qa`'s ten questions, global prompt through llama.cpp): this text and two
// rewordings (an "answer from the code only, in one short sentence: the value, name or file" instruction; a
// "precise assistant ... exact name, value or file path" one, each with a "==> path <==" intro) all score 6/10; the
// misses are the model's (which file, which base class, the license), not the wording. Kept: it is the shortest.
// Also tried since (bench qa, global prompt / star-512): an "Answer from the files above with the exact name, value
// or file path." line between the files and the question, 5/10 / 6/10 (this text: 6/10 / 6/10); that line with the
// chat template's own system text instead of this one, 3 of the first 7 (this text: 4 of the same 7).
export const DEFAULT_SYSTEM_PROMPT = 'You answer questions about a code repository. Its files follow; cite file paths in your answer.';
export const DEFAULT_INTRO = "The repository's files:\n\n";
/** Marks where the question goes when rendering the query, so the question is encoded as plain text. */
const QUESTION_PLACEHOLDER = '\u27e6star-attention:question\u27e7';
const OUTLINE_DEPTH = 2;
/** More README than this never fits an anchor; bounds the work of fitting it. */
const README_HEAD_LINES = 200;
const README = /^readme(\.(md|markdown|rst|txt))?$/i;

export interface StarPromptOptions {
  readonly system?: string;
  /** Text of the user turn before the files. */
  readonly intro?: string;
  readonly bosToken?: string;
}

export interface StarLayoutOptions extends StarPromptOptions {
  readonly chunkSize: number;
  /** Most tokens in the anchor (default chunkSize). */
  readonly anchorSize?: number;
  /** See PackOptions.boundaryTokens. */
  readonly boundaryTokens?: number;
  /** The files already packed with this chunkSize and boundaryTokens (packBlocksAsync); packed here when absent. */
  readonly packed?: PackedBlocks;
  /** The overview's lines (overviewLines), when the caller keeps an earlier one (keepOverview); else these files'. */
  readonly overviewLines?: readonly string[];
}

export interface StarRepoLayout {
  readonly anchor: number[];
  /** Anchor (index 0, start 0) then every file block at its global start. */
  readonly blocks: BlockSpec[];
  readonly fileBlocks: readonly FileBlock[];
  /** Files not packed, with the reason (see PackedBlocks.skipped). */
  readonly skipped: PackedBlocks['skipped'];
  /** Total context tokens: the query's first position. */
  readonly contextLength: number;
  /** The overview text inside the anchor (after the chat prefix), for display. */
  readonly overview: string;
  /** Global positions [start, start + length) of a block by its BlockSpec index (0 = anchor). */
  positionsOf(index: number): { start: number; length: number };
  /** BlockSpec indices (>= 1) of the blocks holding lines of `path`. */
  blocksFor(path: string): number[];
  /** File lines held by a block, by BlockSpec index ([] for the anchor). */
  spansOf(index: number): readonly BlockSpan[];
}

/** Files must be in their final order (walkRepository's) and paths unique (prefix roots when there are several). */
export function buildStarLayout(files: readonly BlockSource[], tokenizer: Tokenizer, chatTemplate: string | undefined, opts: StarLayoutOptions): StarRepoLayout {
  const anchorSize = opts.anchorSize ?? opts.chunkSize;
  if (!Number.isInteger(anchorSize) || anchorSize < 1) throw new EngineError(`anchor size must be a positive integer (got ${anchorSize})`);
  const { prefix } = splitChatPrompt(chatTemplate, promptParts(opts, ''), { bosToken: opts.bosToken });
  const prefixIds = encodeRenderedPrompt(tokenizer, prefix);
  const { ids: overviewIds, text: overview } = fitOverview(opts.overviewLines ?? overviewLines(files), tokenizer, Math.max(0, anchorSize - prefixIds.length));
  const anchor = [...prefixIds, ...overviewIds];

  const packed = opts.packed ?? packBlocks(files, tokenizer, { chunkSize: opts.chunkSize, boundaryTokens: opts.boundaryTokens });
  const blocks: BlockSpec[] = [{ index: 0, tokens: anchor, start: 0 }];
  let position = anchor.length;
  for (const b of packed.blocks) {
    blocks.push({ index: blocks.length, tokens: b.ids, start: position });
    position += b.ids.length;
  }
  const spec = (index: number) => {
    const b = blocks[index];
    if (!b) throw new EngineError(`no block ${index} (the layout has ${blocks.length})`);
    return b;
  };
  return {
    anchor,
    blocks,
    fileBlocks: packed.blocks,
    skipped: packed.skipped,
    contextLength: position,
    overview,
    positionsOf: (index) => ({ start: spec(index).start, length: spec(index).tokens.length }),
    blocksFor: (path) => packed.blocksFor(path).map((i) => i + 1),
    spansOf: (index) => (spec(index) && index > 0 ? packed.blocks[index - 1]!.spans : []),
  };
}

/**
 * A question led by a fixed part known before it is typed (Ask About Selection: which code it is about): the
 * query is the two encoded apart and joined, so the lead's ids are the query's first ids whether or not they
 * were prefilled ahead of the question (RepoSession.prepare). `question` carries its own leading space where one
 * belongs (a BPE tokenizer then sees " What", as it would in one text).
 */
export interface LedQuestion {
  readonly lead: string;
  readonly question: string;
}

/** The question as one text: the lead, then the question. */
export function questionText(q: string | LedQuestion): string {
  return typeof q === 'string' ? q : q.lead + q.question;
}

/**
 * The query: the question, the end of the user turn and the assistant header, rendered by the same chat template
 * (so anchor prefix + context + query is exactly the chat rendered with the files in the user message).
 * Encoded as one text, as a tokenizer would see the whole prompt; only when the question itself contains
 * special-token text (e.g. "<|im_end|>") is it encoded apart as plain text, so it cannot end the turn early.
 * A LedQuestion is encoded in two parts, the template's text before it with the lead, and the rest (queryLead).
 */
export function buildQuery(question: string | LedQuestion, tokenizer: Tokenizer, chatTemplate: string | undefined, opts: StarPromptOptions = {}): number[] {
  const { before, after } = querySides(questionText(question), chatTemplate, opts);
  if (typeof question !== 'string') return [...queryLead(question.lead, tokenizer, chatTemplate, opts), ...encodeTurn('', question.question, after, tokenizer)];
  return encodeTurn(before, question, after, tokenizer);
}

/** The first ids of every query whose question has this lead (buildQuery of a LedQuestion). */
export function queryLead(lead: string, tokenizer: Tokenizer, chatTemplate: string | undefined, opts: StarPromptOptions = {}): number[] {
  return encodeTurn(querySides(lead, chatTemplate, opts).before, lead, '', tokenizer);
}

/** The template's text before and after the question. */
function querySides(question: string, chatTemplate: string | undefined, opts: StarPromptOptions): { before: string; after: string } {
  if (question.includes(QUESTION_PLACEHOLDER)) throw new EngineError('the question contains the internal question marker');
  const { suffix } = splitChatPrompt(chatTemplate, promptParts(opts, QUESTION_PLACEHOLDER), { bosToken: opts.bosToken });
  const at = suffix.indexOf(QUESTION_PLACEHOLDER);
  if (at < 0) throw new EngineError('the chat template dropped the question', 'tokenizer.chat_template');
  return { before: suffix.slice(0, at), after: suffix.slice(at + QUESTION_PLACEHOLDER.length) };
}

/** Template text, the user's text, template text: one encoding, the user's apart only if it holds special-token text. */
function encodeTurn(before: string, text: string, after: string, tokenizer: Tokenizer): number[] {
  const special = (t: string) => (t ? tokenizer.encode(t, { addBos: false, parseSpecial: true }) : []);
  if (!special(text).some((id) => tokenizer.isSpecial(id))) return special(before + text + after);
  return [...special(before), ...tokenizer.encode(text, { addBos: false, parseSpecial: false }), ...special(after)];
}

function promptParts(opts: StarPromptOptions, question: string) {
  return { system: opts.system ?? DEFAULT_SYSTEM_PROMPT, beforeContext: opts.intro ?? DEFAULT_INTRO, afterContext: `\n\nQuestion: ${question}` };
}

/**
 * The longest prefix of the overview's lines (overviewLines) that fits `budget` tokens (found by bisection), cut
 * inside a line only if not one fits.
 */
export function fitOverview(lines: readonly string[], tokenizer: Tokenizer, budget: number): { ids: number[]; text: string } {
  if (budget <= 0 || lines.length === 0) return { ids: [], text: '' };
  const encode = (text: string) => tokenizer.encode(text, { addBos: false, parseSpecial: false });
  const textOf = (n: number) => lines.slice(0, n).map((l) => l + '\n').join('');
  const all = encode(textOf(lines.length));
  if (all.length <= budget) return { ids: all, text: textOf(lines.length) };
  let lo = 0; // lines that fit
  let hi = lines.length; // lines that do not
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (encode(textOf(mid)).length <= budget) lo = mid;
    else hi = mid;
  }
  if (lo > 0) return { ids: encode(textOf(lo)), text: textOf(lo) };
  return { ids: encode(textOf(1)).slice(0, budget), text: lines[0]! };
}

/** Overview lines: the outline (top-level files, directories to depth 2), then the root README's head. */
export function overviewLines(files: readonly BlockSource[]): string[] {
  const dirs = new Set<string>();
  const topFiles: string[] = [];
  for (const f of files) {
    const parts = f.path.split('/');
    if (parts.length === 1) topFiles.push(f.path);
    for (let d = 1; d < parts.length && d <= OUTLINE_DEPTH; d++) dirs.add(parts.slice(0, d).join('/') + '/');
  }
  const outline = [...dirs, ...topFiles].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = ['Repository outline (top-level files, directories to depth 2):', ...outline.map((p) => `  ${p}`)];
  const readme = files.find((f) => !f.path.includes('/') && README.test(f.path));
  if (readme) lines.push('', `Start of ${readme.path}:`, ...readme.text.replace(/\r\n/g, '\n').split('\n').slice(0, README_HEAD_LINES));
  return lines;
}

/** Most of an outline that may change (entries added or gone, of both outlines together) before it is rebuilt. */
const OUTLINE_DRIFT = 0.25;

/**
 * Whether an earlier overview still stands for the repository whose overview is now `current`. The overview is in
 * the anchor, which every block's KV is encoded after: a new one re-encodes the whole repository (hours beyond a
 * model's context on a CPU), so a new directory or an edited README head must not bring one about. The earlier
 * one stands while at most a quarter of the outline's entries (top-level files, directories to depth 2) changed;
 * the README head is kept as it was.
 */
export function keepOverview(earlier: readonly string[], current: readonly string[]): boolean {
  const outline = (lines: readonly string[]) => {
    const entries = new Set<string>();
    for (const line of lines.slice(1)) {
      if (!line.startsWith('  ')) break;
      entries.add(line.slice(2));
    }
    return entries;
  };
  if (earlier[0] !== current[0]) return false; // another outline format
  const a = outline(earlier), b = outline(current);
  let changed = 0;
  for (const e of a) if (!b.has(e)) changed++;
  for (const e of b) if (!a.has(e)) changed++;
  const union = a.size + b.size - (a.size + b.size - changed) / 2;
  return changed <= OUTLINE_DRIFT * union;
}
