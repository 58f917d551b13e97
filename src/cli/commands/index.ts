// star-ask index: Star Attention phase 1 for a repository, into the per-block disk KV cache.
// A second run over an unchanged repository encodes nothing; after an edit only the blocks that
// hold the edited file are encoded again (blocks that merely moved are re-rotated, not re-encoded).
import { openModel } from '../../node/openModel';
import { indexRepository } from '../../node/star/starRepository';
import { printJson } from '../output';
import { sizeLine } from '../../node/star/selectionText';
import { modelOrDefault } from './fetchModel';
import { repositoryOptionNotes, repositoryOptionSpec, repositoryOptions } from './options';
import { command, parseCommand } from '../help';

const COMMAND = command({ usage: 'star-ask index --repo <dir> [--model <file>] [options]', options: repositoryOptionSpec, notes: repositoryOptionNotes });

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const { modelPath, ...repo } = repositoryOptions({ ...values, model: values.repo ? await modelOrDefault(values.model, values.json) : values.model });
  const model = await openModel(modelPath);
  try {
    const showProgress = !values.json && process.stderr.isTTY;
    const stats = await indexRepository({
      ...repo,
      model,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      onSized: values.json ? undefined : (size) => process.stderr.write(sizeLine(size) + '\n'),
      onProgress: showProgress ? (done, total) => process.stderr.write(`\rblocks ${done}/${total}`) : undefined,
    });
    if (showProgress) process.stderr.write('\n');
    if (values.json) printJson(stats);
    else {
      const reasons = Object.entries(stats.skippedByReason).map(([reason, n]) => `${n} ${reason}`).join(', ');
      process.stdout.write(`${stats.files} files (${stats.skipped} skipped${reasons ? `: ${reasons}` : ''}), ${stats.blocks} blocks, ${stats.contextTokens} context tokens\n`);
      process.stdout.write(`encoded ${stats.blocksEncoded} blocks in ${stats.encodeMs} ms, reused ${stats.blocksReused} (${stats.blocksShifted} re-rotated, ${stats.entriesRewritten} cache entries rewritten at their new position)\n`);
    }
    return 0;
  } finally {
    await model.close();
  }
}
