// star-ask bench needle: needle in a repository. A fact (`const LEGACY_MIRROR_PORT = 48213;`) is planted in one file
// of a real repository nobody here wrote (a package of npm's own node_modules by default), the model is asked for
// it, and an answer scores when it contains the value. Grid: repository sizes x needle depths (start, middle, end
// of the repository, in walk order) x modes; per cell, --needles different facts are planted together at that
// depth (one repository, one phase 1) and each is asked for in turn. With --plant together, every depth's needles
// (different names) are planted in one repository per size, so each star mode runs one phase 1 per size instead of
// one per depth: the other needles are then distractors, and only the first question of a size is cold.
//
// Modes are named entries of NEEDLE_MODES, each mapped to the options of one answer path: `global` is
// `ask --mode global` (one causal prefill of the whole prompt), `star-*` the ordinary Star Attention path with a
// chunk size rule and an anchor rule, `llama.cpp` the same token sequence as `global` prefilled and decoded
// greedily by llama.cpp (one sequence kept across questions: only the tokens after the shared prefix are prefilled). A new way of choosing what the question sees (e.g. attention- or lexical-ranked blocks
// for repositories larger than the context) is one more entry.
// Two ablations of the anchor, on the same prompt tokens and positions as the star mode they vary:
//   `-noanchor`   the paper's: every file block encoded after the prompt's first token only, not after the anchor
//                 (./bareBlocks.ts); the chat prefix and overview are still in the context for the question.
//   `-nooverview` the anchor cut to the chat prefix (anchor size 1): blocks still see the system text and the
//                 user header, not the repository overview; the prompt then has no overview at all.
//
// Beyond the context (`select-*`, `truncate`): `select-lexical` / `select-attention` are the Star path with that
// `--selection` ranking. Each question is asked twice: cold (the blocks it reads that no earlier question stored are
// encoded on demand) and warm (every block it reads is on disk); the warm answer and time are the cell's. All their
// cells share one disk cache (`--cache-dir`, kept between runs): at local positions a block's KV depends only on its
// tokens and the anchor, so a repository that is a prefix of a larger one, or differs from it only in the needle's
// file, reuses its blocks, and a question that selects the same blocks at another size or depth encodes nothing. The anchor's overview lists the directories to depth 2, so `--under vendor/npm` writes every file two
// folders deep: the overview, hence the anchor and every cache key, is then the same at every size and depth.
// `truncate` is what a plain llama.cpp user gets: the anchor and the first blocks that fit, prefilled by llama.cpp.
// `global` and `llama.cpp` run only where the repository, the question and the answer fit the context.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execPath } from 'node:process';
import { EngineError } from '../../../engine/errors';
import { selectionAnswerReserve, type SelectionMode } from '../../../engine/star/selection/blockSelection';
import { planSelection } from '../../../engine/star/selection/plan';
import type { LoadedModel } from '../../../engine/model/types';
import { createRandom } from '../../../engine/runtime/random';
import type { BackendKind } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { walkRepository } from '../../../node/repo/walkRepository';
import { buildRepoLayout } from '../../../node/star/repoLayout';
import { askRepository } from '../../../node/star/starRepository';
import { median, round } from '../../figures';
import { command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import { modelOrDefault } from '../fetchModel';
import { askBareBlocks } from './bareBlocks';
import { LLAMA_CPP_INSTALL, LLAMA_CPP_KV, LLAMA_CPP_PREFILL_THREADS, loadLlamaCppModel, type LlamaCppModel } from './llamaCpp';

/** One way of answering, as the options it gives the answer path. */
export interface NeedleMode {
  readonly name: string;
  readonly summary: string;
  readonly path: 'star' | 'global' | 'llama.cpp';
  /** Chunk size for a repository of n tokens (global and llama.cpp: one block, so no file is split). */
  chunkSize(n: number, contextLength: number): number;
  /** Anchor size for that chunk size (undefined: the default, the chunk size). */
  anchorSize?(chunkSize: number): number;
  /** What a star mode's file blocks are encoded after: the anchor (default), or the prompt's first token alone (./bareBlocks.ts). */
  readonly blocksAfter?: 'anchor' | 'first-token';
  /** Star path: the ranking of blocks when the repository does not fit (`ask --selection`); its cells index first. */
  readonly selection?: SelectionMode;
  /** llama.cpp path: only the anchor and the first blocks that fit the context (a plain prompt cut at the context). */
  readonly truncate?: boolean;
}

const star = (name: string, summary: string, chunk: (n: number) => number, anchor?: (c: number) => number, blocksAfter?: NeedleMode['blocksAfter']): NeedleMode =>
  ({ name, summary, path: 'star', chunkSize: (n) => Math.max(64, chunk(n)), anchorSize: anchor, blocksAfter });
const prefixOnly = () => 1;
/** Chunk of the modes beyond the context: 512 did as well as the whole prompt in the 1K grid (README), and small blocks let a ranking pick finely. */
const SELECT_CHUNK = 512;
const whole = (_n: number, ctx: number) => ctx;

export const NEEDLE_MODES: readonly NeedleMode[] = [
  { name: 'global', summary: 'ask --mode global: one causal prefill of the whole prompt', path: 'global', chunkSize: whole },
  { name: 'llama.cpp', summary: 'llama.cpp prefilling the same tokens as global, greedy decoding', path: 'llama.cpp', chunkSize: whole },
  star('star-n4', 'Star Attention, chunk = n/4 (the paper\'s setting), anchor = chunk', (n) => Math.ceil(n / 4)),
  star('star-n4-noanchor', 'chunk = n/4, each block encoded after the prompt\'s first token only (no anchor; the paper\'s ablation)', (n) => Math.ceil(n / 4), undefined, 'first-token'),
  star('star-n4-nooverview', 'chunk = n/4, anchor = the chat prefix only (no repository overview)', (n) => Math.ceil(n / 4), prefixOnly),
  ...[512, 1024, 2048].flatMap((c) => [
    star(`star-${c}`, `Star Attention, fixed chunk ${c}, anchor = chunk`, () => c),
    star(`star-${c}-noanchor`, `fixed chunk ${c}, each block encoded after the prompt's first token only (no anchor)`, () => c, undefined, 'first-token'),
    star(`star-${c}-nooverview`, `fixed chunk ${c}, anchor = the chat prefix only (no repository overview)`, () => c, prefixOnly),
  ]),
  ...(['lexical', 'attention'] as const).map((selection): NeedleMode =>
    ({ ...star(`select-${selection}`, `Star Attention, chunk ${SELECT_CHUNK}, anchor = chunk, --selection ${selection} beyond the context (asked cold, then warm)`, () => SELECT_CHUNK), selection })),
  { name: 'truncate', summary: `llama.cpp over the anchor and the first blocks of ${SELECT_CHUNK} that fit the context (a prompt cut at the context)`, path: 'llama.cpp', chunkSize: () => SELECT_CHUNK, truncate: true },
];

const DEPTHS = { start: 0, middle: 0.5, end: 1 } as const;
type Depth = keyof typeof DEPTHS;
const NAMES = ['LEGACY_MIRROR_PORT', 'FALLBACK_SHARD_COUNT', 'ARCHIVE_RETRY_LIMIT', 'MAX_INDEX_BATCH', 'STALE_LOCK_SECONDS', 'QUOTA_WINDOW_MS', 'LEGACY_TUNNEL_ID', 'MIRROR_BACKOFF_BASE'];

const COMMAND = command({
  usage: 'star-ask bench needle [options]',
  options: {
    model: { type: 'string' },
    source: { type: 'string' },
    sizes: { type: 'string', default: '1024' },
    depths: { type: 'string', default: 'start,middle,end' },
    modes: { type: 'string', default: 'global,star-n4,llama.cpp' },
    needles: { type: 'string', default: '2' },
    'max-tokens': { type: 'string', default: '16' },
    backend: { type: 'string', default: 'cpu' },
    seed: { type: 'string', default: '1' },
    plant: { type: 'string', default: 'per-depth' },
    under: { type: 'string' },
    'cache-dir': { type: 'string' },
  },
  notes: {
    model: 'a GGUF file (default: SmolLM2-135M-Instruct, fetched once)',
    source: "a folder of real code copied (in walk order, cut at --sizes tokens) into each test repository (default: npm's own node_modules/minipass-fetch, beside this Node)",
    sizes: 'repository sizes in tokens', depths: 'where the needle sits: start, middle, end', needles: 'needles per cell',
    backend: 'cpu, cpu-ref, webgpu or auto',
    plant: 'per-depth (a repository per depth) or together (every depth\'s needles in one repository per size: one phase 1 per size and mode)',
    under: 'a folder (e.g. vendor/npm) each test repository holds the source\'s files under, so the overview in the anchor is the same at every size',
    'cache-dir': 'the disk KV cache the select-* cells share, kept (default: a temporary one for the run)',
  },
  about: `modes: ${NEEDLE_MODES.map((m) => m.name).join(', ')}\nllama.cpp side: ${LLAMA_CPP_INSTALL}`,
});

export interface NeedleCell {
  readonly repoTokens: number;
  readonly depth: Depth;
  readonly mode: string;
  readonly correct: number;
  readonly asked: number;
  readonly accuracy: number;
  /** Median time to first token over the needles (star: the first needle's includes phase 1, the others are warm; each answer has its own). */
  readonly ttftMs: number;
  /** The first needle's time to first token (star: phase 1 included) and the median of the others' (star: warm). */
  readonly ttftFirstMs: number;
  readonly ttftRestMs: number;
  readonly contextTokens: number;
  /** select-*: the cold asks (median time to first token, blocks encoded on demand in all), and one walk + tokenize + pack of the repository (part of every ask's time). */
  readonly cold?: { readonly ttftMs: number; readonly encodedOnDemand: number; readonly layoutMs: number; readonly sameAnswers: boolean };
  /** select-*: median blocks attended, KV read per question (attended + ranking candidates, as stored), of how many blocks. */
  readonly attended?: { readonly blocks: number; readonly of: number; readonly kvReadBytes: number; readonly ranking: string };
  readonly answers: readonly { readonly needle: string; readonly value: string; readonly answer: string; readonly correct: boolean; readonly ttftMs: number }[];
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backend = backendOption(values.backend);
  const sizes = values.sizes!.split(',').map((s) => intOption(s.trim(), '--sizes', 64));
  const depths = values.depths!.split(',').map((d) => {
    if (!(d in DEPTHS)) throw new EngineError(`--depths: ${d} is not one of ${Object.keys(DEPTHS).join(', ')}`);
    return d as Depth;
  });
  const modes = values.modes!.split(',').map((name) => {
    const m = NEEDLE_MODES.find((x) => x.name === name.trim());
    if (!m) throw new EngineError(`--modes: ${name} is not one of ${NEEDLE_MODES.map((x) => x.name).join(', ')}`);
    return m;
  });
  const needles = intOption(values.needles, '--needles', 1, NAMES.length);
  const plant = values.plant!;
  if (plant !== 'per-depth' && plant !== 'together') throw new EngineError(`--plant: ${plant} is not per-depth or together`);
  if (plant === 'together' && needles * depths.length > NAMES.length) throw new EngineError(`--plant together: --needles x depths is more than the ${NAMES.length} needle names`);
  const maxTokens = intOption(values['max-tokens'], '--max-tokens');
  const source = resolve(values.source ?? defaultSource());
  const under = values.under ?? '';
  const sharedCache = values['cache-dir'] ? resolve(values['cache-dir']) : mkdtempSync(join(tmpdir(), 'star-needle-shared-'));
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  const modelPath = resolve(await modelOrDefault(values.model, values.json));
  const model = await openModel(modelPath);
  const peer = modes.some((m) => m.path === 'llama.cpp') ? await loadLlamaCppModel(modelPath) : undefined;
  if (modes.some((m) => m.path === 'llama.cpp') && !peer) log(`llama.cpp: not installed (${LLAMA_CPP_INSTALL}); its cells are skipped`);
  try {
    const cells: NeedleCell[] = [];
    const random = createRandom(intOption(values.seed, '--seed', 0));
    const runMode = async (repo: string, size: number, depth: Depth, mode: NeedleMode, facts: readonly Fact[], cacheDir?: string) => {
      if (mode.path === 'llama.cpp' && !peer) return;
      if (mode.path !== 'star' && !mode.truncate && !(await fitsContext(model, repo, mode, size, question(facts.reduce((a, b) => (b.name.length > a.name.length ? b : a)).name), maxTokens))) {
        log(`${size} tokens, ${depth}, ${mode.name}: skipped (the repository, the question and the answer do not fit the context)`);
        return;
      }
      const cell = await runCell(model, peer, { repo, size, depth, mode, facts, maxTokens, backend, cacheDir, sharedCache });
      log(`${size} tokens, ${depth}, ${mode.name}: ${cell.correct}/${cell.asked}, ttft ${cell.ttftFirstMs} / ${cell.ttftRestMs} ms` +
        (cell.cold ? `, cold ${cell.cold.ttftMs} ms (${cell.cold.encodedOnDemand} blocks encoded${cell.cold.sameAnswers ? '' : ', a different answer'}), walk + pack ${cell.cold.layoutMs} ms` : '') +
        (cell.attended ? `, ${cell.attended.blocks} of ${cell.attended.of} blocks, ${(cell.attended.kvReadBytes / 2 ** 20).toFixed(1)} MiB KV read` : '') +
        ` (${cell.answers.map((a) => JSON.stringify(a.answer.slice(0, 60))).join(' | ')})`);
      cells.push(cell);
    };
    for (const size of sizes) {
      const plants = depths.map((depth, d) => {
        const names = plant === 'together' ? NAMES.slice(d * needles, (d + 1) * needles) : NAMES.slice(0, needles);
        return { depth, facts: names.map((name) => ({ name, value: String(10000 + Math.floor(random() * 89999)) })) };
      });
      if (plant === 'together') {
        const repo = mkdtempSync(join(tmpdir(), 'star-needle-'));
        try {
          await plantNeedles(join(repo, under), source, model, size, plants);
          for (const mode of modes) {
            // One disk cache per mode and size: the star modes encode the repository once, for every depth.
            const cacheDir = mkdtempSync(join(tmpdir(), 'star-needle-kv-'));
            try {
              for (const { depth, facts } of plants) await runMode(repo, size, depth, mode, facts, cacheDir);
            } finally {
              rmSync(cacheDir, { recursive: true, force: true });
            }
          }
        } finally {
          rmSync(repo, { recursive: true, force: true });
        }
        continue;
      }
      for (const { depth, facts } of plants) {
        const repo = mkdtempSync(join(tmpdir(), 'star-needle-'));
        try {
          await plantNeedles(join(repo, under), source, model, size, [{ depth, facts }]);
          for (const mode of modes) await runMode(repo, size, depth, mode, facts);
        } finally {
          rmSync(repo, { recursive: true, force: true });
        }
      }
    }
    const result = { model: model.name, backend, source, needles, plant, maxTokens, modes: modes.map((m) => ({ name: m.name, summary: m.summary })),
      llamaCpp: peer ? { installed: true, device: peer.device } : { installed: false, install: LLAMA_CPP_INSTALL }, cells };
    if (values.json) printJson(result);
    else process.stdout.write(table(cells, modes));
    return 0;
  } finally {
    await peer?.dispose();
    await model.close();
    if (!values['cache-dir']) rmSync(sharedCache, { recursive: true, force: true });
  }
}

/** Whether the whole prompt (anchor, blocks, question) and the answer fit the model's context, for global and llama.cpp. */
async function fitsContext(model: LoadedModel, repo: string, mode: NeedleMode, size: number, longestQuestion: string, maxTokens: number): Promise<boolean> {
  const { layout } = await buildRepoLayout({ repo, model, chunkSize: mode.chunkSize(size, model.config.contextLength), anchorSize: mode.anchorSize?.(mode.chunkSize(size, model.config.contextLength)), question: longestQuestion });
  return layout.contextLength + layout.query.length + maxTokens <= model.config.contextLength;
}

/**
 * npm's own copy of minipass-fetch (real code nobody here wrote, beside the running Node): about 11K tokens, so a
 * repository up to the model's context can be cut from it, and no README, so the overview (and with it the anchor)
 * is the same few dozen tokens in every mode.
 */
function defaultSource(): string {
  return resolve(dirname(execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'minipass-fetch');
}

type Fact = { readonly name: string; readonly value: string };

/** One depth's needles in a repository of its own. */
export async function writeNeedleRepository(repo: string, source: string, model: LoadedModel, tokens: number, depth: Depth, facts: readonly Fact[]): Promise<void> {
  return plantNeedles(repo, source, model, tokens, [{ depth, facts }]);
}

/**
 * Copies `source`'s text files (walk order) into `repo` until their contents reach `tokens` (the last one cut at a
 * line), then plants every fact as a line of code at its `depth` of those tokens: in the file holding that point, at
 * the line nearest to it (points found on the unplanted text, so one depth's lines do not move another's).
 */
export async function plantNeedles(repo: string, source: string, model: LoadedModel, tokens: number, plants: readonly { depth: Depth; facts: readonly Fact[] }[]): Promise<void> {
  const walked = await walkRepository([source]);
  const count = (t: string) => model.tokenizer.encode(t, { addBos: false, parseSpecial: false }).length;
  const kept: { path: string; lines: string[]; tokens: number }[] = [];
  let total = 0;
  for (const f of walked.files) {
    if (total >= tokens) break;
    const text = f.text;
    let lines = text.split('\n');
    let n = count(text);
    if (total + n > tokens) {
      // Cut at a line: bisect the longest prefix of lines that fits.
      let lo = 0, hi = lines.length;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (total + count(lines.slice(0, mid).join('\n')) <= tokens) lo = mid;
        else hi = mid;
      }
      lines = lines.slice(0, Math.max(1, lo));
      n = count(lines.join('\n'));
    }
    kept.push({ path: f.path, lines, tokens: n });
    total += n;
  }
  if (total < tokens * 0.9) throw new EngineError(`has only ${total} tokens of text, fewer than --sizes ${tokens}`, source);
  const points = plants.map(({ depth, facts }) => {
    const target = DEPTHS[depth] * total;
    let at = 0;
    let file = kept[kept.length - 1]!;
    for (const f of kept) {
      if (at + f.tokens >= target) { file = f; break; }
      at += f.tokens;
    }
    const line = Math.round(Math.min(1, Math.max(0, (target - at) / Math.max(1, file.tokens))) * file.lines.length);
    return { file, line, lines: facts.map((f) => `const ${f.name} = ${f.value};`) };
  });
  // Deepest first within a file, so each splice leaves the earlier points' line numbers as they were.
  for (const p of [...points].sort((a, b) => b.line - a.line)) p.file.lines.splice(p.line, 0, ...p.lines);
  for (const f of kept) {
    mkdirSync(dirname(join(repo, f.path)), { recursive: true });
    writeFileSync(join(repo, f.path), f.lines.join('\n'));
  }
}

interface CellOptions {
  readonly repo: string;
  readonly size: number;
  readonly depth: Depth;
  readonly mode: NeedleMode;
  readonly facts: readonly { name: string; value: string }[];
  readonly maxTokens: number;
  readonly backend: BackendKind;
  /** Shared disk KV cache (--plant together); a fresh one for the cell when absent. */
  readonly cacheDir?: string;
  /** The disk cache of the select-* cells (shared by every cell). */
  readonly sharedCache: string;
}

const question = (name: string) => `What is the value of ${name}?`;

async function runCell(model: LoadedModel, peer: LlamaCppModel | undefined, o: CellOptions): Promise<NeedleCell> {
  const shared = o.mode.selection !== undefined;
  const cacheDir = shared ? o.sharedCache : (o.cacheDir ?? mkdtempSync(join(tmpdir(), 'star-needle-kv-')));
  try {
    const answers: NeedleCell['answers'][number][] = [];
    const ttfts: number[] = [];
    const reads: { blocks: number; of: number; kvReadBytes: number; ranking: string }[] = [];
    const colds: { ttftMs: number; encoded: number; answer: string }[] = [];
    let contextTokens = 0;
    for (const fact of o.facts) {
      if (shared) {
        const c = await answerWith(model, peer, o.mode, { repo: o.repo, repoTokens: o.size, question: question(fact.name), maxTokens: o.maxTokens, backend: o.backend, cacheDir });
        colds.push({ ttftMs: c.ttftMs, encoded: c.encodedOnDemand ?? 0, answer: c.answer });
      }
      const r = await answerWith(model, peer, o.mode, { repo: o.repo, repoTokens: o.size, question: question(fact.name), maxTokens: o.maxTokens, backend: o.backend, cacheDir });
      ttfts.push(r.ttftMs);
      contextTokens = r.contextTokens;
      if (r.attended) reads.push(r.attended);
      answers.push({ needle: fact.name, value: fact.value, answer: r.answer, correct: r.answer.includes(fact.value), ttftMs: round(r.ttftMs) });
    }
    const correct = answers.filter((a) => a.correct).length;
    let cold: NeedleCell['cold'];
    if (shared) {
      const t0 = performance.now();
      await buildRepoLayout({ repo: o.repo, model, chunkSize: SELECT_CHUNK, question: question(o.facts[0]!.name) });
      cold = { ttftMs: round(median(colds.map((c) => c.ttftMs))), encodedOnDemand: colds.reduce((n, c) => n + c.encoded, 0), layoutMs: round(performance.now() - t0),
        sameAnswers: colds.every((c, i) => c.answer === answers[i]!.answer) };
    }
    const attended = reads.length
      ? { blocks: median(reads.map((x) => x.blocks)), of: reads[0]!.of, kvReadBytes: median(reads.map((x) => x.kvReadBytes)), ranking: reads[0]!.ranking }
      : undefined;
    return { repoTokens: o.size, depth: o.depth, mode: o.mode.name, correct, asked: answers.length, accuracy: round(correct / answers.length, 3),
      ttftMs: round(median(ttfts)), ttftFirstMs: round(ttfts[0]!), ttftRestMs: round(ttfts.length > 1 ? median(ttfts.slice(1)) : ttfts[0]!), contextTokens,
      ...(cold ? { cold } : {}), ...(attended ? { attended } : {}), answers };
  } finally {
    if (!shared && !o.cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** The shared cache holds every block of the largest repository (SmolLM2: 23,040 bytes a token in f16, 6 GB at 262K tokens). */
const SHARED_CACHE_BYTES = 64 * 2 ** 30;

export interface AnswerRequest {
  readonly repo: string;
  /** Tokens of the repository's files, for the mode's chunk size rule. */
  readonly repoTokens: number;
  readonly question: string;
  readonly maxTokens: number;
  readonly backend: BackendKind;
  /** The disk KV cache of star modes (kept between the questions of one repository). */
  readonly cacheDir: string;
}

/** One question answered the way `mode` says (greedy): the answer text, time to first token, context tokens. */
export async function answerWith(model: LoadedModel, peer: LlamaCppModel | undefined, mode: NeedleMode, o: AnswerRequest): Promise<{
  answer: string; ttftMs: number; contextTokens: number; attended?: { blocks: number; of: number; kvReadBytes: number; ranking: string }; encodedOnDemand?: number;
}> {
  const chunkSize = mode.chunkSize(o.repoTokens, model.config.contextLength);
  const anchorSize = mode.anchorSize?.(chunkSize);
  if (mode.path === 'llama.cpp') {
    if (!peer) throw new EngineError(`mode llama.cpp: node-llama-cpp is not installed (${LLAMA_CPP_INSTALL})`);
    const { layout } = await buildRepoLayout({ repo: o.repo, model, chunkSize, anchorSize, question: o.question });
    const blocks = mode.truncate ? firstThatFit(layout, model.config.contextLength, o.maxTokens) : layout.blocks;
    const r = await llamaCppGreedy(peer, [...blocks.flatMap((b) => b.tokens), ...layout.query], o.maxTokens, model.tokenizer.eos, model.config.contextLength);
    return { answer: model.tokenizer.decode(r.ids, { skipSpecial: true }), ttftMs: r.ttftMs, contextTokens: blocks.reduce((n, b) => n + b.tokens.length, 0) };
  }
  if (mode.blocksAfter === 'first-token') {
    return askBareBlocks({ repo: o.repo, model, chunkSize, question: o.question, maxTokens: o.maxTokens, backend: o.backend, cacheDir: o.cacheDir });
  }
  const r = await askRepository({ repo: o.repo, model, chunkSize, anchorSize, backend: o.backend, cacheDir: o.cacheDir, question: o.question, mode: mode.path,
    maxTokens: o.maxTokens, selection: mode.selection, cacheMaxBytes: mode.selection ? SHARED_CACHE_BYTES : undefined });
  const s = r.stats.selection;
  // Every KV value a question reads: the attended blocks', and the attention ranking's candidates' (f16 entries).
  const kvPerToken = 2 * model.config.nLayers * model.config.nKvHeads * model.config.headDim * 2;
  const attended = mode.selection ? { blocks: s.blocks, of: s.of, ranking: s.ranking, kvReadBytes: (s.tokens + (s.candidates?.tokens ?? 0)) * kvPerToken } : undefined;
  return { answer: r.answer, ttftMs: r.stats.ttftMs, contextTokens: r.stats.contextTokens, ...(attended ? { attended } : {}),
    encodedOnDemand: r.stats.blocksEncoded + s.encodedOnDemand + (s.candidates?.encoded ?? 0) };
}

/** The anchor and the first file blocks that fit beside the question and the answer's reserve (the selection's rule, ranked by nothing). */
function firstThatFit(layout: { anchor: readonly number[]; blocks: readonly { index: number; tokens: readonly number[] }[]; query: readonly number[] }, contextLength: number, maxTokens: number) {
  const plan = planSelection(layout.blocks.slice(1).map((b) => ({ index: b.index, length: b.tokens.length })),
    { anchorLength: layout.anchor.length, contextLength, questionLength: layout.query.length, answerReserve: selectionAnswerReserve(maxTokens, contextLength) }, []);
  return [layout.blocks[0]!, ...plan.blocks.map((p) => layout.blocks[p.index]!)];
}

/**
 * One llama.cpp sequence per loaded model, kept across a run's questions: a prompt re-evaluates only what differs
 * from the tokens already in the sequence (llama.cpp's prompt cache at its best, as a server keeps it). So, like
 * star's warm disk cache, a repository's first question prefills all of it and the next ones little more than the
 * question; the time to first token of the first is the full prefill. Without it a loaded 2-core machine spent
 * minutes per 7K-token question re-prefilling the same repository.
 */
const llamaCppSequences = new WeakMap<LlamaCppModel, { ctx: any; seq: any }>();

async function llamaCppGreedy(peer: LlamaCppModel, prompt: readonly number[], maxTokens: number, eos: ReadonlySet<number>, contextLength: number): Promise<{ ids: number[]; ttftMs: number }> {
  let held = llamaCppSequences.get(peer);
  if (!held) {
    const ctx = await peer.model.createContext({ contextSize: contextLength, batchSize: 2048, threads: LLAMA_CPP_PREFILL_THREADS, ...LLAMA_CPP_KV });
    held = { ctx, seq: ctx.getSequence() };
    llamaCppSequences.set(peer, held);
  }
  const { seq } = held;
  if (prompt.length + maxTokens > contextLength) throw new EngineError(`llama.cpp: the prompt (${prompt.length} tokens) and ${maxTokens} answer tokens exceed the context of ${contextLength}`);
  const have: readonly number[] = seq.contextTokens;
  let common = 0;
  while (common < have.length && common < prompt.length && have[common] === prompt[common]) common++;
  common = Math.min(common, prompt.length - 1); // at least one token is evaluated, for the next token's logits
  if (seq.nextTokenIndex > common) await seq.eraseContextTokenRanges([{ start: common, end: seq.nextTokenIndex }]);
  const ids: number[] = [];
  const t0 = performance.now();
  let ttftMs = 0;
  for await (const id of seq.evaluate(prompt.slice(common), { temperature: 0 })) {
    if (ids.length === 0) ttftMs = performance.now() - t0;
    if (eos.has(id as number)) break;
    ids.push(id as number);
    if (ids.length >= maxTokens) break;
  }
  return { ids, ttftMs };
}

function table(cells: readonly NeedleCell[], modes: readonly NeedleMode[]): string {
  const keys = [...new Set(cells.map((c) => `${c.repoTokens}|${c.depth}`))];
  const head = ['repo tokens', 'depth', ...modes.map((m) => m.name)];
  const md = (xs: string[]) => `| ${xs.join(' | ')} |`;
  const rows = keys.map((k) => {
    const [size, depth] = k.split('|');
    return md([size!, depth!, ...modes.map((m) => {
      const c = cells.find((x) => `${x.repoTokens}|${x.depth}` === k && x.mode === m.name);
      return c ? `${c.correct}/${c.asked} (${(c.ttftFirstMs / 1000).toFixed(1)} / ${(c.ttftRestMs / 1000).toFixed(1)} s${c.attended && c.attended.ranking !== 'all' ? `, ${(c.attended.kvReadBytes / 2 ** 20).toFixed(0)} MiB` : ''})` : '-';
    })]);
  });
  const totals = md(['all', '', ...modes.map((m) => {
    const cs = cells.filter((c) => c.mode === m.name);
    const right = cs.reduce((s, c) => s + c.correct, 0), asked = cs.reduce((s, c) => s + c.asked, 0);
    return asked ? `${right}/${asked} (${Math.round((100 * right) / asked)}%)` : '-';
  })]);
  return [md(head), md(head.map(() => '---')), ...rows, totals].join('\n') + '\n(correct/asked, time to first token: first needle / median of the others (star\'s first includes phase 1; select-*: warm); beyond the context, median KV read per question)\n';
}
