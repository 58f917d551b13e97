import { BYTE_TO_CHAR } from './byteLevel';
import type { StringTable } from './stringTable';

/**
 * Byte-level BPE merges keyed by symbol-id pairs: (left, right) → rank, and rank → the merged symbol, in typed
 * arrays (about 4 MB for 150K merges, where "left right" strings in a Map held about 15 MB of heap).
 *
 * A symbol is a string the merge loop can hold: one byte's character, or the result of a merge. Its id is the
 * vocabulary id of that string where the vocabulary has it (the later id of a duplicate, as a Map over the tokens
 * would give), else an id from vocabSize up. The same string always gets the same id, so merging ids decides
 * exactly what merging the strings did: a pair's rank is the first merge "left right" in the list.
 * Merges that no pair of symbols can spell (no space, more than one, an empty side: symbols are byte characters,
 * none a space) are left out, as a string lookup could never have matched them.
 */
export class MergeTable {
  /** Symbol id of each byte's character. */
  readonly byteSymbol = new Int32Array(256);
  /** Merged symbol of each rank; -1 for a merge left out. */
  private readonly mergedByRank: Int32Array;
  private readonly keyLeft: Int32Array;
  private readonly keyRight: Int32Array;
  /** rank + 1 per slot, 0 where empty; the capacity is a power of two. */
  private readonly slotRank: Int32Array;

  constructor(merges: ArrayLike<string>, vocab: StringTable) {
    // Strings outside the vocabulary (none in a well-formed one): numbered after it, only while building.
    const extra = new Map<string, number>();
    const symbolOf = (id: number, text: () => string): number => {
      if (id >= 0) return id;
      const s = text();
      let e = extra.get(s);
      if (e === undefined) extra.set(s, (e = vocab.length + extra.size));
      return e;
    };
    for (let b = 0; b < 256; b++) this.byteSymbol[b] = symbolOf(vocab.find(BYTE_TO_CHAR[b]!), () => BYTE_TO_CHAR[b]!);

    const n = merges.length;
    let capacity = 16;
    while (capacity < n * 1.5) capacity *= 2;
    this.mergedByRank = new Int32Array(n).fill(-1);
    this.keyLeft = new Int32Array(capacity);
    this.keyRight = new Int32Array(capacity);
    this.slotRank = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let rank = 0; rank < n; rank++) {
      const m = merges[rank]!;
      const sp = m.indexOf(' ');
      if (sp <= 0 || sp === m.length - 1 || m.indexOf(' ', sp + 1) >= 0) continue;
      const left = symbolOf(vocab.findIn(m, 0, sp), () => m.slice(0, sp));
      const right = symbolOf(vocab.findIn(m, sp + 1, m.length), () => m.slice(sp + 1));
      let h = pairHash(left, right) & mask;
      for (;;) {
        const r = this.slotRank[h]!;
        if (r === 0) {
          this.keyLeft[h] = left;
          this.keyRight[h] = right;
          this.slotRank[h] = rank + 1;
          this.mergedByRank[rank] = symbolOf(vocab.findWithout(m, sp), () => m.slice(0, sp) + m.slice(sp + 1));
          break;
        }
        if (this.keyLeft[h] === left && this.keyRight[h] === right) break; // an earlier rank of the same pair wins
        h = (h + 1) & mask;
      }
    }
  }

  /** Rank of merging symbols `left` and `right`, or -1 where no merge joins them. */
  rank(left: number, right: number): number {
    const mask = this.slotRank.length - 1;
    let h = pairHash(left, right) & mask;
    for (;;) {
      const r = this.slotRank[h]!;
      if (r === 0) return -1;
      if (this.keyLeft[h] === left && this.keyRight[h] === right) return r - 1;
      h = (h + 1) & mask;
    }
  }

  /** The symbol a merge of this rank makes (rank() gave it). */
  merged(rank: number): number {
    return this.mergedByRank[rank]!;
  }
}

function pairHash(left: number, right: number): number {
  let h = Math.imul(left, 0x9e3779b1) ^ right;
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
