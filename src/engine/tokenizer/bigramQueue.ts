/**
 * Min-heap of candidate merges shared by the SentencePiece and byte-level BPE encoders.
 * Order: smaller `key` first, then the leftmost pair — the tie rule llama.cpp uses, so equal-priority
 * merges resolve left to right as in the reference tokenizers.
 */
export interface Bigram {
  readonly left: number;
  readonly right: number;
  readonly key: number;
  /** Combined length when queued: a merge whose sides changed since then is stale and skipped. */
  readonly size: number;
}

export class BigramQueue {
  private readonly items: Bigram[] = [];

  get length(): number {
    return this.items.length;
  }

  push(b: Bigram): void {
    const a = this.items;
    a.push(b);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Bigram | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Bigram, y: Bigram): boolean {
  return x.key < y.key || (x.key === y.key && x.left < y.left);
}
