import type { PackedStrings } from '../util/packedStrings';
import { encodeUtf8Into } from '../util/utf8Encode';

/**
 * A vocabulary's token texts (UTF-8 in one buffer, PackedStrings) found by an open-addressing hash over their
 * bytes. A 150K-token vocabulary is then a few typed arrays (about 4 MB) where an array of JS strings and a Map over
 * them held over 10 MB on the heap for the life of the model.
 * Lookups answer as Map.set over the ids in order would: where two ids share a text, the later one.
 */
export class StringTable {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private readonly offsets: Uint32Array;
  /** id + 1 per slot, 0 where empty; the capacity is a power of two. */
  private readonly slots: Int32Array;
  /** A looked-up string's UTF-8, reused. */
  private scratch = new Uint8Array(256);

  constructor(private readonly texts: PackedStrings) {
    this.length = texts.length;
    this.bytes = texts.bytes;
    this.offsets = texts.offsets;
    let capacity = 16;
    while (capacity < this.length * 2) capacity *= 2; // load factor at most 1/2: probes stay short
    this.slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let id = 0; id < this.length; id++) {
      const start = this.offsets[id]!;
      const end = this.offsets[id + 1]!;
      let h = finish(fnv(FNV_START, this.bytes, start, end)) & mask;
      for (;;) {
        const s = this.slots[h]!;
        if (s === 0 || this.equals(s - 1, this.bytes, start, end, end, end)) {
          this.slots[h] = id + 1; // a later duplicate takes the slot, as with Map.set
          break;
        }
        h = (h + 1) & mask;
      }
    }
  }

  /** Token text of `id` (0 <= id < length). */
  get(id: number): string {
    return this.texts.get(id);
  }

  /** Id whose text is `text`, or -1. */
  find(text: string): number {
    return this.findIn(text, 0, text.length);
  }

  /** Id whose text is text[start .. end), or -1: a lookup of a substring without making it. */
  findIn(text: string, start: number, end: number): number {
    const n = this.encode(text, start, end);
    return n < 0 ? -1 : this.findBytes(this.scratch, 0, n);
  }

  /** Id whose UTF-8 is b[start .. end), or -1. */
  findBytes(b: Uint8Array, start: number, end: number): number {
    return this.findJoined(b, start, end, end, end);
  }

  /** Id whose UTF-8 is b[s1 .. e1) followed by b[s2 .. e2), or -1 ("a b" → "ab": a merge's result). */
  findJoined(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): number {
    const mask = this.slots.length - 1;
    let h = finish(fnv(fnv(FNV_START, b, s1, e1), b, s2, e2)) & mask;
    for (;;) {
      const s = this.slots[h]!;
      if (s === 0) return -1;
      if (this.equals(s - 1, b, s1, e1, s2, e2)) return s - 1;
      h = (h + 1) & mask;
    }
  }

  private equals(id: number, b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
    const a = this.offsets[id]!;
    const n1 = e1 - s1;
    if (this.offsets[id + 1]! - a !== n1 + e2 - s2) return false;
    for (let k = 0; k < n1; k++) if (this.bytes[a + k] !== b[s1 + k]) return false;
    for (let k = 0; k < e2 - s2; k++) if (this.bytes[a + n1 + k] !== b[s2 + k]) return false;
    return true;
  }

  /**
   * text[start .. end) as UTF-8 into scratch: its length, or -1 where it holds a lone surrogate (no token can: every
   * token is well-formed UTF-8).
   */
  private encode(text: string, start: number, end: number): number {
    if (this.scratch.length < 3 * (end - start)) this.scratch = new Uint8Array(3 * (end - start));
    return encodeUtf8Into(text, start, end, this.scratch, 0, 'fail');
  }
}

const FNV_START = 0x811c9dc5;

function fnv(h: number, b: Uint8Array, start: number, end: number): number {
  for (let k = start; k < end; k++) h = Math.imul(h ^ b[k]!, 0x01000193);
  return h;
}

// A finalizer so the low bits (the slot) depend on every byte.
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
