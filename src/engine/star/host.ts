import type { HostAttention, BlockKv, BlockSpec } from './types';

/**
 * A Star Attention host: anything that owns a compute device, a copy of the weights and a set of
 * context blocks' KV (a CPU or Dawn backend in Node, a WebGPU worker in the webview). The query
 * host drives phase 2 and calls attend() on every host in every layer.
 *
 * Message-friendly on purpose: every argument and result is plain data (numbers, arrays, typed
 * arrays, transferable), nothing relies on object identity, so an implementation can forward each
 * call over postMessage unchanged. The one exception, encode's AbortSignal, becomes a "cancel"
 * message in such an adapter (the worker side aborts its own controller).
 *
 * Who owns the arrays:
 * - load(blocks): the host may keep the very arrays it is given (an in-process host keeps them while a block is
 *   not resident), so the caller must not modify them afterwards; it may keep reading them. Over a port
 *   (StarHostClient) they are copied, never transferred: the caller's arrays stay usable.
 * - encode() returns arrays the caller owns and may keep; the host keeps its own KV (on the device, or these
 *   same arrays when a block is not resident in process), so the caller must not modify them. Over a port they
 *   arrive as fresh arrays (moved out of the worker when it does not keep them, else copied).
 * - attend(): q is only read during the call; the result's arrays are fresh and the caller's.
 */
export interface StarHost {
  /** For stats and errors, e.g. "host 1 (webgpu: NVIDIA ...)". */
  readonly name: string;

  /**
   * Phase 1: encodes `blocks` as [anchor ; block] (the anchor's KV computed once per host, at
   * positions 0..a-1, and reused), keeps their KV and returns it for the disk cache. A block with
   * start 0 is the anchor itself and gets the anchor's own KV.
   */
  encode(anchor: readonly number[], blocks: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]>;

  /** Adds blocks' KV computed earlier (disk cache). */
  load(blocks: readonly BlockKv[]): Promise<void>;

  /** Indices of the blocks this host holds, in the order they were added. */
  blockIndices(): Promise<number[]>;

  /**
   * Attention of `rows` query rows q [rows, nHeads*headDim] (after RoPE) over ALL of this host's
   * blocks at `layer`, no causal mask (the query follows the whole context). With perBlock, also
   * each block's own log-sum-exp (costs one extra pass per block; used for the attention shares).
   */
  attend(layer: number, q: Float32Array, rows: number, perBlock: boolean): Promise<HostAttention>;

  /** Drops every block's KV; the weights, device and the anchor's own KV stay for the next encode/load. */
  clear(): Promise<void>;

  /**
   * Optional (LocalStarHost and its proxies have them): drops the given blocks' KV, and renumbers held blocks,
   * re-rotating their keys when their start moves (RoPE composes; the same approximation as a cached block moved,
   * see shift.ts). A session keeps the unchanged blocks of an edited repository on the hosts with these.
   */
  drop?(indices: readonly number[]): Promise<void>;
  move?(moves: readonly BlockMove[]): Promise<void>;

  /** Frees the blocks' KV (and, for hosts that own them, the device and weights). */
  dispose(): Promise<void>;
}

/** A held block's new index and start (moves are applied together, so indices may swap). */
export interface BlockMove {
  readonly from: number;
  readonly to: number;
  readonly start: number;
}

/** Splits blocks across `hostCount` hosts so that every host gets about the same number of tokens. */
export function balanceBlocks<T extends { readonly tokens: readonly unknown[] }>(blocks: readonly T[], hostCount: number): T[][] {
  const hosts: T[][] = Array.from({ length: Math.max(1, hostCount) }, () => []);
  const load = new Array<number>(hosts.length).fill(0);
  // Longest first, each to the least loaded host (LPT); then restore context order per host.
  const order = blocks.map((b, i) => i).sort((a, b) => blocks[b]!.tokens.length - blocks[a]!.tokens.length || a - b);
  const owner = new Array<number>(blocks.length);
  for (const i of order) {
    let h = 0;
    for (let j = 1; j < load.length; j++) if (load[j]! < load[h]!) h = j;
    owner[i] = h;
    load[h] += blocks[i]!.tokens.length;
  }
  blocks.forEach((b, i) => hosts[owner[i]!]!.push(b));
  return hosts;
}
