import type { EncodeOptions, Tokenizer } from './types';

/**
 * Remembers encode() results across the layouts a repository session builds, so re-indexing after an edit (or
 * before every question) re-encodes only the pieces whose text changed: on a 3,000-file repository, encoding is
 * most of the walk-and-pack time (`star-ask bench walk`). Generational: next() forgets every entry the latest
 * layout did not use, so the cache holds one layout's pieces at most.
 */
export class EncodeCache {
  // Memory: the pieces' text (the keys) and their ids, about twice the repository's text size plus 8 bytes per
  // token (ids kept as number[]: an Int32Array halves those 8 bytes but its copy out cost a third of the re-index).
  private previous = new Map<string, readonly number[]>();
  private current = new Map<string, readonly number[]>();
  /** encode() calls the wrapped tokenizer actually ran since the cache was made (for tests and figures). */
  misses = 0;

  /** `tokenizer` with encode() answered from the cache; every other member is the tokenizer's own. */
  wrap(tokenizer: Tokenizer): Tokenizer {
    const encode = (text: string, options?: EncodeOptions): number[] => {
      const key = `${options?.addBos ?? ''}|${options?.parseSpecial ?? ''}|${text}`;
      let ids = this.current.get(key) ?? this.previous.get(key);
      if (!ids) {
        ids = tokenizer.encode(text, options);
        this.misses++;
      }
      this.current.set(key, ids);
      return ids.slice(); // a fresh array: callers may keep or change it
    };
    return new Proxy(tokenizer, {
      get(target, prop) {
        if (prop === 'encode') return encode;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** A layout was built: keep what it used, drop the rest. */
  next(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** The latest layout's pieces (after next()): what a later session can start from (seed). */
  entries(): IterableIterator<[string, readonly number[]]> {
    return this.previous.entries();
  }

  /** Starts from an earlier session's pieces (entries()), as if its layout had been built here. */
  seed(entries: Iterable<readonly [string, readonly number[]]>): void {
    for (const [key, ids] of entries) this.previous.set(key, ids);
  }
}
