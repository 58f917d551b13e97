import { EngineError } from '../errors';
import { fitAnswer } from '../runtime/answerBudget';
import { collectDecode, decode, prefill } from '../runtime/decode';
import type { Transformer } from '../runtime/transformer';
import { createStreamDecoder } from '../tokenizer/streamDecoder';
import type { Tokenizer } from '../tokenizer/types';
import type { StarHost } from './host';
import { splitFromData, type PieceKeysData } from './pieceKeys';
import { StarQuery, type ColocatedHost } from './query';
import { AttentionMass } from './attentionMass';

/*
 * Star Attention phase 2 as one platform-free call: prefill the question over every host's blocks, decode,
 * stream the tokens, and report the attention shares. The CLI's in-process hosts, the Node worker-thread query
 * host and the webview's query worker all run this very function (hostRuntime.ts, hostPool.ts).
 */

export interface AnswerRequest {
  /** n: the query starts at position n (anchor + every block). */
  readonly contextLength: number;
  /** The question's token ids (chat-formatted, ending with the assistant header). */
  readonly query: readonly number[];
  readonly maxTokens: number;
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Compute attention shares (per block, and per piece of the multi-file blocks in `pieces`). */
  readonly attentionShares: boolean;
  /** Kept keys of multi-file blocks, for their exact split into files (PieceKeys.data). */
  readonly pieces?: PieceKeysData;
  /**
   * The query's first ids were prefilled by the last prefillQuery over this very context (the caller knows the
   * hosts' blocks did not change since): they are not run again. A prefix that is not the query's start, or leaves
   * too little room, is dropped and the whole query runs.
   */
  readonly prefilled?: boolean;
}

/** The start of a question, run through phase 2 before the rest of it is known (AnswerRequest.prefilled). */
export interface PrefixRequest {
  readonly contextLength: number;
  readonly ids: readonly number[];
  /** Tokens it leaves room for after the prefix: the rest of the question and the answer. */
  readonly room: number;
  readonly attentionShares: boolean;
  readonly pieces?: PieceKeysData;
}

/** A prefilled query prefix: the query's KV so far and the attention shares its rows recorded. */
export class HeldPrefix {
  constructor(readonly request: PrefixRequest, readonly query: StarQuery, readonly mass: AttentionMass | undefined) {}

  /** Whether `req`'s query starts with this prefix, over the same context, with room for the rest and the answer. */
  fits(req: AnswerRequest, maxTokens: number): boolean {
    const p = this.request;
    return req.contextLength === p.contextLength && req.attentionShares === p.attentionShares && req.query.length > p.ids.length
      && p.ids.every((id, i) => req.query[i] === id) && req.query.length + maxTokens <= this.query.cache.capacity;
  }

  dispose(): void {
    this.query.dispose();
  }
}

export interface AnswerResult {
  readonly ids: number[];
  /** tokenizer.decode(ids), special tokens left out: the streamed chunks joined. */
  readonly text: string;
  /** 'context': stopped at the model's context length (maxTokens was capped to fit it, see `capped`). */
  readonly finish: 'stop' | 'length' | 'context';
  /** The maxTokens actually allowed when the request's did not fit the model's context; undefined otherwise. */
  readonly capped?: number;
  readonly ttftMs: number;
  readonly decodeTokensPerSec: number;
  /** Block index -> its share of the question's attention to the context (block 0 = the anchor); [] without attentionShares. */
  readonly blockShares: [number, number][];
  /** Block index -> per-piece shares (exact split) for the blocks in `pieces`. */
  readonly pieceShares: [number, number[]][];
  /** The query's first ids that a prefilled prefix held (AnswerRequest.prefilled): 0 when the whole query ran. */
  readonly prefilledTokens: number;
}

/** The query host's own parts: its transformer (phase 2 runs on its backend) and the model's tokenizer. */
export interface QueryRunner {
  readonly transformer: Transformer;
  readonly tokenizer: Tokenizer;
}

/**
 * Answers `req` over `hosts` (which hold every context block; `colocated`, when given, shares the runner's
 * transformer and is attended inside its forward). `onToken` gets each generated id with the text it completes
 * ('' while a character is unfinished). maxTokens is fitted to the model's context (fitAnswer): a context and
 * query that leave no room at all are an EngineError.
 */
export async function answerQuery(
  runner: QueryRunner,
  hosts: readonly StarHost[],
  colocated: ColocatedHost | undefined,
  req: AnswerRequest,
  onToken: (id: number, text: string) => void,
  signal?: AbortSignal,
  held?: HeldPrefix,
): Promise<AnswerResult> {
  const { transformer, tokenizer } = runner;
  if (req.query.length === 0) {
    held?.dispose();
    throw new EngineError('the question encodes to no tokens');
  }
  let budget: ReturnType<typeof fitAnswer>;
  try {
    budget = fitAnswer(transformer.config.contextLength, req.contextLength + req.query.length, req.maxTokens,
      `the repository (${req.contextLength} tokens) and the question (${req.query.length})`);
  } catch (err) {
    held?.dispose();
    throw err;
  }
  const started = performance.now();
  const prefix = req.prefilled && held?.fits(req, budget.maxTokens) ? held : undefined;
  if (held && !prefix) held.dispose();
  const query = prefix?.query ?? new StarQuery(transformer, { contextLength: req.contextLength, hosts, colocated, capacity: req.query.length + budget.maxTokens });
  const decoder = createStreamDecoder(tokenizer);
  try {
    const mass = prefix ? prefix.mass : newMass(transformer, req.attentionShares, req.pieces);
    // The question in one forward (after its prefilled prefix): the attention shares are recorded per forward,
    // over all its rows at once (a mean over rows: the same whether the rows ran in one forward or two).
    const rest = req.query.slice(prefix?.request.ids.length ?? 0);
    const first = (await prefill({ transformer, cache: query.cache, forward: (ids, logits, sig) => query.forward(ids, logits, sig, mass) }, rest, {
      chunk: rest.length, signal,
    }))!;
    const tokens = decode(query, first, { maxTokens: budget.maxTokens, temperature: req.temperature, topP: req.topP, seed: req.seed, stopIds: tokenizer.eos, signal });
    const result = await collectDecode(tokens, started, (id) => onToken(id, decoder.push(id)));
    const capped = budget.requested !== undefined ? budget.maxTokens : undefined;
    return {
      ids: result.ids,
      text: tokenizer.decode(result.ids, { skipSpecial: true }),
      finish: result.finish === 'length' && capped !== undefined && result.ids.length >= budget.maxTokens ? 'context' : result.finish,
      capped,
      ttftMs: result.ttftMs,
      decodeTokensPerSec: result.decodeTokensPerSec,
      blockShares: mass ? [...mass.shares()] : [],
      pieceShares: mass ? [...mass.pieceShares()] : [],
      prefilledTokens: prefix?.request.ids.length ?? 0,
    };
  } finally {
    query.dispose();
  }
}

/**
 * Runs `req.ids`, the start of a question not yet complete, through phase 2 over `hosts`' blocks: the rest of the
 * question then runs alone (answerQuery with `prefilled` and the returned prefix, which it consumes).
 */
export async function prefillQuery(
  runner: QueryRunner,
  hosts: readonly StarHost[],
  colocated: ColocatedHost | undefined,
  req: PrefixRequest,
  signal?: AbortSignal,
): Promise<HeldPrefix> {
  const { transformer } = runner;
  if (req.ids.length === 0) throw new EngineError('an empty query prefix');
  const capacity = Math.min(req.ids.length + req.room, transformer.config.contextLength - req.contextLength);
  if (capacity <= req.ids.length) throw new EngineError(`the query prefix (${req.ids.length} tokens) leaves no room in the model's context after the repository (${req.contextLength})`);
  const query = new StarQuery(transformer, { contextLength: req.contextLength, hosts, colocated, capacity });
  try {
    const mass = newMass(transformer, req.attentionShares, req.pieces);
    await prefill({ transformer, cache: query.cache, forward: (ids, logits, sig) => query.forward(ids, logits, sig, mass) }, req.ids, {
      chunk: req.ids.length, logits: 'none', signal,
    });
    return new HeldPrefix(req, query, mass);
  } catch (err) {
    query.dispose();
    throw err;
  }
}

function newMass(transformer: Transformer, attentionShares: boolean, pieces: PieceKeysData | undefined): AttentionMass | undefined {
  if (!attentionShares) return undefined;
  const c = transformer.config;
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  return new AttentionMass(pieces && pieces.blocks.length > 0 ? splitFromData(pieces, shape) : undefined);
}
