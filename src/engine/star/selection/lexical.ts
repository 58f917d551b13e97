/*
 * Lexical ranking of context blocks for a question: Okapi BM25 over the blocks' text. The baseline the
 * attention ranking is measured against, and its cheap first stage on very large repositories (no model call).
 *
 * Terms are identifier-aware, because questions about code name code: `parseArgs`, `max_tokens`, `src/cli.ts`.
 * A word is a run of letters, digits, `_` and `$`; it yields itself lower-cased and, when it has several parts,
 * each part (split at `_`/`$`, lower-to-upper camelCase, acronym-to-word `HTTPServer` -> `http` `server`, and
 * letter/digit boundaries). Paths split at their separators on the way. So "parse args" finds `parseArgs`, and
 * "parseArgs" finds it better (the whole word is a rarer term than its parts).
 */

/** BM25's term-frequency saturation and length normalisation, the usual values. */
export const BM25_K1 = 1.2;
export const BM25_B = 0.75;

/** One block's text, by its context index. */
export interface LexicalDocument {
  readonly index: number;
  readonly text: string;
}

export interface RankedBlock {
  /** The block's context index. */
  readonly index: number;
  readonly score: number;
}

const WORD = /[A-Za-z0-9_$]+/g;
// Boundaries inside a word: lower/digit -> upper ("parseArgs"), acronym -> word ("HTTPServer"), letter <-> digit.
const PART_BOUNDARY = /(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])/;

/** The terms of `text`, in order, with repeats (whole words and, for compound words, their parts). */
export function lexicalTerms(text: string): string[] {
  const terms: string[] = [];
  for (const match of text.matchAll(WORD)) {
    const word = match[0];
    const whole = word.toLowerCase();
    const parts: string[] = [];
    for (const piece of word.split(/[_$]+/)) {
      if (piece === '') continue;
      for (const part of piece.split(PART_BOUNDARY)) if (part !== '') parts.push(part.toLowerCase());
    }
    // One-character words ("a", "i", "x") carry nothing a ranking can use.
    if (whole.length > 1 || parts.length > 1) terms.push(whole);
    if (parts.length > 1) for (const part of parts) if (part.length > 1) terms.push(part);
  }
  return terms;
}

/**
 * A BM25 index over a set of blocks, built once per layout (an inverted index: per term, the blocks holding it
 * and how often). Ranking a question touches only the postings of its own terms, so it stays fast on thousands
 * of blocks.
 */
export class LexicalIndex {
  private readonly postings = new Map<string, { docs: number[]; counts: number[] }>();
  private readonly lengths: Float64Array;
  private readonly indices: Int32Array;
  private readonly averageLength: number;

  constructor(documents: readonly LexicalDocument[]) {
    this.indices = Int32Array.from(documents, (d) => d.index);
    this.lengths = new Float64Array(documents.length);
    let total = 0;
    documents.forEach((doc, d) => {
      const counts = new Map<string, number>();
      const terms = lexicalTerms(doc.text);
      for (const term of terms) counts.set(term, (counts.get(term) ?? 0) + 1);
      for (const [term, count] of counts) {
        let list = this.postings.get(term);
        if (!list) this.postings.set(term, (list = { docs: [], counts: [] }));
        list.docs.push(d);
        list.counts.push(count);
      }
      this.lengths[d] = terms.length;
      total += terms.length;
    });
    this.averageLength = documents.length > 0 ? total / documents.length : 0;
  }

  get size(): number {
    return this.indices.length;
  }

  /**
   * The blocks holding any of the question's terms, best first (ties: repository order, i.e. input order);
   * blocks without a query term are left out (score 0). Each distinct query term counts once.
   */
  rank(question: string): RankedBlock[] {
    const n = this.indices.length;
    const scores = new Float64Array(n);
    const hit = new Uint8Array(n);
    const avg = this.averageLength || 1;
    for (const term of new Set(lexicalTerms(question))) {
      const list = this.postings.get(term);
      if (!list) continue;
      const df = list.docs.length;
      // BM25+-style floor: the "+1" keeps idf positive for a term in more than half of the blocks.
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      for (let j = 0; j < df; j++) {
        const d = list.docs[j]!;
        const tf = list.counts[j]!;
        const norm = BM25_K1 * (1 - BM25_B + (BM25_B * this.lengths[d]!) / avg);
        scores[d] = scores[d]! + (idf * tf * (BM25_K1 + 1)) / (tf + norm);
        hit[d] = 1;
      }
    }
    const ranked: { d: number; score: number }[] = [];
    for (let d = 0; d < n; d++) if (hit[d]) ranked.push({ d, score: scores[d]! });
    ranked.sort((x, y) => y.score - x.score || x.d - y.d);
    return ranked.map(({ d, score }) => ({ index: this.indices[d]!, score }));
  }
}
