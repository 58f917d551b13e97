// Bad model files through the built CLI (`node dist/cli.mjs info|quantize`): each must exit non-zero with a
// one-line message naming the file and the problem, never a stack trace; quantize must leave no output behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, symlinkSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';
import { FileByteSource } from '../src/node/fileByteSource';
import { parseGguf, type GgufHeader } from '../src/engine/model/gguf';
import { encodeGguf } from '../src/engine/quant/ggufWriter';

let dir = '';
let good: Uint8Array;
let header: GgufHeader;
let source: FileByteSource;

const cli = (...args: string[]) => runCli(args);

function expectFailure(args: string[], file: string, problem: RegExp): void {
  const r = cli(...args);
  assert.notEqual(r.status, 0, `${args.join(' ')} should fail; stdout: ${r.stdout}`);
  assert.ok(r.stderr.includes(file), `message names ${file}: ${r.stderr}`);
  assert.match(r.stderr, problem);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

/** story_llama_f32.gguf rewritten with changed metadata. */
async function variant(name: string, edit: (m: Record<string, unknown>) => void): Promise<string> {
  const metadata: Record<string, unknown> = { ...header.metadata };
  edit(metadata);
  const bytes = await encodeGguf({
    metadata: metadata as GgufHeader['metadata'], metadataTypes: header.metadataTypes, alignment: header.alignment,
    tensors: header.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => source.read(t.offset, t.byteLength) })),
  });
  return write(name, bytes);
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A copy of the good file with the type id of tensor `tensor` replaced. */
function withTensorType(name: string, tensor: string, typeId: number): string {
  const bytes = good.slice();
  const at = Buffer.from(bytes).indexOf(Buffer.from(tensor)) + tensor.length; // then u32 n_dims, u64 dims[n], u32 type
  const view = new DataView(bytes.buffer);
  const nDims = view.getUint32(at, true);
  view.setUint32(at + 4 + 8 * nDims, typeId, true);
  return write(name, bytes);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'star-bad-input-'));
  good = new Uint8Array(readFileSync(modelPath('story_llama_f32.gguf')));
  source = await FileByteSource.open(modelPath('story_llama_f32.gguf'));
  header = await parseGguf(source);
});
after(async () => {
  await source.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the good file passes (control for the cases below)', () => {
  const r = cli('info', '--model', modelPath('story_llama_f32.gguf'), '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { architecture: string }).architecture, 'llama');
});

test('truncated GGUF: inside the header, and inside the tensor data', () => {
  const inHeader = write('cut-header.gguf', good.subarray(0, 30000));
  expectFailure(['info', '--model', inHeader], inHeader, /truncated GGUF header/);
  const inData = write('cut-data.gguf', good.subarray(0, 2_000_000));
  expectFailure(['info', '--model', inData], inData, /truncated file: tensor "[^"]+" .* past the end of the file/);
  const empty = write('empty.gguf', new Uint8Array(0));
  expectFailure(['info', '--model', empty], empty, /not a GGUF file/);
});

test('wrong magic and unsupported GGUF version', () => {
  const magic = good.slice();
  magic.set(Buffer.from('GGML'), 0);
  const wrong = write('magic.gguf', magic);
  expectFailure(['info', '--model', wrong], wrong, /not a GGUF file: magic is "GGML"/);
  const v1 = good.slice();
  new DataView(v1.buffer).setUint32(4, 1, true);
  const old = write('v1.gguf', v1);
  expectFailure(['info', '--model', old], old, /GGUF version 1 is not supported/);
});

test('unknown architecture is named', async () => {
  const path = await variant('mamba.gguf', (m) => { m['general.architecture'] = 'mamba'; });
  expectFailure(['info', '--model', path], path, /architecture "mamba" is not supported/);
});

test('unsupported and unknown tensor types name the type and the tensor', () => {
  const iq2 = withTensorType('iq2xxs.gguf', 'blk.0.attn_q.weight', 16);
  expectFailure(['info', '--model', iq2], iq2, /tensor "blk\.0\.attn_q\.weight" has type IQ2_XXS \(type 16\), which this engine cannot read \(supported: .*Q5_K/);
  const unknown = withTensorType('type99.gguf', 'blk.1.ffn_up.weight', 99);
  expectFailure(['info', '--model', unknown], unknown, /tensor "blk\.1\.ffn_up\.weight" has type unknown type 99/);
});

test('missing tokenizer: GGUF without tokenizer metadata, HF folder without tokenizer.json', async () => {
  const path = await variant('no-tokenizer.gguf', (m) => {
    for (const k of Object.keys(m)) if (k.startsWith('tokenizer.')) delete m[k];
  });
  expectFailure(['info', '--model', path], path, /no tokenizer/);
  const hf = join(dir, 'hf-no-tokenizer');
  mkdirSync(hf);
  symlinkSync(modelPath('story_hf/model.safetensors'), join(hf, 'model.safetensors'));
  writeFileSync(join(hf, 'config.json'), readFileSync(modelPath('story_hf/config.json')));
  expectFailure(['info', '--model', hf], 'hf-no-tokenizer', /no tokenizer: tokenizer\.json not found/);
});

test('a missing path and a missing tensor are named', async () => {
  const nowhere = join(dir, 'nope.gguf');
  expectFailure(['info', '--model', nowhere], nowhere, /no such file or folder/);
  const path = await variant('renamed-tensor.gguf', () => undefined);
  const bytes = new Uint8Array(readFileSync(path));
  const at = Buffer.from(bytes).indexOf('blk.1.ffn_down.weight');
  bytes[at + 4] = 'X'.charCodeAt(0);
  const broken = write('missing-tensor.gguf', bytes);
  expectFailure(['info', '--model', broken], broken, /tensor "blk\.1\.ffn_down\.weight" is missing/);
});

test('quantize with a bad input or an unwritable output exits non-zero and leaves no file behind', () => {
  const before = new Set(readdirSync(dir));
  const cut = join(dir, 'cut-data-2.gguf');
  writeFileSync(cut, good.subarray(0, 2_000_000));
  const out = join(dir, 'out.gguf');
  expectFailure(['quantize', '--model', cut, '--type', 'Q8_0', '--out', out], cut, /truncated file/);
  assert.ok(!existsSync(out), 'no output file');
  const after = readdirSync(dir).filter((f) => !before.has(f));
  assert.deepEqual(after, ['cut-data-2.gguf'], 'no temporary files left');

  const missingDir = join(dir, 'no-such-dir', 'out.gguf');
  const r = cli('quantize', '--model', modelPath('story_llama_f32.gguf'), '--type', 'Q8_0', '--out', missingDir);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no-such-dir\/out\.gguf: cannot create the output file \(its folder does not exist\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);

  const badType = cli('quantize', '--model', modelPath('story_llama_f32.gguf'), '--type', 'IQ2_XXS', '--out', out);
  assert.equal(badType.status, 2);
  assert.match(badType.stderr, /--type IQ2_XXS is not one of/);
  assert.ok(!existsSync(out));
});

test('quantize writes a loadable file atomically (the success path of the same command)', () => {
  const out = join(dir, 'q4.gguf');
  const r = cli('quantize', '--model', modelPath('story_llama_f32.gguf'), '--type', 'Q4_K', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { tensorTypes: Record<string, number>; fallbacks: { tensor: string; used: string }[] };
  assert.deepEqual(report.tensorTypes, { Q5_0: 15, F32: 5 }, 'story rows of 128/384 cannot be Q4_K: all fall back to Q5_0, as llama.cpp does');
  assert.equal(report.fallbacks.length, 15);
  const info = cli('info', '--model', out, '--json');
  assert.equal(info.status, 0, info.stderr);
  assert.deepEqual((JSON.parse(info.stdout) as { tensorTypes: unknown }).tensorTypes, { Q5_0: 15, F32: 5 });
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});
