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
