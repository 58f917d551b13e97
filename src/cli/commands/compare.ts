// star-ask compare: Star Attention vs global attention on one token sequence, to choose a chunk size.
// Reports mean KL(global || star) of the next-token distributions over the query part and top-1
// agreement. The query is the ids after --context-tokens (or, with --repo, the question after the
// repository's context). Star: block 0 (the anchor) alone, block i > 0 as [anchor ; block i],
// blocks at their global position ids; global: one causal prefill of exactly the same ids.
import { readFileSync, existsSync } from 'node:fs';
import { EngineError } from '../../engine/errors';
import { Transformer } from '../../engine/runtime/transformer';
import { compareDistributions, globalQueryLogits, starQueryLogits } from '../../engine/star/compare';
import { fixedLayout, type StarLayout } from '../../engine/star/layout';
import { createBackend } from '../../node/createBackend';
import { openModel } from '../../node/openModel';
import { MAX_HOSTS } from '../../node/star/localHosts';
import { buildRepoLayout } from '../../node/star/repoLayout';
import { printJson } from '../output';
import { backendOption, intOption, kvDtypeOption } from './options';
import { command, parseCommand } from '../help';

const COMMAND = command({
  usage: 'star-ask compare --model <file> (--ids <golden.json> --context-tokens <n> | --repo <dir> --question <text>) --chunk-size <n> [options]',
  options: {
    model: { type: 'string' },
    ids: { type: 'string' },
    'context-tokens': { type: 'string' },
    repo: { type: 'string' },
    question: { type: 'string' },
    'chunk-size': { type: 'string' },
    'anchor-size': { type: 'string' },
    hosts: { type: 'string', default: '1' },
    positions: { type: 'string', default: 'global' },
    'kv-dtype': { type: 'string', default: 'f32' },
    backend: { type: 'string', default: 'cpu' },
  },
  notes: {
    positions: 'global (blocks encoded at their positions) or local (each right after the anchor, then re-rotated there: a selected block\'s way)',
    'kv-dtype': 'f32 (exact), f16 or q8: blocks stored so and read back, as the disk cache does; f32 or q8 also reports KL against f16 entries',
  },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  if (!values.model) throw new EngineError('--model is required');
  const backendKind = backendOption(values.backend);
  const chunk = intOption(values['chunk-size'], '--chunk-size');
  const anchorSize = values['anchor-size'] !== undefined ? intOption(values['anchor-size'], '--anchor-size') : undefined;
  const hosts = intOption(values.hosts, '--hosts', 1, MAX_HOSTS);
  const positions = values.positions;
  if (positions !== 'global' && positions !== 'local') throw new EngineError(`--positions must be global or local (got ${positions})`);
  const kvDtype = kvDtypeOption(values['kv-dtype'], '--kv-dtype');

  const model = await openModel(values.model);
  try {
    let ids: number[];
    let layout: StarLayout;
    if (values.ids !== undefined) {
      ids = parseIds(values.ids);
      const context = intOption(values['context-tokens'], '--context-tokens');
      if (context >= ids.length) throw new EngineError(`--context-tokens ${context} leaves no query in ${ids.length} ids`);
      layout = fixedLayout(ids, context, chunk, anchorSize);
    } else if (values.repo !== undefined && values.question !== undefined) {
      const repo = await buildRepoLayout({ repo: values.repo, model, chunkSize: chunk, anchorSize, question: values.question });
      layout = repo.layout;
      ids = [...layout.blocks.flatMap((b) => b.tokens), ...layout.query];
    } else {
      throw new EngineError('give either --ids with --context-tokens, or --repo with --question');
    }

    const backend = await createBackend(backendKind);
    try {
      const transformer = await Transformer.create(model, backend);
      const vocab = transformer.config.vocabSize;
      const rows = Math.max(1, layout.query.length - 1);
      const star = await starQueryLogits(transformer, layout, hosts, positions, kvDtype);
      const global = await globalQueryLogits(transformer, ids, layout.contextLength);
      const r = compareDistributions(global, star, vocab, rows);
      // Against the default dtype's entries at the same positions: what this dtype alone changes.
      const f16Star = kvDtype === 'f16' ? undefined : await starQueryLogits(transformer, layout, hosts, positions, 'f16');
      const f16 = f16Star && compareDistributions(f16Star, star, vocab, rows);
      const f16VsGlobal = f16Star && compareDistributions(global, f16Star, vocab, rows);
      const result = {
        klMean: r.klMean,
        top1Agreement: r.top1Agreement,
        positions: r.positions,
        maxLogitDiff: r.maxLogitDiff,
        blocks: layout.blocks.length,
        contextTokens: layout.contextLength,
        queryTokens: layout.query.length,
        encodedAt: positions,
        kvDtype,
        ...(f16 && f16VsGlobal ? {
          vsF16: { klMean: f16.klMean, top1Agreement: f16.top1Agreement, maxLogitDiff: f16.maxLogitDiff },
          f16VsGlobal: { klMean: f16VsGlobal.klMean, top1Agreement: f16VsGlobal.top1Agreement },
        } : {}),
      };
      if (values.json) printJson(result);
      else {
        process.stdout.write(`star vs global over ${r.positions} query positions (${layout.blocks.length} blocks, ${layout.contextLength} context tokens, blocks encoded at ${positions} positions)\n`);
        process.stdout.write(`  mean KL(global || star) ${r.klMean.toExponential(3)}\n  top-1 agreement        ${(100 * r.top1Agreement).toFixed(1)}%\n`);
        if (f16 && f16VsGlobal) {
          process.stdout.write(`  ${kvDtype} KV vs f16 KV: mean KL ${f16.klMean.toExponential(3)}, top-1 agreement ${(100 * f16.top1Agreement).toFixed(1)}%\n`);
          process.stdout.write(`  (f16 KV vs global: mean KL ${f16VsGlobal.klMean.toExponential(3)}, top-1 agreement ${(100 * f16VsGlobal.top1Agreement).toFixed(1)}%)\n`);
        }
      }
      return 0;
    } finally {
      backend.destroy();
    }
  } finally {
    await model.close();
  }
}

/** An object's `token_ids`, or the first one found one level down (e.g. a golden file's case). */
function findTokenIds(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const obj = value as Record<string, unknown>;
  if ('token_ids' in obj) return obj.token_ids;
  for (const v of Object.values(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && 'token_ids' in v) return (v as { token_ids: unknown }).token_ids;
  }
  return undefined;
}

/** A JSON file (an array of ids, or an object holding token_ids) or a comma-separated list. */
function parseIds(arg: string): number[] {
  let value: unknown;
  if (existsSync(arg)) {
    try {
      value = JSON.parse(readFileSync(arg, 'utf8'));
    } catch (err) {
      throw new EngineError(`not valid JSON: ${(err as Error).message}`, arg);
    }
    value = findTokenIds(value) ?? value;
  } else {
    value = arg.split(',').map((s) => Number(s.trim()));
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new EngineError('--ids must be a JSON file holding an array of token ids (or {token_ids}) or a comma-separated list of ids', arg);
  }
  return value as number[];
}
