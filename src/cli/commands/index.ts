// star-ask index: Star Attention phase 1 for a repository, into the per-block disk KV cache.
// A second run over an unchanged repository encodes nothing; after an edit only the blocks that
// hold the edited file are encoded again (blocks that merely moved are re-rotated, not re-encoded).
import { parseArgs } from 'node:util';
import { EngineError } from '../../engine/errors';
import { openModel } from '../../node/openModel';
import { indexRepository } from '../../node/star/starRepository';
import { printJson } from '../output';
import { backendOption, defaultCacheDir, intOption } from './options';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      repo: { type: 'string' },
      model: { type: 'string' },
      'chunk-size': { type: 'string', default: '512' },
      'anchor-size': { type: 'string' },
      hosts: { type: 'string', default: '1' },
      'host-threads': { type: 'boolean', default: false },
      'cache-dir': { type: 'string' },
      'cache-max-mb': { type: 'string', default: '4096' },
      'memory-budget-mb': { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.repo) throw new EngineError('--repo is required');
  if (!values.model) throw new EngineError('--model is required');
  const backend = backendOption(values.backend);
  const model = await openModel(values.model);
  try {
    const showProgress = !values.json && process.stderr.isTTY;
    const stats = await indexRepository({
      repo: values.repo,
      model,
      chunkSize: intOption(values['chunk-size'], '--chunk-size'),
      anchorSize: values['anchor-size'] !== undefined ? intOption(values['anchor-size'], '--anchor-size') : undefined,
      hosts: intOption(values.hosts, '--hosts'),
      hostThreads: values['host-threads'] ? { modelPath: values.model } : undefined,
      backend,
      cacheDir: values['cache-dir'] ?? defaultCacheDir(),
      memoryBudgetBytes: values['memory-budget-mb'] !== undefined ? intOption(values['memory-budget-mb'], '--memory-budget-mb') * 2 ** 20 : undefined,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      onProgress: showProgress ? (done, total) => process.stderr.write(`\rblocks ${done}/${total}`) : undefined,
    });
    if (showProgress) process.stderr.write('\n');
    if (values.json) printJson(stats);
    else {
      process.stdout.write(`${stats.files} files (${stats.skipped} skipped), ${stats.blocks} blocks, ${stats.contextTokens} context tokens\n`);
      process.stdout.write(`encoded ${stats.blocksEncoded} blocks in ${stats.encodeMs} ms, reused ${stats.blocksReused} (${stats.blocksShifted} re-rotated, ${stats.entriesRewritten} cache entries rewritten at their new position)\n`);
    }
    return 0;
  } finally {
    await model.close();
  }
}
