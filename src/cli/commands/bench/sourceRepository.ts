// A deterministic repository of real-looking TypeScript source files for the bench commands: functions,
// interfaces and classes built from a seeded random choice of names, spread over a few folders. Sizes are
// measured with the model's own tokenizer, so "a 4K-token repository" means 4K tokens of that model.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRandom } from '../../../engine/runtime/random';
import type { Tokenizer } from '../../../engine/tokenizer/types';

const AREAS = ['cache', 'parser', 'server', 'render', 'storage', 'auth', 'search', 'queue'];
const NOUNS = ['user', 'session', 'token', 'record', 'entry', 'buffer', 'request', 'result', 'config', 'index', 'range', 'node', 'file', 'event', 'limit', 'batch'];
const VERBS = ['load', 'parse', 'merge', 'find', 'update', 'remove', 'check', 'build', 'encode', 'resolve', 'flush', 'count'];
const TYPES = ['string', 'number', 'boolean', 'Uint8Array', 'Map<string, number>', 'string[]'];

type Random = () => number;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** One top-level declaration (with its doc comment), ending with a blank line. */
function declaration(r: Random): string {
  const noun = pick(r, NOUNS);
  const other = pick(r, NOUNS.filter((n) => n !== noun));
  const verb = pick(r, VERBS);
  const n = 1 + Math.floor(r() * 64);
  switch (Math.floor(r() * 3)) {
    case 0:
      return `/** ${cap(verb)}s the ${noun} of a ${other}; throws when the ${noun} is over the limit. */
export function ${verb}${cap(noun)}(${other}: ${cap(other)}, limit = ${n}): ${cap(noun)}Result {
  let total = ${other}.${noun}Count ?? 0;
  for (const item of ${other}.items) {
    if (item.${noun} === undefined) continue;
    total += item.${noun}.length * ${n % 7 + 1};
  }
  if (total > limit) throw new RangeError(\`${noun} of \${${other}.id} is \${total}, over \${limit}\`);
  return { ${noun}: total, ${other}: ${other}.id };
}

`;
    case 1:
      return `/** A ${noun} as the ${other} store keeps it. */
export interface ${cap(noun)}${cap(other)} {
  readonly id: string;
  readonly ${noun}: ${pick(r, TYPES)};
  readonly ${other}?: ${pick(r, TYPES)};
  /** Milliseconds since the ${noun} was last ${verb}ed. */
  readonly age: number;
}

`;
    default:
      return `export class ${cap(noun)}${cap(verb)}er {
  private readonly seen = new Map<string, number>();

  constructor(private readonly ${other}s: readonly ${cap(other)}[]) {}

  /** ${cap(verb)}s every ${noun} once, in ${other} order. */
  ${verb}All(): number {
    let count = 0;
    for (const ${other} of this.${other}s) {
      const key = \`\${${other}.id}:${noun}\`;
      if (this.seen.has(key)) continue;
      this.seen.set(key, ${n});
      count++;
    }
    return count;
  }
}

`;
  }
}

export interface SourceRepository {
  /** Relative paths, in the walker's order (sorted). */
  readonly files: readonly string[];
  /** Tokens of the files' contents (without the layout's headers). */
  readonly tokens: number;
}

/**
 * Writes files of about `fileTokens` tokens each into `dir` until they hold `tokens` tokens in all. The same
 * arguments and tokenizer always write the same files.
 */
export function writeSourceRepository(dir: string, tokenizer: Tokenizer, tokens: number, fileTokens = 200, seed = 1): SourceRepository {
  const r = createRandom(seed);
  const count = (text: string) => tokenizer.encode(text, { addBos: false }).length;
  const files: string[] = [];
  let total = 0;
  for (let i = 0; total < tokens; i++) {
    const path = `src/${AREAS[i % AREAS.length]}/${pick(r, VERBS)}${cap(pick(r, NOUNS))}${i}.ts`;
    let text = `// ${path}: generated for star-ask bench.\nimport type { ${cap(pick(r, NOUNS))}Result } from '../types';\n\n`;
    let fileCount = count(text);
    while (fileCount < fileTokens && total + fileCount < tokens) {
      const d = declaration(r);
      text += d;
      fileCount += count(d);
    }
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    writeFileSync(join(dir, path), text);
    files.push(path);
    total += fileCount;
  }
  return { files: [...files].sort(), tokens: total };
}

/** Inserts one new declaration at the middle line of `path` (an edit in the middle of a file). */
export function editSourceFile(dir: string, path: string, seed: number): void {
  const full = join(dir, path);
  const lines = readFileSync(full, 'utf8').split('\n');
  // The first blank line at or after the middle: between two declarations.
  let at = lines.length >> 1;
  while (at < lines.length - 1 && lines[at] !== '') at++;
  lines.splice(at + 1, 0, ...declaration(createRandom(seed)).split('\n').slice(0, -1));
  writeFileSync(full, lines.join('\n'));
}
