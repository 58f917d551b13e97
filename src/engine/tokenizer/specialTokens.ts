/**
 * Finds special-token text ("<|im_start|>", "<s>") inside a prompt so it becomes one token instead
 * of being spelled out. At each position the longest matching special token wins.
 */
export interface SpecialTokenEntry {
  readonly text: string;
  readonly id: number;
  /** Matched even when the caller did not ask for special parsing (llama.cpp: user-defined tokens). */
  readonly always: boolean;
}

/** A piece of text to run through the model's encoder, or the id of a special token found in it. */
export type Fragment = string | number;

export class SpecialTokenMatcher {
  private readonly byFirstChar = new Map<string, SpecialTokenEntry[]>();

  constructor(entries: readonly SpecialTokenEntry[]) {
    for (const e of entries) {
      if (e.text.length === 0) continue;
      const list = this.byFirstChar.get(e.text[0]!) ?? [];
      list.push(e);
      this.byFirstChar.set(e.text[0]!, list);
    }
    for (const list of this.byFirstChar.values()) list.sort((a, b) => b.text.length - a.text.length);
  }

  split(text: string, parseSpecial: boolean): Fragment[] {
    const out: Fragment[] = [];
    if (this.byFirstChar.size === 0) return text.length > 0 ? [text] : [];
    let plainStart = 0;
    for (let i = 0; i < text.length; ) {
      const candidates = this.byFirstChar.get(text[i]!);
      const hit = candidates?.find((e) => (parseSpecial || e.always) && text.startsWith(e.text, i));
      if (!hit) {
        i++;
        continue;
      }
      if (i > plainStart) out.push(text.slice(plainStart, i));
      out.push(hit.id);
      i += hit.text.length;
      plainStart = i;
    }
    if (plainStart < text.length) out.push(text.slice(plainStart));
    return out;
  }
}
