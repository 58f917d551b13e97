/**
 * Min-heap of candidate merges, and the merge loop over it, shared by the SentencePiece and byte-level BPE encoders.
 * Order: smaller `key` first, then the leftmost pair — the tie rule llama.cpp uses, so equal-priority
 * merges resolve left to right as in the reference tokenizers.
 */
interface Bigram {
  readonly left: number;
  readonly right: number;
  readonly key: number;
  /** Combined length when queued: a merge whose sides changed since then is stale and skipped. */
  readonly size: number;
}

class BigramQueue {
  private readonly items: Bigram[] = [];

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

/**
 * Runs BPE merges over a doubly linked list of `len.length` symbols, `len[i]` the length of symbol i
 * (0 once merged into its left neighbour): repeatedly joins the adjacent pair with the smallest key, where
 * `keyOf(left, right)` gives a pair's key from the current lengths, or undefined where the pair cannot merge.
 * `joined(left, right, key)` is told of each merge as it is made, before the new neighbours' keys are asked.
 * Returns `next`, the link from each surviving symbol to the following one (-1 at the end), starting at 0.
 */
export function mergeSymbols(
  len: Int32Array,
  keyOf: (left: number, right: number) => number | undefined,
  joined?: (left: number, right: number, key: number) => void,
): Int32Array {
  const n = len.length;
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const queue = new BigramQueue();
  const tryAdd = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const key = keyOf(left, right);
    if (key === undefined) return;
    queue.push({ left, right, key, size: len[left]! + len[right]! });
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  for (let b = queue.pop(); b; b = queue.pop()) {
    const { left, right } = b;
    if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== b.size) continue;
    len[left] += len[right]!;
    len[right] = 0;
    joined?.(left, right, b.key);
    next[left] = next[right]!;
    if (next[right]! >= 0) prev[next[right]!] = left;
    tryAdd(prev[left]!, left);
    tryAdd(left, next[left]!);
  }
  return next;
}
