/**
 * GPT-2's reversible byte ↔ printable-character map: byte-level BPE vocabularies store every token
 * as a string of these characters (space is "Ġ", newline "Ċ").
 */
function buildTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) byteToChar[b] = String.fromCharCode(printable(b) ? b : 256 + extra++);
  const charToByte = new Map<string, number>();
  byteToChar.forEach((c, b) => charToByte.set(c, b));
  return { byteToChar, charToByte };
}

const tables = buildTables();
export const BYTE_TO_CHAR: readonly string[] = tables.byteToChar;

/** Token text → raw bytes; undefined when a character is outside the byte alphabet. */
export function byteLevelToBytes(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = tables.charToByte.get(token[i]!);
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}
