/**
 * UTF-8 helpers for the tokenizers. The engine is platform-free and its lib (ES2022) has no
 * TextEncoder/TextDecoder types, and the stream decoder needs to know where a character ends anyway.
 */
import { encodeUtf8Into } from '../util/utf8Encode';

export function utf8Encode(text: string): Uint8Array {
  const out = new Uint8Array(3 * text.length);
  return out.slice(0, encodeUtf8Into(text, 0, text.length, out, 0, 'replace'));
}

/**
 * Length and code point of the well-formed UTF-8 sequence starting at `i`, or the length of the
 * maximal ill-formed subpart (WHATWG / Unicode "substitution of maximal subparts") with cp = -1.
 * `incomplete` is true when the bytes so far are a valid prefix that simply ran out of input.
 */
function readSequence(bytes: ArrayLike<number>, i: number): { len: number; cp: number; incomplete: boolean } {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return { len: 1, cp: b0, incomplete: false };
  let need: number;
  let cp: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) { need = 1; cp = b0 & 0x1f; }
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2; cp = b0 & 0x0f;
    if (b0 === 0xe0) lo = 0xa0;
    if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3; cp = b0 & 0x07;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f;
  } else return { len: 1, cp: -1, incomplete: false };
  let j = 1;
  for (; j <= need; j++) {
    if (i + j >= bytes.length) return { len: j, cp: -1, incomplete: true };
    const b = bytes[i + j]!;
    if (b < lo || b > hi) return { len: j, cp: -1, incomplete: false };
    lo = 0x80;
    hi = 0xbf;
    cp = (cp << 6) | (b & 0x3f);
  }
  return { len: j, cp, incomplete: false };
}

/** Decodes UTF-8, replacing each maximal ill-formed subpart with U+FFFD (same output as TextDecoder). */
export function utf8Decode(bytes: ArrayLike<number>): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const { len, cp } = readSequence(bytes, i);
    out += cp < 0 ? '\ufffd' : String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

/**
 * How many leading bytes can be decoded now without cutting a character: everything except a
 * trailing, still-valid but incomplete multi-byte sequence (which the next token may complete).
 */
export function utf8CompleteLength(bytes: ArrayLike<number>): number {
  let i = 0;
  while (i < bytes.length) {
    const { len, incomplete } = readSequence(bytes, i);
    if (incomplete) return i;
    i += len;
  }
  return i;
}
