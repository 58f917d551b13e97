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
): Promise<AnswerResult> {
  const { transformer, tokenizer } = runner;
  if (req.query.length === 0) throw new EngineError('the question encodes to no tokens');
  const budget = fitAnswer(transformer.config.contextLength, req.contextLength + req.query.length, req.maxTokens,
    `the repository (${req.contextLength} tokens) and the question (${req.query.length})`);
  const started = performance.now();
  const query = new StarQuery(transformer, { contextLength: req.contextLength, hosts, colocated, capacity: req.query.length + budget.maxTokens });
  const decoder = createStreamDecoder(tokenizer);
  try {
    const c = transformer.config;
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const mass = req.attentionShares ? new AttentionMass(req.pieces && req.pieces.blocks.length > 0 ? splitFromData(req.pieces, shape) : undefined) : undefined;
    // The question in one forward: the attention shares are recorded per forward, over all its rows at once.
    const first = (await prefill({ transformer, cache: query.cache, forward: (ids, logits, sig) => query.forward(ids, logits, sig, mass) }, req.query, {
      chunk: req.query.length, signal,
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
    };
  } finally {
    query.dispose();
  }
}
