import { encodeUtf8Into } from './utf8Encode';
/**
 * Many short strings as UTF-8 in one buffer: item i is bytes[offsets[i] .. offsets[i + 1]). A GGUF vocabulary
 * (150K tokens, 150K merges) read this way is two typed arrays per list where JS strings cost 300K heap objects,
 * garbage that grew the young generation by tens of MB while the model loaded.
 * Every item is well-formed UTF-8, and get() returns exactly the string it encodes (a leading U+FEFF included).
 */
export class PackedStrings {
  readonly length: number;

  constructor(readonly bytes: Uint8Array, readonly offsets: Uint32Array) {
    this.length = offsets.length - 1;
  }

  get(i: number): string {
    return exact.decode(this.bytes.subarray(this.offsets[i]!, this.offsets[i + 1]!));
  }

  /** The strings as UTF-8 (a lone surrogate as U+FFFD, as TextEncoder writes it). */
  static from(texts: ArrayLike<string>): PackedStrings {
    let units = 0;
    for (let i = 0; i < texts.length; i++) units += texts[i]!.length;
    const bytes = new Uint8Array(3 * units); // 3 bytes a UTF-16 unit at most
    const offsets = new Uint32Array(texts.length + 1);
    let n = 0;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      offsets[i] = n;
      n = encodeUtf8Into(t, 0, t.length, bytes, n, 'replace');
    }
    offsets[texts.length] = n;
    return new PackedStrings(bytes.slice(0, n), offsets);
  }
}

/**
 * Collects items given as raw bytes (a file's strings) into a PackedStrings. An item that is not well-formed UTF-8,
 * or starts with a byte order mark, is stored as the string `decodeLoose` makes of it: what a reader that decodes
 * each item to a JS string would have held.
 */
export class PackedStringsBuilder {
  private bytes: Uint8Array;
  private readonly offsets: Uint32Array;
  private count = 0;
  private size = 0;

  constructor(items: number, sizeHint: number, private readonly decodeLoose: (raw: Uint8Array) => string) {
    this.bytes = new Uint8Array(Math.max(16, sizeHint));
    this.offsets = new Uint32Array(items + 1);
  }

  /** Adds the item src[start .. end) (no view made of it: one per item was most of a vocabulary's garbage). */
  add(src: Uint8Array, start: number, end: number): void {
    const clean = wellFormed(src, start, end) && !(end - start >= 3 && src[start] === 0xef && src[start + 1] === 0xbb && src[start + 2] === 0xbf);
    const item = clean ? undefined : encoder.encode(this.decodeLoose(src.subarray(start, end)));
    const n = item ? item.length : end - start;
    if (this.size + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.size + n));
      grown.set(this.bytes.subarray(0, this.size));
      this.bytes = grown;
    }
    if (item) this.bytes.set(item, this.size);
    else for (let k = 0; k < n; k++) this.bytes[this.size + k] = src[start + k]!;
    this.offsets[this.count++] = this.size;
    this.size += n;
  }

  finish(): PackedStrings {
    if (this.count !== this.offsets.length - 1) throw new RangeError(`PackedStringsBuilder: ${this.count} of ${this.offsets.length - 1} items added`);
    this.offsets[this.count] = this.size;
    return new PackedStrings(this.bytes.slice(0, this.size), this.offsets);
  }
}

const encoder = new TextEncoder();
const exact = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Whether b[start .. end) is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
function wellFormed(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return false;
    if (i + n >= end) return false;
    if (b[i + 1]! < lo || b[i + 1]! > hi) return false;
    for (let k = 2; k <= n; k++) if (b[i + k]! < 0x80 || b[i + k]! > 0xbf) return false;
    i += n + 1;
  }
  return true;
}
