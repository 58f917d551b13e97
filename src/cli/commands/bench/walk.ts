// star-ask bench walk: the walk and the tokenization of a large generated repository: thousands of files in deep
// folders, very long lines, Latin-1 and UTF-16 text. Reports the time and the peak memory (max RSS) of each step:
// walkRepository (list, ignore rules, read, classify, decode) and buildRepoLayout's packing (tokenize every file,
// cut into blocks), then a session's re-index of the unchanged repository (the walk, pieces from its EncodeCache).
// Phase 1 is not run (bench star measures it); `--keep` leaves the repository for `index`/`ask`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { openModel } from '../../../node/openModel';
import { walkRepository } from '../../../node/repo/walkRepository';
import { buildRepoLayout } from '../../../node/star/repoLayout';
import { EncodeCache } from '../../../engine/tokenizer/encodeCache';
import { round } from '../../figures';
import { printJson } from '../../output';
import { benchModelOption, command, parseCommand } from '../../help';
import { intOption } from '../options';

const COMMAND = command({
  usage: 'star-ask bench walk [options]',
  options: {
    ...benchModelOption,
    files: { type: 'string', default: '3000' },
    depth: { type: 'string', default: '24' },
    'chunk-size': { type: 'string', default: '512' },
    keep: { type: 'boolean', default: false },
  },
  notes: { files: 'files to generate', depth: 'deepest folder nesting', keep: 'leave the generated repository (its path is printed)' },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const files = intOption(values.files, '--files');
  const depth = intOption(values.depth, '--depth');
  const chunkSize = intOption(values['chunk-size'], '--chunk-size');
  const repo = mkdtempSync(join(tmpdir(), 'star-bench-repo-'));
  try {
    const generated = generateRepository(repo, files, depth);
    const model = await openModel(resolve(values.model!));
    try {
      const mib = () => round(process.resourceUsage().maxRSS / 1024, 1);
      const rssBefore = mib();
      let t = performance.now();
      const walk = await walkRepository([repo]);
      const walkMs = performance.now() - t;
      const rssAfterWalk = mib();
      t = performance.now();
      // The walk again, then tokenizing and packing every file: what index and ask do before phase 1. The longest
      // stall of the event loop meanwhile is what the extension host (where the extension runs this) would feel.
      const stalls = monitorEventLoopDelay({ resolution: 5 });
      stalls.enable();
      const layout = await buildRepoLayout({ repo, model, chunkSize });
      // The histogram records a stall when its timer fires late: give it that turn before reading it.
      await new Promise((r) => setTimeout(r, 0));
      stalls.disable();
      const layoutMs = performance.now() - t;
      // A session's next index (before every question, after every edit): the walk again, with the pieces of the
      // previous layout remembered (RepoSession's EncodeCache), so only changed text is encoded.
      const encodes = new EncodeCache();
      const tokenizer = encodes.wrap(model.tokenizer);
      await buildRepoLayout({ repo, model, chunkSize, tokenizer });
      encodes.next();
      const misses = encodes.misses;
      t = performance.now();
      await buildRepoLayout({ repo, model, chunkSize, tokenizer });
      const reindexMs = performance.now() - t;
      const result = {
        model: model.name,
        repository: { ...generated, path: values.keep ? repo : undefined },
        kept: walk.files.length,
        skippedByReason: layout.skippedByReason,
        contextTokens: layout.layout.contextLength,
        blocks: layout.layout.blocks.length,
        walk: { ms: Math.round(walkMs), filesPerSec: Math.round(files / (walkMs / 1000)) },
        walkAndTokenize: {
          ms: Math.round(layoutMs), tokensPerSec: Math.round(layout.layout.contextLength / (layoutMs / 1000)),
          maxEventLoopStallMs: Math.round(stalls.max / 1e6),
        },
        reindexUnchanged: { ms: Math.round(reindexMs), piecesEncoded: encodes.misses - misses },
        maxRssMiB: { beforeWalk: rssBefore, afterWalk: rssAfterWalk, afterTokenize: mib() },
      };
      if (values.json) printJson(result);
      else {
        process.stdout.write(`${files} files (${generated.bytes} bytes, folders ${generated.deepest} deep), ${result.kept} kept, skipped ${JSON.stringify(result.skippedByReason)}\n`);
        process.stdout.write(`walk ${result.walk.ms} ms; walk + tokenize + pack ${result.walkAndTokenize.ms} ms (${result.contextTokens} tokens, ${result.blocks} blocks, ` +
          `longest event-loop stall ${result.walkAndTokenize.maxEventLoopStallMs} ms); ` +
          `a session's re-index of the unchanged repository ${result.reindexUnchanged.ms} ms (${result.reindexUnchanged.piecesEncoded} pieces encoded)\n`);
        process.stdout.write(`max RSS: ${rssBefore} MiB before, ${rssAfterWalk} MiB after the walk, ${result.maxRssMiB.afterTokenize} MiB after tokenizing\n`);
        if (values.keep) process.stdout.write(`repository kept at ${repo}\n`);
      }
      return 0;
    } finally {
      await model.close();
    }
  } finally {
    if (!values.keep) rmSync(repo, { recursive: true, force: true });
  }
}

/**
 * Seeded and deterministic. Of every 50 files: 1 holds a 200 KB line (skipped as minified), 1 a 4 KB line (read),
 * 2 are Latin-1, 1 is UTF-16 with a BOM; the others are code-like text. Every 25th file sits `depth` folders deep.
 */
function generateRepository(root: string, files: number, depth: number): { files: number; bytes: number; deepest: number } {
  let seed = 1;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const words = ['value', 'count', 'index', 'result', 'buffer', 'config', 'handler', 'stream', 'parse', 'token'];
  const word = () => words[Math.floor(random() * words.length)]!;
  const codeLine = () => `  const ${word()}${Math.floor(random() * 100)} = ${word()}(${word()}, ${Math.floor(random() * 1000)});`;
  let bytes = 0;
  let deepest = 0;
  for (let i = 0; i < files; i++) {
    const levels = i % 25 === 0 ? depth : 1 + Math.floor(random() * 4);
    const dir = Array.from({ length: levels }, (_, l) => `d${l}_${Math.floor(random() * 6)}`).join('/');
    deepest = Math.max(deepest, levels);
    mkdirSync(join(root, dir), { recursive: true });
    const lines = Array.from({ length: 10 + Math.floor(random() * 60) }, codeLine).join('\n') + '\n';
    let content: Uint8Array;
    let name = `f${i}.ts`;
    switch (i % 50) {
      case 7: content = Buffer.from(`export const data = "${'x'.repeat(200_000)}";\n`); break;
      case 8: content = Buffer.from(`${lines}export const table = [${Array.from({ length: 700 }, (_, k) => k).join(',')}];\n`); break;
      case 9: case 10: content = Buffer.from(`// caf\u00e9 na\u00efve r\u00e9sum\u00e9\n${lines}`, 'latin1'); name = `f${i}.txt`; break;
      case 11: content = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`// \u00fcber \u2013 utf-16\n${lines}`, 'utf16le')]); name = `f${i}.txt`; break;
      default: content = Buffer.from(lines);
    }
    writeFileSync(join(root, dir, name), content);
    bytes += content.length;
  }
  return { files, bytes, deepest };
}
