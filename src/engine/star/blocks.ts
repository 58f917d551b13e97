// Packs repository files into Star Attention context blocks of at most `chunkSize` tokens.
//
// What a block holds: one or more "pieces"; a piece is a header line naming the file, then whole lines of it:
//   ==> src/a.ts <==                 (a whole file, or the first piece of a split one)
//   ==> src/a.ts (continued) <==     (later pieces of a file too long for one block)
// (the `head`/`tail` multi-file format: neutral across languages and common in training text). A piece's ids are
// encode(header + its lines), each piece encoded alone (no BOS, special-token text NOT parsed: file content is
// data); a block's ids are its pieces' ids concatenated, so they depend only on the files in it. (A line too long
// for any block is the exception: its parts are encode(header) + a slice of encode(line).)
//
// How files are grouped (the trade-off): blocks are the unit of KV caching, so an edit should change few blocks.
// Plain greedy packing would let one file's growth shift every later file into another block. Instead group
// boundaries are content-defined, like rsync/CDC chunking: after adding a file of n tokens, the group is closed
// when hash(path) < n / boundaryTokens (groups hold about `boundaryTokens` tokens on average), or earlier when
// the next file does not fit. A boundary file closes its group in every layout, so after an edit the packing
// falls back in step with the old one at the first boundary file at or after the edited one: a small edit changes
// only the edited file's block(s); an edit that changes which files fit also changes the few blocks up to that
// boundary. The price is fill: blocks of small files average about half of `chunkSize` (default boundaryTokens =
// chunkSize / 2) rather than nearly full; smaller blocks also make an edit cheaper to re-encode, while larger ones
// are more accurate (the paper). `boundaryTokens: 0` gives one file per group; `Infinity` is plain greedy packing.
// A file longer than a block gets blocks of its own, split at line boundaries chosen the same content-defined way
// (a hash of the last three lines), so an edit near the top does not shift every later piece of a long file. As
// in FastCDC, a piece has no content-defined end before it holds chunkSize / 2 tokens (then mean boundaryTokens / 2
// more), so pieces fill about 3/4 of a block; an edit may then also move the end of the next piece. A single line
// longer than a block is split at token boundaries as a last resort: every part is full (block minus its header),
// so such a line takes the fewest blocks it can, and its spans record which of the line's tokens each part holds
// (parts of a repetitive line can have identical ids; they then share one cache entry, see context.ts). Continuation
// headers carry no line numbers for the same reason (spans keep them). Empty files get no piece (the overview lists
// them). Spans also record each piece's token range in its block (per-file attention shares, attentionMass.ts).
import { EngineError } from '../errors';
import type { Tokenizer } from '../tokenizer/types';

/** What packing needs of a file: its display path (posix) and text. RepoFile fits. */
export interface BlockSource {
  readonly path: string;
  readonly text: string;
}

/** Lines [startLine, endLine] of one file (1-based, inclusive) inside a block: one piece. */
export interface BlockSpan {
  readonly path: string;
  readonly startLine: number;
  readonly endLine: number;
  /** The piece's tokens in the block, [tokenStart, tokenEnd), its header line included (per-file attention shares). */
  readonly tokenStart: number;
  readonly tokenEnd: number;
  /**
   * Only for a part of one line too long for a block: which of that line's own tokens (encode(line + '\n'))
   * the part holds, [start, end). Parts of a repetitive line may have identical ids (and share one cache entry);
   * this keeps their spans distinct.
   */
  readonly lineTokens?: { readonly start: number; readonly end: number };
}

export interface FileBlock {
  /** Position among the file blocks (0-based; the anchor is not a file block). */
  readonly index: number;
  readonly ids: readonly number[];
  readonly spans: readonly BlockSpan[];
}

export interface PackOptions {
  readonly chunkSize: number;
  /** Mean tokens between content-defined group boundaries (default chunkSize / 2; 0: one file per group; Infinity: greedy). */
  readonly boundaryTokens?: number;
}

export interface PackedBlocks {
  readonly blocks: readonly FileBlock[];
  /** Files left out: a path whose header line alone fills a block cannot be packed (the rest still is). */
  readonly skipped: readonly { readonly path: string; readonly reason: 'path-too-long' }[];
  /** Indices (into `blocks`) of the blocks holding any line of `path`, ascending; [] for unknown or empty files. */
  blocksFor(path: string): number[];
}

interface Piece {
  readonly path: string;
  readonly startLine: number;
  readonly endLine: number;
  readonly lineTokens?: { readonly start: number; readonly end: number };
  readonly ids: readonly number[];
}

/** A token sequence rarely covers more characters than this; longer texts are split without trying them whole. */
const MAX_CHARS_PER_TOKEN = 32;
/** Lines hashed together to decide a piece boundary inside a long file. */
const LINE_WINDOW = 3;

export function headerLine(path: string, continued: boolean): string {
  return continued ? `==> ${path} (continued) <==\n` : `==> ${path} <==\n`;
}

export function packBlocks(files: readonly BlockSource[], tokenizer: Tokenizer, opts: PackOptions): PackedBlocks {
  const steps = packSteps(files, tokenizer, opts);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * packBlocks, awaiting `pause` between files: with a yield point (util/yieldPoint.ts) a large repository's
 * tokenization leaves the event loop a turn every few milliseconds (the extension host must stay responsive).
 */
export async function packBlocksAsync(files: readonly BlockSource[], tokenizer: Tokenizer, opts: PackOptions, pause: () => Promise<void>): Promise<PackedBlocks> {
  const steps = packSteps(files, tokenizer, opts);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await pause();
  }
}

/** packBlocks as steps: one per file. */
function* packSteps(files: readonly BlockSource[], tokenizer: Tokenizer, opts: PackOptions): Generator<void, PackedBlocks> {
  const chunkSize = opts.chunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new EngineError(`chunk size must be a positive integer (got ${chunkSize})`);
  const boundaryTokens = opts.boundaryTokens ?? chunkSize / 2;
  const encode = (text: string) => tokenizer.encode(text, { addBos: false, parseSpecial: false });

  const blocks: FileBlock[] = [];
  const byPath = new Map<string, number[]>();
  const skipped: { path: string; reason: 'path-too-long' }[] = [];
  let group: Piece[] = [];
  let groupTokens = 0;
  const emit = (pieces: Piece[]) => {
    if (!pieces.length) return;
    const index = blocks.length;
    const ids: number[] = [];
    const spans: BlockSpan[] = [];
    for (const { ids: pieceIds, ...span } of pieces) {
      spans.push({ ...span, tokenStart: ids.length, tokenEnd: ids.length + pieceIds.length });
      for (const id of pieceIds) ids.push(id);
      const list = byPath.get(span.path) ?? [];
      if (list[list.length - 1] !== index) list.push(index);
      byPath.set(span.path, list);
    }
    blocks.push({ index, ids, spans });
  };
  const closeGroup = () => {
    emit(group);
    group = [];
    groupTokens = 0;
  };

  for (const file of files) {
    yield;
    const pieces = filePieces(file, encode, chunkSize, boundaryTokens / 2);
    if (pieces === 'path-too-long') {
      skipped.push({ path: file.path, reason: pieces });
      continue;
    }
    if (pieces.length === 0) continue;
    if (pieces.length > 1) {
      // A split file never shares a block: its pieces depend on it alone.
      closeGroup();
      for (const p of pieces) emit([p]);
      continue;
    }
    const piece = pieces[0]!;
    if (groupTokens + piece.ids.length > chunkSize) closeGroup();
    group.push(piece);
    groupTokens += piece.ids.length;
    if (isBoundary(file.path, piece.ids.length, boundaryTokens)) closeGroup();
  }
  closeGroup();
  return { blocks, skipped, blocksFor: (path) => [...(byPath.get(path) ?? [])] };
}

/** Lines of a text: '\n' separated, CRLF read as LF, a final newline does not start another line. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The file's pieces, or 'path-too-long' when its header line leaves no room for its text in a block. */
function filePieces(file: BlockSource, encode: (t: string) => number[], chunkSize: number, lineBoundaryTokens: number): Piece[] | 'path-too-long' {
  const minPieceTokens = chunkSize / 2;
  const lines = splitLines(file.text);
  if (lines.length === 0) return [];
  const body = (from: number, to: number) => lines.slice(from, to).join('\n') + '\n';
  // Header and lines are encoded as one text: separate calls would give SentencePiece tokenizers a spurious
  // leading space (their dummy prefix) at the start of every file's first line.
  const headerIds = [encode(headerLine(file.path, false)), encode(headerLine(file.path, true))] as const;
  if (file.text.length <= chunkSize * MAX_CHARS_PER_TOKEN) {
    const ids = encode(headerLine(file.path, false) + body(0, lines.length));
    if (ids.length <= chunkSize) return [{ path: file.path, startLine: 1, endLine: lines.length, ids }];
  }
  // Too long for one block: pieces of whole lines, boundaries chosen by content.
  if (headerIds.some((h) => h.length >= chunkSize)) return 'path-too-long';
  const lineTokens = lines.map((l) => encode(l + '\n').length); // estimates: a line's cost inside a piece differs slightly
  const pieces: Piece[] = [];
  let i = 0;
  while (i < lines.length) {
    const header = headerIds[i > 0 ? 1 : 0];
    const headerText = headerLine(file.path, i > 0);
    let j = i;
    let sum = header.length;
    while (j < lines.length && sum + lineTokens[j]! <= chunkSize) {
      sum += lineTokens[j]!;
      j++;
      if (sum >= minPieceTokens && isLineBoundary(lines, j - 1, lineTokens[j - 1]!, lineBoundaryTokens)) break;
    }
    let ids = j > i ? encode(headerText + body(i, j)) : [];
    while (ids.length > chunkSize && j > i + 1) ids = encode(headerText + body(i, --j)); // the estimate was short
    if (j === i || ids.length > chunkSize) {
      // One line longer than a block: cut its tokens, each part under its own header.
      const lineIds = encode(lines[i]! + '\n');
      for (let at = 0; at < lineIds.length; ) {
        const h = headerIds[at === 0 && i === 0 ? 0 : 1];
        const part = lineIds.slice(at, at + chunkSize - h.length);
        pieces.push({ path: file.path, startLine: i + 1, endLine: i + 1, lineTokens: { start: at, end: at + part.length }, ids: [...h, ...part] });
        at += part.length;
      }
      i++;
      continue;
    }
    pieces.push({ path: file.path, startLine: i + 1, endLine: j, ids });
    i = j;
  }
  return pieces;
}

/** Content-defined group boundary after a file: probability tokens / boundaryTokens, decided by its path alone. */
function isBoundary(path: string, tokens: number, boundaryTokens: number): boolean {
  if (boundaryTokens <= 0) return true;
  return fnv1a(path) / 2 ** 32 < tokens / boundaryTokens;
}

function isLineBoundary(lines: readonly string[], at: number, tokens: number, boundaryTokens: number): boolean {
  if (boundaryTokens <= 0) return false;
  const window = lines.slice(Math.max(0, at - LINE_WINDOW + 1), at + 1).join('\n');
  return fnv1a(window) / 2 ** 32 < tokens / boundaryTokens;
}

/** 32-bit FNV-1a over UTF-16 code units: tiny, deterministic everywhere; not for security. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
