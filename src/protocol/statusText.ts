// Wording shared by the chat panel's status (webview) and the status bar (extension host): the repository's size
// against the model's context, and which files an index re-encoded.

/** "12,345 tokens, 6.0× the model's 2,048-token context" (the size against the context). */
export function sizeText(tokens: number, context: number | undefined): string {
  const size = `${tokens.toLocaleString('en-US')} tokens`;
  if (!context) return size;
  const ratio = tokens / context;
  return ratio > 1
    ? `${size}, ${ratio.toFixed(1)}× the model's ${context.toLocaleString('en-US')}-token context`
    : `${size} of the model's ${context.toLocaleString('en-US')}-token context (${Math.round(100 * ratio)}%)`;
}

/** "math.ts", "a.ts, b.ts and 3 more files". */
export function pathsText(paths: readonly string[], max = 3): string {
  if (paths.length <= max) return paths.join(', ');
  return `${paths.slice(0, max).join(', ')} and ${paths.length - max} more files`;
}
