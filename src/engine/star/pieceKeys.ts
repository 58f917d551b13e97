import { kvBytes, kvBytesPerToken } from '../runtime/kvBytes';
import type { StarHost } from './host';
import { wrapHost } from './wrapHost';
import type { BlockPieces, PieceShape, PieceSplitOptions, TokenRange } from './attentionMass';
import type { BlockKv } from './types';

/*
 * The keys AttentionMass needs to split a multi-file block's share exactly among its files. Phase 1 hands
 * every block's KV to a host (host.encode returns it, host.load receives it, already re-rotated when it
 * moved); wrapping the hosts for phase 1 lets us keep, on the side, the K of the blocks that hold two or
 * more pieces, and nothing else. The cost is host memory (the same arrays the host keeps in waves mode;
 * a copy's worth when the host uploads them) and CPU time in the piece split (attentionMass.ts) (rows x heads x headDim
 * per kept key and layer), so the kept bytes are capped (pieceKeysBudget): blocks past the cap are split by token
 * counts, an approximation (fileShares).
 */

/** Most kept key bytes, whatever the CPU budget allows. */
export const DEFAULT_PIECE_KEYS_BUDGET_BYTES = 256 * 1024 ** 2;
/**
 * CPU work of the piece split: multiply-adds (query rows x heads x headDim per kept key row and layer). JS runs
 * pieceLse at 0.15-0.25 G/s on the shared 2-core dev machine (more on a desktop), so about 1e9 is a few seconds
 * there: Qwen2.5-0.5B (24 layers, 14 heads x 64) and a 30-token question get ~1,500 key rows split exactly.
 */
export const DEFAULT_PIECE_WORK = 1e9;

/** The key bytes to keep so that splitting them costs at most `work` multiply-adds (and at most `maxBytes`). */
export function pieceKeysBudget(
  model: { readonly nLayers: number; readonly nHeads: number; readonly nKvHeads: number; readonly headDim: number },
  queryRows: number,
  work = DEFAULT_PIECE_WORK,
  maxBytes = DEFAULT_PIECE_KEYS_BUDGET_BYTES,
): number {
  const perRow = Math.max(1, queryRows) * model.nHeads * model.headDim * model.nLayers;
  const rowBytes = kvBytesPerToken(model) / 2; // keys only
  return Math.min(maxBytes, Math.floor(work / perRow) * rowBytes);
}

/** Kept keys of multi-file blocks as plain, transferable data (PieceKeys.data, splitFromData). */
export interface PieceKeysData {
  readonly blocks: readonly {
    readonly index: number;
    /** The block's pieces as block-local token ranges. */
    readonly ranges: readonly TokenRange[];
    /** Per layer, the block's keys after RoPE [length, nKvHeads*headDim]. */
    readonly keys: readonly Float32Array[];
  }[];
}

/** AttentionMass's split options from PieceKeysData (what a query host receives with the question). */
export function splitFromData(data: PieceKeysData, shape: PieceShape): PieceSplitOptions {
  const byIndex = new Map(data.blocks.map((b) => [b.index, b]));
  return {
    shape,
    piecesOf: (index) => {
      const b = byIndex.get(index);
      return b && b.ranges.length >= 2 ? { ranges: b.ranges, keys: (layer) => b.keys[layer] } : undefined;
    },
  };
}

export class PieceKeys {
  private readonly kept = new Map<number, Float32Array[]>();
  private bytes = 0;
  /** Blocks with pieces whose keys were not kept (over budget). */
  skipped = 0;

  /** `rangesOf`: a block's piece token ranges (by BlockSpec index); blocks with fewer than two are not kept. */
  constructor(
    private readonly rangesOf: (index: number) => readonly TokenRange[] | undefined,
    private readonly budgetBytes = DEFAULT_PIECE_KEYS_BUDGET_BYTES,
  ) {}

  /**
   * A host that forwards everything to `host`, keeping the keys of multi-piece blocks as they pass. A block dropped
   * or moved through it loses its kept keys: they no longer describe the block at that index (a moved block's keys
   * are re-rotated on the host, not here), so the caller keeps the moved block's keys anew (keep) or the block is
   * split by token counts.
   */
  wrap(host: StarHost): StarHost {
    return wrapHost(host, {
      encode: async (anchor, blocks, signal) => {
        const kvs = await host.encode(anchor, blocks, signal);
        for (const kv of kvs) this.keep(kv);
        return kvs;
      },
      load: async (blocks) => {
        for (const kv of blocks) this.keep(kv);
        await host.load(blocks);
      },
      drop: async (indices) => {
        this.forget(indices);
        await host.drop!(indices);
      },
      move: async (moves) => {
        this.forget(moves.flatMap((m) => [m.from, m.to]));
        await host.move!(moves);
      },
    });
  }

  piecesOf(index: number): BlockPieces | undefined {
    const ranges = this.rangesOf(index);
    const keys = this.kept.get(index);
    if (!ranges || ranges.length < 2 || !keys) return undefined;
    return { ranges, keys: (layer) => keys[layer] };
  }

  splitOptions(shape: PieceShape): PieceSplitOptions {
    return { shape, piecesOf: (index) => this.piecesOf(index) };
  }

  /** Frees the kept keys (after the piece split). */
  clear(): void {
    this.kept.clear();
    this.bytes = 0;
  }

  /**
   * The kept keys as plain data (to cross a message boundary with the question), in block order, as many blocks
   * as fit `budgetBytes` (default: all kept); the blocks left out are split by token counts.
   */
  data(budgetBytes = Infinity): PieceKeysData {
    const blocks: PieceKeysData['blocks'][number][] = [];
    let bytes = 0;
    for (const index of [...this.kept.keys()].sort((a, b) => a - b)) {
      const keys = this.kept.get(index)!;
      const size = keys.reduce((s, k) => s + k.byteLength, 0);
      if (bytes + size > budgetBytes) continue;
      bytes += size;
      blocks.push({ index, ranges: [...this.rangesOf(index)!], keys });
    }
    return { blocks };
  }

  /** The keys kept for block `index` (undefined when none). */
  keysOf(index: number): readonly Float32Array[] | undefined {
    return this.kept.get(index);
  }

  /** Forgets the keys kept for these blocks. */
  forget(indices: readonly number[]): void {
    for (const index of indices) {
      const keys = this.kept.get(index);
      if (!keys) continue;
      this.kept.delete(index);
      this.bytes -= keys.reduce((s, k) => s + k.byteLength, 0);
    }
  }

  /**
   * Keeps the keys of a multi-piece block (replacing what was kept for its index: a block may change between
   * runs of a session). Rows of `kv.k` are kept by reference: the caller does not modify them.
   */
  keep(kv: BlockKv): void {
    const ranges = this.rangesOf(kv.index);
    if (!ranges || ranges.length < 2) return;
    if (ranges[ranges.length - 1]!.end !== kv.length) return; // not the block the layout describes
    this.forget([kv.index]);
    const bytes = kvBytes(kv.k.length, kv.length, kv.width) / 2; // keys only
    if (this.bytes + bytes > this.budgetBytes) {
      this.skipped++;
      return;
    }
    this.kept.set(kv.index, kv.k);
    this.bytes += bytes;
  }
}
