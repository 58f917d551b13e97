// Small JSON files beside the KV entries (overviewStore.ts, pieceStore.ts): read as a miss when absent or
// unreadable, written whole or not at all (writeAtomically) so no reader sees half of one.
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { writeAtomically } from '../writeAtomically';

/** The parsed file, or undefined when it is missing or not JSON. */
export async function readJsonFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Writes `value` as JSON to `file` whole or not at all; a failure is said through onWarning (`what` was not stored). */
export async function writeJsonFile(file: string, value: unknown, what: string, onWarning?: (message: string) => void): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    await writeAtomically(file, async (sink) => {
      await sink(bytes);
      return bytes.byteLength;
    });
  } catch (err) {
    onWarning?.(`${file}: ${what} was not stored: ${(err as Error).message}`);
  }
}
