// Star Attention over a repository for one command (the CLI's index and ask): a host pool for the run (in this
// thread, or every host in a worker thread with hostThreads), a RepoSession over it, then the pool is disposed.
// With mode 'global', ask runs one ordinary causal prefill of exactly the same token sequence as the baseline.
import type { KvDtypeSetting } from '../../engine/runtime/kvBytes';
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { fitAnswer } from '../../engine/runtime/answerBudget';
import { collectDecode } from '../../engine/runtime/decode';
import { generate } from '../../engine/runtime/generate';
import { createStreamDecoder } from '../../engine/tokenizer/streamDecoder';
import type { BackendKind } from '../createBackend';
import { createInProcessHostPool, createThreadHostPool, type HostPool } from './hostPool';
import { createLocalHosts } from './localHosts';
import { buildRepoLayout } from './repoLayout';
import { duplicateBlocks, RepoSession, type AskResult, type IndexProgress, type IndexStats, type RepositorySize } from './repoSession';
import type { SelectionMode } from '../../engine/star/selection/blockSelection';

export { DEFAULT_CACHE_MAX_BYTES, type AskResult, type IndexStats, type RepositorySize } from './repoSession';

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
  /** Storage type of new disk cache entries: 'auto' (default, kvDtypeFor), 'f16', 'q8' or 'f32'. */
  readonly cacheDtype?: KvDtypeSetting;
  readonly memoryBudgetBytes?: number;
  /**
   * Every host in its own worker thread (createThreadHostPool), each opening the model from `modelPath` itself:
   * on the CPU the hosts then encode and attend on separate cores. Default: every host in this thread.
   */
  readonly hostThreads?: { readonly modelPath: string; readonly workerScript?: string };
  readonly signal?: AbortSignal;
  readonly onWarning?: (message: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
  /** The repository's size against the model's context, before anything is encoded. */
  readonly onSized?: (size: RepositorySize) => void;
}

/** Phase 1 only: brings the disk cache up to date for the repository. */
export async function indexRepository(o: StarRepoOptions): Promise<IndexStats> {
  return withSession(o, (session) => session.index({ signal: o.signal, onProgress: progress(o), onSized: o.onSized }));
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
  /** How blocks are ranked when the repository does not fit the context (default 'auto'). */
  readonly selection?: SelectionMode;
}

export async function askRepository(o: AskOptions): Promise<AskResult> {
  if ((o.mode ?? 'star') === 'global') return askGlobal(o);
  return withSession(o, (session) => session.ask(o.question, {
    maxTokens: o.maxTokens ?? 128, temperature: o.temperature ?? 0, topP: o.topP, seed: o.seed,
    signal: o.signal, onText: o.onText, onProgress: progress(o), selection: o.selection, onSized: o.onSized,
  }));
}

async function withSession<T>(o: StarRepoOptions & { pieceKeysBudgetBytes?: number }, body: (s: RepoSession) => Promise<T>): Promise<T> {
  const pool: HostPool = o.hostThreads
    ? await createThreadHostPool({ ...o.hostThreads, backend: o.backend, hosts: o.hosts, memoryBudgetBytes: o.memoryBudgetBytes })
    : await createInProcessHostPool(o.model, { backend: o.backend, hosts: o.hosts, memoryBudgetBytes: o.memoryBudgetBytes });
  try {
    return await body(new RepoSession({
      repo: o.repo, model: o.model, pool, chunkSize: o.chunkSize, anchorSize: o.anchorSize, cacheDir: o.cacheDir, keepPieces: true,
      cacheMaxBytes: o.cacheMaxBytes, cacheDtype: o.cacheDtype, onWarning: o.onWarning, pieceKeysBudgetBytes: o.pieceKeysBudgetBytes,
    }));
  } finally {
    await pool.dispose();
  }
}

function progress(o: StarRepoOptions): ((p: IndexProgress) => void) | undefined {
  return o.onProgress ? (p) => o.onProgress!(p.done, p.total) : undefined;
}

/** The baseline: the same tokens (anchor, blocks, question) as one causal prefill on one in-process host, then decoding. */
async function askGlobal(o: AskOptions): Promise<AskResult> {
  const repo = await buildRepoLayout({ repo: o.repo, model: o.model, chunkSize: o.chunkSize, anchorSize: o.anchorSize, question: o.question, signal: o.signal });
  const { layout } = repo;
  if (layout.query.length === 0) throw new EngineError('the question encodes to no tokens');
  const { maxTokens } = fitAnswer(o.model.config.contextLength, layout.contextLength + layout.query.length, o.maxTokens ?? 128,
    `the repository (${layout.contextLength} tokens) and the question (${layout.query.length})`);
  const local = await createLocalHosts(o.model, { backend: o.backend, hosts: 1, memoryBudgetBytes: o.memoryBudgetBytes });
  const decoder = createStreamDecoder(o.model.tokenizer);
  try {
    const started = performance.now();
    const prompt = [...layout.blocks.flatMap((b) => b.tokens), ...layout.query];
    const tokens = generate(local.query, prompt, {
      maxTokens, temperature: o.temperature ?? 0, topP: o.topP, seed: o.seed, stopIds: o.model.tokenizer.eos, signal: o.signal,
    });
    const result = await collectDecode(tokens, started, o.onText ? (id) => { const t = decoder.push(id); if (t) o.onText!(t); } : undefined);
    const tail = decoder.flush();
    if (tail) o.onText?.(tail);
    return {
      question: o.question,
      answer: o.model.tokenizer.decode(result.ids, { skipSpecial: true }),
      ids: result.ids,
      sources: [],
      stats: {
        mode: 'global', files: repo.files, blocks: layout.blocks.length, blocksEncoded: 0, blocksReused: 0, blocksShifted: 0,
        entriesRewritten: 0, blocksDuplicate: duplicateBlocks(repo), blocksHeld: 0, encodedPaths: [], contextTokens: layout.contextLength,
        queryTokens: layout.query.length, prefilledTokens: 0, encodeMs: 0, ttftMs: result.ttftMs, decodeTokensPerSec: result.decodeTokensPerSec,
        finish: result.finish, anchorShare: 0,
        size: {
          repositoryTokens: layout.contextLength, anchorTokens: layout.anchor.length, blocks: layout.blocks.length,
          modelContext: o.model.config.contextLength, positions: 'global',
        },
        selection: {
          ranking: 'all', blocks: layout.blocks.length - 1, of: layout.blocks.length - 1, attended: layout.blocks.slice(1).map((b) => b.index),
          tokens: layout.contextLength - layout.anchor.length, totalTokens: layout.contextLength - layout.anchor.length, encodedOnDemand: 0,
        },
      },
    };
  } finally {
    await local.dispose();
  }
}
