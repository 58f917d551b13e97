// Where tests find the shared, read-only models and golden outputs: ../shared beside the checkout.
// Test bundles live in dist/test/, so the repository root is two folders up.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = resolve(repoRoot, '../shared');
export const modelPath = (name: string): string => resolve(sharedDir, 'models', name);

export function readGolden<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(sharedDir, 'golden', name), 'utf8')) as T;
}
