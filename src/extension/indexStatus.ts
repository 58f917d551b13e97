// The index part of the status (chat panel, status bar) from one index run's events. Two things are kept across
// runs on purpose: the repository's size (shown against the model's context until the next index says its own) and
// the last run that encoded anything (which files), so that the no-op index before a question does not hide that
// an edit was picked up. Plain data, no vscode.
import type { ErrorAction, StatusView } from '../protocol/chatMessages';

type IndexView = NonNullable<StatusView['index']>;

/** An index starts: the size of the last one stays shown until this one's estimate replaces it. */
export function indexingStatus(prev: IndexView | undefined): IndexView {
  return { ...keep(prev), state: 'indexing', done: 0 };
}

/** The repository is packed, nothing encoded yet: its exact size (RepoSession's onSized). */
export function sizedStatus(prev: IndexView | undefined, contextTokens: number): IndexView {
  return { ...keep(prev), state: 'indexing', done: prev?.done ?? 0, contextTokens };
}

/** Progress: blocks done of total (the size said by sizedStatus stays). */
export function progressStatus(prev: IndexView | undefined, p: { done: number; total: number; tokensPerSec: number }): IndexView {
  return { ...keep(prev), state: 'indexing', done: p.done, total: p.total, tokensPerSec: p.tokensPerSec };
}

export interface IndexRunStats {
  readonly files: number;
  readonly blocks: number;
  readonly blocksEncoded: number;
  readonly blocksReused: number;
  readonly blocksShifted: number;
  readonly contextTokens: number;
  readonly encodedPaths: readonly string[];
}

/** The index ended: its counts and exact size; it becomes the last change only if it encoded something. */
export function readyStatus(prev: IndexView | undefined, s: IndexRunStats, at: Date): IndexView {
  const lastChange = s.blocksEncoded > 0 ? { paths: [...s.encodedPaths], blocks: s.blocksEncoded, at: at.toISOString() } : prev?.lastChange;
  return {
    state: 'ready', files: s.files, blocks: s.blocks, encoded: s.blocksEncoded, reused: s.blocksReused, shifted: s.blocksShifted,
    contextTokens: s.contextTokens, ...(lastChange ? { lastChange } : {}),
  };
}

export function failedStatus(prev: IndexView | undefined, error: string, actions: readonly ErrorAction[]): IndexView {
  return { ...keep(prev), state: 'failed', error, actions };
}

export function cancelledStatus(prev: IndexView | undefined): IndexView {
  return { ...keep(prev), state: 'cancelled' };
}

/** What an index run carries over from the previous one. */
function keep(prev: IndexView | undefined): Partial<IndexView> {
  if (!prev) return {};
  const { contextTokens, lastChange, files, blocks } = prev;
  return { contextTokens, lastChange, files, blocks };
}
