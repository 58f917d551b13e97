// The one KV cache folder the CLI and the extension share, so a repository indexed by `star-ask index` is warm
// for the extension and the other way round.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_CACHE_HOME/star-attention`, else `~/.cache/star-attention`. */
export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'star-attention');
}
