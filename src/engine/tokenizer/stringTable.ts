/**
 * A vocabulary's token texts packed into one buffer of UTF-16 code units with an offset per id, and found by an
 * open-addressing hash over those units. A 150K-token vocabulary is then two typed arrays (about 3 MB) where an array
 * of JS strings and a Map over them hold over 10 MB on the heap, for the life of the model.
 * find() answers as Map.set over the ids in order would: where two ids share a text, the later one.
 */
export class StringTable {
  readonly length: number;
  private readonly units: Uint16Array;
  /** Text of id i: units[starts[i] .. starts[i + 1]). */
  private readonly starts: Uint32Array;
  /** id + 1 per slot, 0 where empty; the capacity is a power of two. */
  private readonly slots: Int32Array;

  constructor(texts: ArrayLike<string>) {
    const n = texts.length;
    this.length = n;
    let total = 0;
    for (let i = 0; i < n; i++) total += texts[i]!.length;
    this.units = new Uint16Array(total);
    this.starts = new Uint32Array(n + 1);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const t = texts[i]!;
      this.starts[i] = at;
      for (let k = 0; k < t.length; k++) this.units[at + k] = t.charCodeAt(k);
      at += t.length;
    }
    this.starts[n] = at;
    let capacity = 16;
    while (capacity < n * 2) capacity *= 2; // load factor at most 1/2: probes stay short
    this.slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let id = 0; id < n; id++) {
      const start = this.starts[id]!;
      const end = this.starts[id + 1]!;
      let h = hashUnits(this.units, start, end) & mask;
      for (;;) {
        const s = this.slots[h]!;
        if (s === 0) {
          this.slots[h] = id + 1;
          break;
        }
        if (this.sameAs(s - 1, this.units, start, end)) {
          this.slots[h] = id + 1; // a later duplicate wins, as with Map.set
          break;
        }
        h = (h + 1) & mask;
      }
    }
  }

  /** Token text of `id` (0 <= id < length). */
  get(id: number): string {
    const start = this.starts[id]!;
    const end = this.starts[id + 1]!;
    if (end - start <= 64) return String.fromCharCode(...this.units.subarray(start, end));
    let s = '';
    for (let k = start; k < end; k += 4096) s += String.fromCharCode(...this.units.subarray(k, Math.min(end, k + 4096)));
    return s;
  }

  /** Id whose text is `text`, or -1. */
  find(text: string): number {
    return this.findIn(text, 0, text.length);
  }

  /** Id whose text is text[start .. end), or -1: a lookup of a substring without making it. */
  findIn(text: string, start: number, end: number): number {
    const mask = this.slots.length - 1;
    let h = hashString(text, start, end) & mask;
    for (;;) {
      const s = this.slots[h]!;
      if (s === 0) return -1;
      if (this.sameAsString(s - 1, text, start, end)) return s - 1;
      h = (h + 1) & mask;
    }
  }

  /** Id whose text is `text` with its unit at `skip` left out, or -1 ("a b" → "ab": a merge's result). */
  findWithout(text: string, skip: number): number {
    const mask = this.slots.length - 1;
    let h = 0x811c9dc5;
    for (let k = 0; k < text.length; k++) if (k !== skip) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
    h = finish(h) & mask;
    for (;;) {
      const s = this.slots[h]!;
      if (s === 0) return -1;
      const id = s - 1;
      const a = this.starts[id]!;
      if (this.starts[id + 1]! - a === text.length - 1) {
        let k = 0;
        while (k < skip && this.units[a + k] === text.charCodeAt(k)) k++;
        if (k === skip) {
          while (k < text.length - 1 && this.units[a + k] === text.charCodeAt(k + 1)) k++;
          if (k === text.length - 1) return id;
        }
      }
      h = (h + 1) & mask;
    }
  }

  private sameAs(id: number, units: Uint16Array, start: number, end: number): boolean {
    const a = this.starts[id]!;
    if (this.starts[id + 1]! - a !== end - start) return false;
    for (let k = 0; k < end - start; k++) if (this.units[a + k] !== units[start + k]) return false;
    return true;
  }

  private sameAsString(id: number, text: string, start: number, end: number): boolean {
    const a = this.starts[id]!;
    if (this.starts[id + 1]! - a !== end - start) return false;
    for (let k = 0; k < end - start; k++) if (this.units[a + k] !== text.charCodeAt(start + k)) return false;
    return true;
  }
}

// FNV-1a over the code units, then a finalizer so the low bits (the slot) depend on every unit.
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function hashUnits(units: Uint16Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let k = start; k < end; k++) h = Math.imul(h ^ units[k]!, 0x01000193);
  return finish(h);
}

function hashString(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let k = start; k < end; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
  return finish(h);
}
