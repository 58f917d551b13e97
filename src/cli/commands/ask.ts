// star-ask ask: answer a question about a repository with Star Attention (phase 1 from the disk
// KV cache where possible, phase 2 over every block), streaming the answer, then the files the
// question attended to. --mode global runs the same token sequence as one causal prefill (baseline).
import { EngineError } from '../../engine/errors';
import type { LoadedModel } from '../../engine/model/types';
import { openModel } from '../../node/openModel';
import { askRepository } from '../../node/star/starRepository';
import { attendedLine, sizeLine } from '../../node/star/selectionText';
import { SELECTION_MODES } from '../../engine/star/selection/blockSelection';
import { printablePath, printJson } from '../output';
import { modelOrDefault } from './fetchModel';
import { intOption, maxTokensOption, numberOption, repositoryOptionNotes, repositoryOptionSpec, repositoryOptions } from './options';
import { command, parseCommand } from '../help';

const COMMAND = command({
  usage: 'star-ask ask --repo <dir> [--model <file>] --question <text> [options]',
  options: {
    ...repositoryOptionSpec,
    question: { type: 'string' },
    mode: { type: 'string', default: 'star' },
    'no-cache': { type: 'boolean', default: false },
    'max-tokens': { type: 'string', default: '128' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    sources: { type: 'string', default: '10' },
    selection: { type: 'string', default: 'auto' },
  },
  notes: {
    ...repositoryOptionNotes,
    question: 'the question', mode: 'star, or global (one causal prefill: the baseline)', 'no-cache': 'no disk KV cache',
    'max-tokens': 'tokens to generate at most', sources: 'files listed after the answer',
    selection: 'auto (lexical), attention (BM25 candidates ordered by the question\'s exact attention to their keys) or lexical (BM25): how blocks are ranked when the repository does not fit the model\'s context',
  },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  if (!values.question) throw new EngineError('--question is required');
  if (values.mode !== 'star' && values.mode !== 'global') throw new EngineError(`--mode must be star or global (got ${values.mode})`);
  const selection = SELECTION_MODES.find((m) => m === values.selection);
  if (!selection) throw new EngineError(`--selection must be one of ${SELECTION_MODES.join(', ')} (got ${values.selection})`);
  const { modelPath, ...repo } = repositoryOptions({ ...values, model: values.repo ? await modelOrDefault(values.model, values.json) : values.model });
  const maxTokens = maxTokensOption(values['max-tokens']);
  const model = await openModel(modelPath);
  try {
    checkQuestionFits(values.question, model);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const result = await askRepository({
        ...repo,
        model,
        question: values.question,
        mode: values.mode,
        cacheDir: values['no-cache'] ? undefined : repo.cacheDir,
        maxTokens,
        temperature: numberOption(values.temperature, '--temperature', 0),
        topP: values['top-p'] !== undefined ? numberOption(values['top-p'], '--top-p', 1) : undefined,
        seed: values.seed !== undefined ? intOption(values.seed, '--seed', 0) : undefined,
        signal: controller.signal,
        selection,
        onSized: values.json ? undefined : (size) => process.stderr.write(sizeLine(size) + '\n'),
        onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
        onText: values.json ? undefined : (t) => process.stdout.write(t),
      });
      if (values.json) {
        printJson(result);
        return 0;
      }
      process.stdout.write('\n');
      const top = result.sources.slice(0, intOption(values.sources, '--sources', 0));
      if (top.length) {
        process.stdout.write('\nsources (share of the question\'s attention to the repository):\n');
        for (const s of top) process.stdout.write(`  ${(100 * s.share).toFixed(1).padStart(5)}%  ${printablePath(s.path)}\n`);
        process.stdout.write(`  ${(100 * result.stats.anchorShare).toFixed(1).padStart(5)}%  (the prompt and repository overview: the anchor)\n`);
      }
      const st = result.stats;
      process.stderr.write(`\n${attendedLine(st.selection)}\n`);
      process.stderr.write(`\n${st.mode}: ${st.blocks} blocks (${st.blocksEncoded} encoded, ${st.blocksReused} cached), ${st.contextTokens} context tokens; ` +
        `ttft ${Math.round(st.ttftMs)} ms, ${st.decodeTokensPerSec.toFixed(1)} tokens/s\n`);
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  } finally {
    await model.close();
  }
}

/** A question longer than the model's whole context cannot be answered: say so before any work is done. */
function checkQuestionFits(question: string, model: LoadedModel): void {
  const limit = model.config.contextLength;
  // No tokenizer here yields fewer than one token per 64 characters: a longer text is refused without encoding it.
  const tokens = question.length > limit * 64 ? Infinity : model.tokenizer.encode(question, { addBos: false, parseSpecial: false }).length;
  if (tokens > limit) {
    throw new EngineError(`--question is ${question.length} characters${Number.isFinite(tokens) ? ` (${tokens} tokens)` : ''}: longer than the model's whole context of ${limit} tokens`);
  }
}
