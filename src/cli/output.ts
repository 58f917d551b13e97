import { EngineError } from '../engine/errors';

export function formatError(err: unknown): string {
  if (err instanceof EngineError) return err.message;
  if (err instanceof Error) return process.env.STAR_DEBUG ? (err.stack ?? err.message) : err.message;
  return String(err);
}

/** Prints one JSON object on stdout (the --json contract). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/**
 * A file path as one harmless terminal line: control characters (a newline could fake another source line, ESC
 * could recolour the terminal), C1 controls and bidirectional overrides are written as escapes; a backslash is
 * doubled so that an escape cannot be faked either.
 */
export function printablePath(path: string): string {
  return path.replace(/[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
