// The folder for model files the tools fetch or generate (the default model, make-model's real-shape files):
// a user cache folder, never the repository.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_CACHE_HOME/star-ask/models`, else `~/.cache/star-ask/models`. */
export function defaultModelCacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'star-ask', 'models');
}
