// What the CLI and the extension say about a repository's size against the model's context, and about the blocks
// a question attended to: one wording for both.
import type { RepositorySize, SelectionStats } from './repoSession';

/** The repository against the model's context, said before anything is encoded. */
export function sizeLine(size: RepositorySize): string {
  return `repository: ${size.repositoryTokens} tokens in ${size.blocks} blocks (anchor ${size.anchorTokens}); the model's context holds ${size.modelContext}: ` +
    (size.positions === 'global' ? 'every block fits' : 'each question attends to the blocks selected for it, blocks encoded right after the anchor');
}

/** "from N of M blocks (x % of the repository)", and how they were chosen. */
export function attendedLine(s: SelectionStats): string {
  const pct = s.totalTokens > 0 ? ((100 * s.tokens) / s.totalTokens).toFixed(1) : '100.0';
  const during = s.whileIndexing ? ` while indexing (${s.whileIndexing.ready} of ${s.whileIndexing.of} blocks ready)` : '';
  const how = s.ranking === 'all' ? 'every block' : `ranked by ${s.ranking}${during}${s.encodedOnDemand ? `, ${s.encodedOnDemand} encoded on demand` : ''}`;
  return `answered from ${s.blocks} of ${s.of} blocks (${pct} % of the repository; ${how})`;
}
