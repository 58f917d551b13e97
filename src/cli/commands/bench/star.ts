// star-ask bench star: Star Attention speed figures as ratios measured in one run, on one backend.
//  1. Phase 1 (context encoding) time, global causal prefill vs star, for each context size, with
//     chunk = n/4 (the paper's setting) and a fixed chunk.
//  2. Time to first token of `ask` with a cold KV cache vs a warm one (same repository and question).
//  3. Re-index after a one-file edit vs a full index of the same repository.
//  Phase 1 of the fixed chunk also runs one block per forward, to show what batching several blocks
//  per forward (the default) gains on this backend.
// Defaults are small (this must run on a 2-core CI machine); --sizes and --repo-tokens scale it up.
import { mkdtempSync, rmSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LoadedModel } from '../../../engine/model/types';
import { createRandom } from '../../../engine/runtime/random';
import { Transformer } from '../../../engine/runtime/transformer';
import { encodeContext } from '../../../engine/star/context';
import { fixedLayout } from '../../../engine/star/layout';
import { LocalStarHost } from '../../../engine/star/localHost';
import { shiftBlockKv } from '../../../engine/star/shift';
import { createBackend, type BackendKind } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { askRepository, indexRepository } from '../../../node/star/starRepository';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import { benchModelOption, command, parseCommand } from '../../help';

const COMMAND = command({
  usage: 'star-ask bench star [options]',
  options: {
    ...benchModelOption,
    backend: { type: 'string', default: 'cpu' },
    sizes: { type: 'string', default: '1024,2048' },
    'fixed-chunk': { type: 'string', default: '256' },
    // The repository, question and answer must fit the test model's context (2048 tokens): ask refuses otherwise.
    'repo-tokens': { type: 'string', default: '1280' },
    'repo-chunk': { type: 'string', default: '256' },
  },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backend = backendOption(values.backend);
  const sizes = values.sizes!.split(',').map((s) => intOption(s.trim(), '--sizes'));
  const fixedChunk = intOption(values['fixed-chunk'], '--fixed-chunk');
  const model = await openModel(resolve(values.model!));
  try {
    const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };

    const phase1 = await benchPhase1(model, backend, sizes, fixedChunk, log);
    const repo = await benchRepository(model, backend, intOption(values['repo-tokens'], '--repo-tokens'), intOption(values['repo-chunk'], '--repo-chunk'), log);
    const result = { model: model.name, backend, phase1, repository: repo };
    if (values.json) printJson(result);
    else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  } finally {
    await model.close();
  }
}

interface Phase1Row {
  contextTokens: number;
  globalMs: number;
  starQuarterChunk: number;
  starQuarterMs: number;
  starFixedChunk: number;
  starFixedMs: number;
  /** globalMs / starMs: above 1 means star encodes faster. */
  speedupQuarter: number;
  speedupFixed: number;
  /** Star, fixed chunk, one block per forward (the rows above batch several blocks per forward). */
  starFixedOneByOneMs: number;
  /** starFixedOneByOneMs / starFixedMs: above 1 means batching blocks is faster. */
  batchSpeedupFixed: number;
}

async function benchPhase1(model: LoadedModel, kind: BackendKind, sizes: number[], fixedChunk: number, log: (s: string) => void): Promise<Phase1Row[]> {
  const backend = await createBackend(kind);
  try {
    const t = await Transformer.create(model, backend);
    const random = createRandom(7);
    const vocab = t.config.vocabSize;
    const idsFor = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 && model.tokenizer.bos !== undefined ? model.tokenizer.bos : 3 + Math.floor(random() * (vocab - 3))));
    // Warm-up (JIT, pipeline creation) on a small context, untimed.
    await timeGlobal(t, idsFor(256));
    await timeStar(t, idsFor(256), 64);
    await timeStar(t, idsFor(256), 64, 1);
    const rows: Phase1Row[] = [];
    for (const n of sizes) {
      const ids = idsFor(n);
      const globalMs = await timeGlobal(t, ids);
      const quarter = Math.max(1, Math.floor(n / 4));
      const starQuarterMs = await timeStar(t, ids, quarter);
      const starFixedMs = await timeStar(t, ids, fixedChunk);
      const starFixedOneByOneMs = await timeStar(t, ids, fixedChunk, 1);
      const row = { contextTokens: n, globalMs, starQuarterChunk: quarter, starQuarterMs, starFixedChunk: fixedChunk, starFixedMs,
        speedupQuarter: globalMs / starQuarterMs, speedupFixed: globalMs / starFixedMs,
        starFixedOneByOneMs, batchSpeedupFixed: starFixedOneByOneMs / starFixedMs };
      log(`phase 1, ${n} tokens: global ${globalMs.toFixed(0)} ms, star(n/4) ${starQuarterMs.toFixed(0)} ms (x${row.speedupQuarter.toFixed(2)}), star(${fixedChunk}) ${starFixedMs.toFixed(0)} ms (x${row.speedupFixed.toFixed(2)}; one block per forward ${starFixedOneByOneMs.toFixed(0)} ms)`);
      rows.push(row);
    }
    return rows;
  } finally {
    backend.destroy();
  }
}

/** One causal prefill of all ids, 256 rows per forward. */
async function timeGlobal(t: Transformer, ids: number[]): Promise<number> {
  const cache = t.newCache(ids.length);
  try {
    const t0 = performance.now();
    for (let s = 0; s < ids.length; s += 256) {
      const e = Math.min(ids.length, s + 256);
      const positions = Int32Array.from({ length: e - s }, (_, i) => s + i);
      await t.forward(Int32Array.from(ids.slice(s, e)), positions, cache, { logits: 'none' });
    }
    await t.backend.flush();
    return performance.now() - t0;
  } finally {
    t.releaseCache(cache);
  }
}

/**
 * Star phase 1 of all ids (anchor = first chunk), one host, no disk cache: the anchor and every block,
 * several blocks per forward unless `blocksPerBatch` is 1.
 */
async function timeStar(t: Transformer, ids: number[], chunk: number, blocksPerBatch?: number): Promise<number> {
  const layout = fixedLayout(ids, ids.length, chunk);
  const host = new LocalStarHost(t, blocksPerBatch === 1 ? { maxBatchRows: 1 } : {});
  const c = t.config;
  try {
    const t0 = performance.now();
    await encodeContext({
      modelIdentity: 'bench', anchor: layout.anchor, blocks: layout.blocks, hosts: [host],
      kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers, blocksPerBatch,
      shift: (kv, s) => shiftBlockKv(t.backend, kv, s, c.headDim, c.rope),
    });
    await t.backend.flush();
    return performance.now() - t0;
  } finally {
    await host.dispose();
  }
}

async function benchRepository(model: LoadedModel, backend: BackendKind, tokens: number, chunk: number, log: (s: string) => void) {
  const repo = mkdtempSync(join(tmpdir(), 'star-bench-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-bench-kv-'));
  try {
    // Files of about chunk/2 tokens of plain story text, each measured with the model's tokenizer.
    const files = Math.max(4, Math.round(tokens / (chunk / 2)));
    mkdirSync(join(repo, 'docs'));
    for (let i = 0; i < files; i++) writeFileSync(join(repo, 'docs', `story${String(i).padStart(3, '0')}.txt`), storyText(model, i, Math.floor(chunk / 2)));
    const base = { repo, model, chunkSize: chunk, backend, cacheDir };
    const question = 'What did the little dog find?';

    const cold = await askRepository({ ...base, question, maxTokens: 4 });
    const warm = await askRepository({ ...base, question, maxTokens: 4 });
    log(`ask: ttft cold ${cold.stats.ttftMs.toFixed(0)} ms (${cold.stats.blocksEncoded} blocks encoded), warm ${warm.stats.ttftMs.toFixed(0)} ms (${warm.stats.blocksReused} reused)`);

    rmSync(cacheDir, { recursive: true, force: true });
    let t0 = performance.now();
    const full = await indexRepository(base);
    const fullMs = performance.now() - t0;
    appendFileSync(join(repo, 'docs', `story${String(Math.floor(files / 2)).padStart(3, '0')}.txt`), 'Then the dog went home.\n');
    t0 = performance.now();
    const edit = await indexRepository(base);
    const editMs = performance.now() - t0;
    log(`index: full ${fullMs.toFixed(0)} ms (${full.blocksEncoded} blocks), after a one-file edit ${editMs.toFixed(0)} ms (${edit.blocksEncoded} encoded, ${edit.blocksShifted} re-rotated)`);
    return {
      files,
      blocks: full.blocks,
      contextTokens: full.contextTokens,
      chunk,
      ttftColdMs: cold.stats.ttftMs,
      ttftWarmMs: warm.stats.ttftMs,
      ttftSpeedup: cold.stats.ttftMs / warm.stats.ttftMs,
      fullIndexMs: fullMs,
      fullIndexEncodeMs: full.encodeMs,
      editIndexMs: editMs,
      editIndexEncodeMs: edit.encodeMs,
      editBlocksEncoded: edit.blocksEncoded,
      editBlocksShifted: edit.blocksShifted,
      reindexSpeedup: fullMs / editMs,
    };
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

const WORDS = ['the', 'little', 'dog', 'ran', 'to', 'park', 'and', 'found', 'a', 'red', 'ball', 'she', 'was', 'happy', 'sun', 'tree', 'cat', 'friend', 'played', 'home'];

/** Random words from a small story vocabulary, up to about `tokens` tokens. */
function storyText(model: LoadedModel, seed: number, tokens: number): string {
  const random = createRandom(seed + 1);
  let text = '';
  for (let i = 0; ; i++) {
    const next = text + WORDS[Math.floor(random() * WORDS.length)]! + (i % 12 === 11 ? '.\n' : ' ');
    if (model.tokenizer.encode(next, { addBos: false }).length > tokens) break;
    text = next;
  }
  return text + '\n';
}
