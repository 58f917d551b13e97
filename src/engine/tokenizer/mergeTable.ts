import { BYTE_TO_CHAR } from './byteLevel';
import type { PackedStrings } from '../util/packedStrings';
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
 * none a space) are left out, as a string lookup could never have matched them. Built from the merges' UTF-8 with
 * no string made per merge.
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

  constructor(merges: PackedStrings, vocab: StringTable) {
    // Strings outside the vocabulary (none in a well-formed one): numbered after it, keyed by their bytes, only
    // while building.
    const extra = new Map<string, number>();
    const symbolOf = (id: number, b: Uint8Array, s1: number, e1: number, s2: number, e2: number): number => {
      if (id >= 0) return id;
      const key = String.fromCharCode(...b.subarray(s1, e1), ...b.subarray(s2, e2));
      let e = extra.get(key);
      if (e === undefined) extra.set(key, (e = vocab.length + extra.size));
      return e;
    };
    const byteUtf8 = new Uint8Array(2);
    for (let b = 0; b < 256; b++) {
      const c = BYTE_TO_CHAR[b]!.charCodeAt(0); // below U+0800: two bytes at most
      const n = c < 0x80 ? 1 : 2;
      if (n === 1) byteUtf8[0] = c;
      else byteUtf8.set([0xc0 | (c >> 6), 0x80 | (c & 63)]);
      this.byteSymbol[b] = symbolOf(vocab.findBytes(byteUtf8, 0, n), byteUtf8, 0, n, n, n);
    }

    const n = merges.length;
    let capacity = 16;
    while (capacity < n * 1.5) capacity *= 2;
    this.mergedByRank = new Int32Array(n).fill(-1);
    this.keyLeft = new Int32Array(capacity);
    this.keyRight = new Int32Array(capacity);
    this.slotRank = new Int32Array(capacity);
    const mask = capacity - 1;
    const b = merges.bytes;
    for (let rank = 0; rank < n; rank++) {
      const start = merges.offsets[rank]!;
      const end = merges.offsets[rank + 1]!;
      let sp = -1;
      let spaces = 0;
      for (let k = start; k < end; k++) if (b[k] === 0x20 && spaces++ === 0) sp = k;
      if (spaces !== 1 || sp === start || sp === end - 1) continue;
      const left = symbolOf(vocab.findBytes(b, start, sp), b, start, sp, sp, sp);
      const right = symbolOf(vocab.findBytes(b, sp + 1, end), b, sp + 1, end, end, end);
      let h = pairHash(left, right) & mask;
      for (;;) {
        const r = this.slotRank[h]!;
        if (r === 0) {
          this.keyLeft[h] = left;
          this.keyRight[h] = right;
          this.slotRank[h] = rank + 1;
          this.mergedByRank[rank] = symbolOf(vocab.findJoined(b, start, sp, sp + 1, end), b, start, sp, sp + 1, end);
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
