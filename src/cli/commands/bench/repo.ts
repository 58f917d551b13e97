// star-ask bench repo: the headline question, side by side in one run on one machine and model file. For each
// repository size, the same question over the same generated repository (./sourceRepository.ts):
//  - llama.cpp re-prefills the whole prompt (exactly the token sequence of `ask --mode global`: anchor, every
//    block, the question) and produces the first token: what a user's alternative does;
//  - star-ask answers from a warm disk cache (filled by a previous index);
//  - star-ask answers after a one-file edit in the middle of the repository (it re-encodes that file's blocks
//    and re-rotates the blocks after it);
// and reports the time to first token of each and the ratios. Also, for context: llama.cpp after the edit with
// its prompt cache at best (the unchanged prefix kept, only the tail re-prefilled), and star-ask's own global
// prefill (the same engine without Star Attention). star-ask's ttft is askRepository's (from phase 1 to the first
// token); the whole call, which also walks and tokenizes the repository and opens the model on the backend, is
// reported as *CallMs. llama.cpp is loaded as ./llamaCpp.ts says; without it the star-ask side still runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LoadedModel } from '../../../engine/model/types';
import type { BackendKind } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { buildRepoLayout } from '../../../node/star/repoLayout';
import { askRepository, indexRepository } from '../../../node/star/starRepository';
import { median, round } from '../../figures';
import { command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import { modelOrDefault } from '../fetchModel';
import { LLAMA_CPP_INSTALL, LLAMA_CPP_KV, LLAMA_CPP_PREFILL_THREADS, loadLlamaCppModel, type LlamaCppModel } from './llamaCpp';
import { editSourceFile, writeSourceRepository } from './sourceRepository';

const COMMAND = command({
  usage: 'star-ask bench repo [options]',
  options: {
    model: { type: 'string' },
    backend: { type: 'string', default: 'cpu' },
    sizes: { type: 'string', default: '1024,2048,4096' },
    'chunk-size': { type: 'string', default: '512' },
    'file-tokens': { type: 'string', default: '200' },
    reps: { type: 'string', default: '3' },
    'skip-global': { type: 'boolean', default: false },
  },
  notes: { model: 'a GGUF file (default: SmolLM2-135M-Instruct, fetched once)', backend: 'cpu, cpu-ref, webgpu or auto' },
  about: `llama.cpp side: ${LLAMA_CPP_INSTALL}`,
});

const QUESTION = 'Which function throws when the session is over the limit?';

/** One repository size. Times in ms; a field is null when its side did not run. */
export interface RepoRow {
  /** The size asked for: tokens of the files' contents (the prompt adds the anchor and each block's file headers). */
  readonly repoTokens: number;
  readonly files: number;
  readonly blocks: number;
  /** Anchor + blocks, before the edits. */
  readonly contextTokens: number;
  /** contextTokens + the question: what llama.cpp prefills. */
  readonly promptTokens: number;
  /** Cold index of the whole repository (fills the disk cache). */
  readonly indexMs: number;
  readonly llamaCppTtftMs: number | null;
  readonly starWarmTtftMs: number;
  readonly starWarmCallMs: number;
  readonly starEditTtftMs: number;
  readonly starEditCallMs: number;
  /** Per edit (medians): blocks re-encoded, and blocks re-rotated because they moved. */
  readonly editBlocksEncoded: number;
  readonly editBlocksShifted: number;
  /** llama.cpp after the last edit, keeping the unchanged prefix: only editTailTokens are prefilled. */
  readonly llamaCppEditTailTtftMs: number | null;
  readonly editTailTokens: number;
  /** star-ask's engine prefilling the whole prompt (ask --mode global); null with --skip-global. */
  readonly starGlobalTtftMs: number | null;
  /** llamaCppTtftMs / starWarmTtftMs and / starEditTtftMs: above 1, star-ask answers first. */
  readonly ratioWarm: number | null;
  readonly ratioEdit: number | null;
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backend = backendOption(values.backend);
  const sizes = values.sizes!.split(',').map((s) => intOption(s.trim(), '--sizes'));
  const chunkSize = intOption(values['chunk-size'], '--chunk-size');
  const fileTokens = intOption(values['file-tokens'], '--file-tokens');
  const reps = intOption(values.reps, '--reps');
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  const modelPath = resolve(await modelOrDefault(values.model, values.json));

  const model = await openModel(modelPath);
  const peer = await loadLlamaCppModel(modelPath);
  log(peer ? `llama.cpp: ${peer.device}` : `llama.cpp: not installed (${LLAMA_CPP_INSTALL}); star-ask side only`);
  try {
    const rows: RepoRow[] = [];
    for (const size of sizes) {
      const row = await benchSize(model, peer, { backend, size, chunkSize, fileTokens, reps, global: !values['skip-global'] });
      log(`${size} tokens: llama.cpp ${fmt(row.llamaCppTtftMs)} ms, star warm ${fmt(row.starWarmTtftMs)} ms (x${fmt(row.ratioWarm)}), after an edit ${fmt(row.starEditTtftMs)} ms (x${fmt(row.ratioEdit)})`);
      rows.push(row);
    }
    const result = {
      model: model.name,
      backend,
      chunkSize,
      question: QUESTION,
      reps,
      llamaCpp: peer ? { installed: true, device: peer.device, threads: LLAMA_CPP_PREFILL_THREADS } : { installed: false, install: LLAMA_CPP_INSTALL },
      rows,
    };
    if (values.json) printJson(result);
    else process.stdout.write(table(rows));
    return 0;
  } finally {
    await peer?.dispose();
    await model.close();
  }
}

interface SizeOptions {
  readonly backend: BackendKind;
  readonly size: number;
  readonly chunkSize: number;
  readonly fileTokens: number;
  readonly reps: number;
  readonly global: boolean;
}

async function benchSize(model: LoadedModel, peer: LlamaCppModel | undefined, o: SizeOptions): Promise<RepoRow> {
  const repo = mkdtempSync(join(tmpdir(), 'star-bench-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-bench-kv-'));
  try {
    const written = writeSourceRepository(repo, model.tokenizer, o.size, o.fileTokens);
    const base = { repo, model, chunkSize: o.chunkSize, backend: o.backend, cacheDir };
    const ask = { ...base, question: QUESTION, maxTokens: 1 };

    const t0 = performance.now();
    const index = await indexRepository(base);
    const indexMs = performance.now() - t0;

    const warm = await repeat(o.reps, () => timedAsk(ask));
    const prompt = await globalPrompt(model, repo, o.chunkSize);
    const llamaCppTtftMs = peer ? median(await llamaCppTtft(peer, [prompt], o.reps)) : null;
    const starGlobalTtftMs = o.global ? (await askRepository({ ...ask, mode: 'global' })).stats.ttftMs : null;

    // Each rep edits the same middle file again (a fresh edit each time), then asks.
    const middle = written.files[written.files.length >> 1]!;
    let before = prompt;
    const edits = await repeat(o.reps, async (r) => {
      before = await globalPrompt(model, repo, o.chunkSize);
      editSourceFile(repo, middle, 1000 + r);
      return timedAsk(ask);
    });
    const after = await globalPrompt(model, repo, o.chunkSize);
    const shared = commonPrefix(before, after);
    const llamaCppEditTailTtftMs = peer ? median(await llamaCppTtft(peer, [after.slice(0, shared), after.slice(shared)], o.reps)) : null;

    const starWarmTtftMs = median(warm.map((a) => a.ttftMs));
    const starEditTtftMs = median(edits.map((a) => a.ttftMs));
    return {
      repoTokens: o.size,
      files: index.files,
      blocks: index.blocks,
      contextTokens: index.contextTokens,
      promptTokens: prompt.length,
      indexMs: round(indexMs),
      llamaCppTtftMs: llamaCppTtftMs === null ? null : round(llamaCppTtftMs),
      starWarmTtftMs: round(starWarmTtftMs),
      starWarmCallMs: round(median(warm.map((a) => a.callMs))),
      starEditTtftMs: round(starEditTtftMs),
      starEditCallMs: round(median(edits.map((a) => a.callMs))),
      editBlocksEncoded: median(edits.map((a) => a.blocksEncoded)),
      editBlocksShifted: median(edits.map((a) => a.blocksShifted)),
      llamaCppEditTailTtftMs: llamaCppEditTailTtftMs === null ? null : round(llamaCppEditTailTtftMs),
      editTailTokens: after.length - shared,
      starGlobalTtftMs: starGlobalTtftMs === null ? null : round(starGlobalTtftMs),
      ratioWarm: llamaCppTtftMs === null ? null : round(llamaCppTtftMs / starWarmTtftMs, 2),
      ratioEdit: llamaCppTtftMs === null ? null : round(llamaCppTtftMs / starEditTtftMs, 2),
    };
  } finally {
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

async function repeat<T>(reps: number, body: (rep: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let r = 0; r < reps; r++) out.push(await body(r));
  return out;
}

async function timedAsk(o: Parameters<typeof askRepository>[0]) {
  const t0 = performance.now();
  const { stats } = await askRepository(o);
  return { ttftMs: stats.ttftMs, callMs: performance.now() - t0, blocksEncoded: stats.blocksEncoded, blocksShifted: stats.blocksShifted };
}

/** The token sequence `ask --mode global` prefills: the anchor, every block in order, then the question. */
async function globalPrompt(model: LoadedModel, repo: string, chunkSize: number): Promise<number[]> {
  const { layout } = await buildRepoLayout({ repo, model, chunkSize, question: QUESTION });
  return [...layout.blocks.flatMap((b) => b.tokens), ...layout.query];
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * llama.cpp's time to the first token of `parts.join()`, `reps` times after one warm-up, each on a fresh
 * sequence. All parts but the last are evaluated untimed first (a prompt cache holding them).
 */
async function llamaCppTtft(peer: LlamaCppModel, parts: readonly number[][], reps: number): Promise<number[]> {
  const length = parts.reduce((s, p) => s + p.length, 0);
  const ctx = await peer.model.createContext({ contextSize: length + 16, batchSize: Math.min(length, 2048), threads: LLAMA_CPP_PREFILL_THREADS, ...LLAMA_CPP_KV });
  try {
    const times: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const seq = ctx.getSequence();
      try {
        for (const p of parts.slice(0, -1)) await seq.evaluateWithoutGeneratingNewTokens(p);
        const t0 = performance.now();
        for await (const _token of seq.evaluate(parts[parts.length - 1]!, { temperature: 0 })) break;
        if (r > 0) times.push(performance.now() - t0); // the first run is a warm-up
      } finally {
        seq.dispose();
      }
    }
    return times;
  } finally {
    await ctx.dispose();
  }
}

const fmt = (x: number | null) => (x === null ? '-' : String(x));

function table(rows: readonly RepoRow[]): string {
  const head = ['repo tokens', 'prompt', 'files', 'blocks', 'llama.cpp ttft', 'star warm', 'star edit', 'x warm', 'x edit', 'llama.cpp tail', 'star global', 'edit enc/shift'];
  const lines = rows.map((r) => [r.repoTokens, r.promptTokens, r.files, r.blocks, r.llamaCppTtftMs, r.starWarmTtftMs, r.starEditTtftMs, r.ratioWarm, r.ratioEdit,
    r.llamaCppEditTailTtftMs === null ? null : `${r.llamaCppEditTailTtftMs} (${r.editTailTokens} tok)`, r.starGlobalTtftMs, `${r.editBlocksEncoded}/${r.editBlocksShifted}`]
    .map((x) => (x === null ? '-' : String(x))));
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [md(head), md(head.map(() => '---')), ...lines.map(md)].join('\n') + '\n(times in ms, median; x = llama.cpp ttft / star ttft)\n';
}
