import type { BlockMove } from './host';
import type { BlockSpec } from './types';

/*
 * What a session's hosts must do to hold a new layout, decided without touching them (RepoSession applies it).
 * Between questions the hosts keep their blocks: a block whose cache key (anchor + tokens) is unchanged stays on
 * its host, renumbered and re-rotated there when its start moved; the blocks no longer in the layout are dropped;
 * only the rest is sent (loaded from the disk cache, or encoded).
 */

/** A block the hosts of a pool hold: its cache key, its start, and which host. */
export interface PooledBlock {
  readonly key: string;
  readonly start: number;
  readonly host: number;
}

/** What the hosts hold, as far as the session knows. */
export type PoolState =
  | { readonly kind: 'empty' }
  /** By block index of the layout they were given. */
  | { readonly kind: 'known'; readonly held: ReadonlyMap<number, PooledBlock> }
  /** An update failed half-way, or another session used the hosts: they must be cleared before use. */
  | { readonly kind: 'unknown' };

export interface PoolUpdate {
  /** Clear every host first (then `needed` is every block). */
  readonly clear: boolean;
  /** New index -> the held block that serves it (`from`: its index in the held layout). */
  readonly kept: ReadonlyMap<number, PooledBlock & { readonly from: number }>;
  /** Held blocks to drop (their index in the held layout, and host). */
  readonly stale: readonly { readonly index: number; readonly host: number }[];
  /** Kept blocks whose index or start changed, with their host. */
  readonly moved: readonly (BlockMove & { readonly host: number })[];
  /** Blocks to send (load or encode), in layout order. */
  readonly needed: readonly BlockSpec[];
}

/** True when the hosts already hold exactly the layout. */
export function isUnchanged(u: PoolUpdate): boolean {
  return !u.clear && u.needed.length === 0 && u.stale.length === 0 && u.moved.length === 0;
}

/**
 * The update from `state` to `blocks` (keys[i]: block i's cache key). Each block takes a held block with its key,
 * its own index first; the held blocks left over are stale. When the hosts cannot drop and move single blocks
 * (`canRearrange` false) a layout that needs it clears them instead.
 */
export function planPoolUpdate(state: PoolState, blocks: readonly BlockSpec[], keys: readonly string[], canRearrange: boolean): PoolUpdate {
  const everything = (clear: boolean): PoolUpdate => ({ clear, kept: new Map(), stale: [], moved: [], needed: blocks });
  if (state.kind === 'empty') return everything(false);
  if (state.kind === 'unknown') return everything(true);
  const held = state.held;
  const free = new Map<string, number[]>();
  for (const [i, h] of held) free.set(h.key, [...(free.get(h.key) ?? []), i]);
  const kept = new Map<number, PooledBlock & { from: number }>();
  for (const b of blocks) {
    const candidates = free.get(keys[b.index]!);
    if (!candidates?.length) continue;
    const at = Math.max(0, candidates.indexOf(b.index));
    const from = candidates.splice(at, 1)[0]!;
    kept.set(b.index, { ...held.get(from)!, from });
  }
  const used = new Set([...kept.values()].map((h) => h.from));
  const stale = [...held].filter(([i]) => !used.has(i)).map(([index, h]) => ({ index, host: h.host }));
  const moved = [...kept]
    .filter(([to, h]) => h.from !== to || h.start !== blocks[to]!.start)
    .map(([to, h]) => ({ from: h.from, to, start: blocks[to]!.start, host: h.host }));
  if ((stale.length > 0 || moved.length > 0) && !canRearrange) return everything(true);
  return { clear: false, kept, stale, moved, needed: blocks.filter((b) => !kept.has(b.index)) };
}

/** What the hosts hold once `update` is applied, with `hostOf` the host each needed block went to. */
export function heldAfter(update: PoolUpdate, blocks: readonly BlockSpec[], keys: readonly string[], hostOf: (index: number) => number): PoolState {
  const held = new Map<number, PooledBlock>();
  for (const [to, h] of update.kept) held.set(to, { key: h.key, start: blocks[to]!.start, host: h.host });
  for (const spec of update.needed) held.set(spec.index, { key: keys[spec.index]!, start: spec.start, host: hostOf(spec.index) });
  return { kind: 'known', held };
}
