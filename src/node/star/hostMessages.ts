// Messages between a ThreadStarHost (main thread) and its worker (hostWorker.ts). Each request
// carries an id that its reply echoes; errors cross as {name, message, file} (engineMessages.ts).
import type { BackendKind } from '../createBackend';
import type { SerializedError } from '../../protocol/engineMessages';
import type { BlockKv, BlockSpec } from '../../engine/star/types';

/** What the worker is started with (workerData); it answers id 0 with 'ready' or 'error'. */
export interface HostWorkerInit {
  readonly modelPath: string;
  readonly backend: BackendKind;
  readonly name: string;
  readonly memoryBudgetBytes?: number;
  readonly maxBatchRows?: number;
}

export type HostRequest =
  | { kind: 'encode'; id: number; anchor: readonly number[]; blocks: readonly BlockSpec[] }
  | { kind: 'load'; id: number; blocks: readonly BlockKv[] }
  | { kind: 'blockIndices'; id: number }
  | { kind: 'attend'; id: number; layer: number; q: Float32Array; rows: number; perBlock: boolean }
  | { kind: 'dispose'; id: number }
  /** Aborts request `target` (an encode); answers nothing itself. */
  | { kind: 'cancel'; id: number; target: number };

export type HostReply =
  | { kind: 'ready'; id: 0; name: string }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: SerializedError };

/**
 * The buffers of `arrays` that may move instead of being copied: each array must span its whole
 * buffer (a view into a larger one would take its neighbours along); a buffer is listed once.
 */
export function transferList(arrays: Iterable<Float32Array>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    const b = a.buffer;
    if (b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength) out.add(b);
  }
  return [...out];
}
