/**
 * text[start .. end) as UTF-8 into out from `at`: the index after the last byte written, or -1 where the text holds a
 * lone surrogate and `lone` is 'fail' ('replace' writes U+FFFD for it, as TextEncoder does). out needs 3 bytes per
 * UTF-16 unit. The engine's one UTF-8 encoder (its lib has no TextEncoder types, and callers need no allocation).
 */
export function encodeUtf8Into(text: string, start: number, end: number, out: Uint8Array, at: number, lone: 'replace' | 'fail'): number {
  let n = at;
  for (let i = start; i < end; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const lo = i + 1 < end ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i++;
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 63);
        out[n++] = 0x80 | ((c >> 6) & 63);
        out[n++] = 0x80 | (c & 63);
        continue;
      }
      if (lone === 'fail') return -1;
      c = 0xfffd;
    }
    out[n++] = 0xe0 | (c >> 12);
    out[n++] = 0x80 | ((c >> 6) & 63);
    out[n++] = 0x80 | (c & 63);
  }
  return n;
}
