// Model loading against the shared models: configs as /work/shared/models/README.md states them, header-only
// reads, identity, and the HF <-> GGUF weight correspondence (an independent check of the Q/K permutation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelOpener } from './support/models';
import { modelPath } from './support/paths';
import { openModel } from '../src/node/openModel';
import { FileByteSource, openFileSet } from '../src/node/fileByteSource';
import { loadModel } from '../src/engine/model/loadModel';
import { parseGguf, ValueType } from '../src/engine/model/gguf';
import { configFromHfJson, llama3FrequencyDivisors } from '../src/engine/model/config';
import { encodeGguf } from '../src/engine/quant/ggufWriter';
import { dequantize } from '../src/engine/quant/dequantize';
import { MemoryByteSource, type ByteSource } from '../src/engine/io/byteSource';
import { UnsupportedError } from '../src/engine/errors';
import { sha256Hex } from '../src/engine/util/hash';
import { dataFingerprint, FULL_HASH_BYTES, SAMPLE_BYTES, SAMPLE_COUNT } from '../src/engine/model/fingerprint';
import type { LoadedModel, ModelConfig } from '../src/engine/model/types';

/** openModel, closed after all tests. */
const open = modelOpener();

const STORY: Omit<ModelConfig, 'architecture' | 'rmsEps' | 'rope' | 'qkvBias'> = {
  dim: 128, nLayers: 2, nHeads: 8, nKvHeads: 4, headDim: 16, ffnDim: 384, vocabSize: 2048, contextLength: 512, tiedEmbeddings: true,
};

function assertConfig(c: ModelConfig, want: Partial<ModelConfig> & { rmsEps: number }): void {
  const { rmsEps, ...exact } = want;
  for (const [k, v] of Object.entries(exact)) assert.deepEqual(c[k as keyof ModelConfig], v, k);
  assert.ok(Math.abs(c.rmsEps - rmsEps) <= rmsEps * 1e-6, `rmsEps ${c.rmsEps}`);
}

async function floats(m: LoadedModel, name: string): Promise<Float32Array> {
  const t = m.weights.tensors.get(name);
  assert.ok(t, `${m.name} has ${name}`);
  return dequantize(t.type, await m.weights.read(name), t.shape.reduce((a, b) => a * b, 1));
}

test('stories260K.gguf: llama, dim 64, 5 layers, 8/4 heads, FFN 172, vocab 512, adjacent RoPE; classifier = token_embd', async () => {
  const m = await open('stories260K.gguf');
  assertConfig(m.config, {
    architecture: 'llama', dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, ffnDim: 172, vocabSize: 512,
    contextLength: 2048, rmsEps: 1e-5, rope: { theta: 10000, layout: 'adjacent' }, qkvBias: false,
  });
  assert.equal(m.format, 'gguf');
  assert.equal(m.tokenizer.kind, 'llama-spm');
  assert.equal(m.tokenizer.bos, 1);
  assert.deepEqual([...m.tokenizer.eos], [2]);
  // The README calls it tied; the file does store output.weight, byte-identical to token_embd.weight.
  if (m.weights.tensors.has('output.weight')) {
    assert.equal(m.config.tiedEmbeddings, false);
    assert.deepEqual(await m.weights.read('output.weight'), await m.weights.read('token_embd.weight'));
  } else {
    assert.equal(m.config.tiedEmbeddings, true);
  }
  assert.ok(Object.values(m.metadata).every((v) => !Array.isArray(v) || v.length <= 64), 'vocabulary arrays left out of metadata');
});

test('story_hf, story_llama_f32, story_llama_q8_0, story_qwen2 load with the configs the README states', async () => {
  const hf = await open('story_hf');
  assertConfig(hf.config, { ...STORY, architecture: 'llama', rmsEps: 1e-6, rope: { theta: 10000, layout: 'halves' }, qkvBias: false });
  assert.equal(hf.format, 'safetensors');
  assert.equal(hf.tokenizer.kind, 'hf-json');
  assert.equal(hf.tokenizer.bos, 1);
  assert.ok(hf.tokenizer.eos.has(2));
  assert.ok(!hf.weights.tensors.has('output.weight'), 'tied: no separate classifier');

  for (const file of ['story_llama_f32.gguf', 'story_llama_q8_0.gguf']) {
    const m = await open(file);
    assertConfig(m.config, { ...STORY, architecture: 'llama', rmsEps: 1e-6, rope: { theta: 10000, layout: 'adjacent' }, qkvBias: false });
    assert.equal(m.tokenizer.bos, 1);
    assert.ok(m.tokenizer.eos.has(2));
  }
  const q8 = await open('story_llama_q8_0.gguf');
  for (const t of q8.weights.tensors.values()) {
    assert.equal(t.type, t.shape.length === 1 ? 'F32' : 'Q8_0', `${t.name} is ${t.type}`);
  }
  const qwen = await open('story_qwen2.gguf');
  assertConfig(qwen.config, { ...STORY, architecture: 'qwen2', rmsEps: 1e-6, rope: { theta: 10000, layout: 'halves' }, qkvBias: true });
  for (let i = 0; i < 2; i++) for (const p of ['q', 'k', 'v']) assert.ok(qwen.weights.tensors.has(`blk.${i}.attn_${p}.bias`));
});

test('loading reads the header and the data fingerprint, no more (weights are read on demand)', async () => {
  for (const file of ['story_llama_f32.gguf', 'story_hf/model.safetensors']) {
    const inner = await FileByteSource.open(modelPath(file));
    let bytesRead = 0;
    const counting: ByteSource = {
      name: inner.name, size: inner.size,
      read: (offset, length) => { bytesRead += length; return inner.read(offset, length); },
    };
    if (file.endsWith('.gguf')) {
      const header = await parseGguf(counting);
      assert.ok(bytesRead <= header.dataOffset * 2 + 65536, `${file}: read ${bytesRead} bytes for a ${header.dataOffset}-byte header`);
    } else {
      const folder = openFileSet(modelPath('story_hf'));
      await loadModel({ name: folder.name, open: async (p) => (p === 'model.safetensors' ? counting : folder.open(p)) });
      await folder.close();
      // The header, then the fingerprint (dataFingerprint: the whole data below FULL_HASH_BYTES, else samples).
      const fingerprint = inner.size <= FULL_HASH_BYTES ? inner.size : SAMPLE_COUNT * SAMPLE_BYTES;
      assert.ok(bytesRead < 16384 + fingerprint, `${file}: read ${bytesRead} of ${inner.size} bytes`);
    }
    await inner.close();
  }
});

test('identity: stable across loads, different across files, changes with any header byte', async () => {
  const a = await open('story_llama_f32.gguf');
  const b = await open('story_llama_f32.gguf');
  const c = await open('story_llama_q8_0.gguf');
  const d = await open('story_hf');
  assert.equal(a.identity, b.identity);
  assert.match(a.identity, /^[0-9a-f]{64}$/);
  assert.equal(new Set([a.identity, c.identity, d.identity]).size, 3);
  const bytes = new Uint8Array(readFileSync(modelPath('story_llama_f32.gguf')));
  const renamed = bytes.slice();
  const at = Buffer.from(renamed).indexOf('story llama pairs');
  renamed[at] = 'S'.charCodeAt(0);
  const e = await loadModel(new MemoryByteSource('renamed.gguf', renamed));
  assert.notEqual(e.identity, a.identity);
});

test('identity: a copy of stories260K with one weight byte changed, same header, is another model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'identity-'));
  try {
    const bytes = new Uint8Array(readFileSync(modelPath('stories260K.gguf')));
    const header = await parseGguf(new MemoryByteSource('stories260K.gguf', bytes));
    const tensor = header.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!;
    const tuned = bytes.slice();
    tuned[header.dataOffset + tensor.offset + 101]! ^= 0x01; // the lowest mantissa bit of one weight (f32)
    writeFileSync(join(dir, 'same.gguf'), bytes);
    writeFileSync(join(dir, 'tuned.gguf'), tuned);
    const original = await open('stories260K.gguf');
    const same = await openModel(join(dir, 'same.gguf'));
    const other = await openModel(join(dir, 'tuned.gguf'));
    try {
      assert.equal(same.identity, original.identity, 'the identity depends on the bytes, not on the path');
      assert.notEqual(other.identity, original.identity, 'different weights behind the same header');
    } finally {
      await same.close();
      await other.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dataFingerprint: data beyond FULL_HASH_BYTES is sampled from the first chunk to the last', async () => {
  const size = FULL_HASH_BYTES * 2 + 12345;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4093) data[i] = i & 0xff;
  const base = await dataFingerprint(new MemoryByteSource('a', data), 100);
  assert.equal(await dataFingerprint(new MemoryByteSource('b', data.slice()), 100), base);
  for (const at of [100, size - 1, 100 + Math.round((size - 100 - SAMPLE_BYTES) / (SAMPLE_COUNT - 1)) * 7 + 5]) {
    const changed = data.slice();
    changed[at]! ^= 0x80;
    assert.notEqual(await dataFingerprint(new MemoryByteSource('c', changed), 100), base, `byte ${at}`);
  }
  const changedHeader = data.slice();
  changedHeader[50]! ^= 0x80;
  assert.equal(await dataFingerprint(new MemoryByteSource('d', changedHeader), 100), base, 'bytes before `from` are not data');
});

test('sha256Hex matches known digests (FIPS 180-2 vectors and a shared model file)', () => {
  assert.equal(sha256Hex(new Uint8Array()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.equal(sha256Hex(new Uint8Array(readFileSync(modelPath('stories260K.gguf')))),
    '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
});

/** llama.cpp's convert_hf_to_gguf permute(): per head, rows (0..d/2-1, d/2..d-1) interleave to pairs (2i, 2i+1). */
function permuteRowsForAdjacentRope(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const out = new Float32Array(w.length);
  const hd = rows / heads;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const from = h * hd + j * (hd / 2) + i;
        const to = h * hd + 2 * i + j;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

test('story_hf weights equal story_llama_f32 after the Q/K permutation, and story_qwen2 unpermuted', async () => {
  const hf = await open('story_hf');
  const llama = await open('story_llama_f32.gguf');
  const qwen = await open('story_qwen2.gguf');
  assert.deepEqual([...hf.weights.tensors.keys()].sort(), [...llama.weights.tensors.keys()].sort());
  const { dim, nHeads, nKvHeads } = hf.config;
  for (const [name, info] of hf.weights.tensors) {
    assert.deepEqual(llama.weights.tensors.get(name)!.shape, info.shape, name);
    const h = await floats(hf, name);
    const l = await floats(llama, name);
    const q = await floats(qwen, name);
    const heads = name.endsWith('attn_q.weight') ? nHeads : name.endsWith('attn_k.weight') ? nKvHeads : 0;
    const expected = heads ? permuteRowsForAdjacentRope(h, info.shape[1]!, dim, heads) : h;
    assert.deepEqual(l, expected, `${name}: llama GGUF = permuted HF`);
    assert.deepEqual(q, h, `${name}: qwen2 GGUF = HF as stored`);
    if (heads) assert.notDeepEqual(l, h, `${name}: the permutation is not the identity`);
  }
});

test('story_llama_q8_0 dequantizes to story_llama_f32 within the Q8_0 error bound', async () => {
  const f32 = await open('story_llama_f32.gguf');
  const q8 = await open('story_llama_q8_0.gguf');
  let worst = 0;
  for (const name of f32.weights.tensors.keys()) {
    const x = await floats(f32, name);
    const y = await floats(q8, name);
    for (let b = 0; b < x.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32 && b + j < x.length; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
      // round(x/d)*d16 with d = amax/127: |err| <= d/2 + 127*|d16 - d| <= d * (0.5 + 127 * 2^-11).
      const bound = (amax / 127) * (0.5 + 127 / 2048) + 1e-12;
      for (let j = 0; j < 32 && b + j < x.length; j++) {
        const err = Math.abs(x[b + j]! - y[b + j]!);
        worst = Math.max(worst, err / (bound || 1));
        assert.ok(err <= bound, `${name}[${b + j}]: ${y[b + j]} vs ${x[b + j]} (bound ${bound})`);
      }
    }
  }
  assert.ok(worst > 0.3, 'errors are really Q8_0-sized: the file is not just F32 copied');
});

test('llama3 RoPE scaling: from a rope_freqs tensor in GGUF, from rope_scaling in config.json; mismatches rejected', async () => {
  const file = modelPath('story_llama_f32.gguf');
  const source = await FileByteSource.open(file);
  const header = await parseGguf(source);
  const scaling = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 };
  const divisors = Float32Array.from(llama3FrequencyDivisors(scaling, 10000, 16));
  assert.ok(divisors.some((d) => d === 1) && divisors.some((d) => d === 8) && divisors.some((d) => d > 1 && d < 8), 'all three regimes');
  const withFreqs = async (freqs: Float32Array) => encodeGguf({
    metadata: header.metadata, metadataTypes: header.metadataTypes, alignment: header.alignment,
    tensors: [
      ...header.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => source.read(t.offset, t.byteLength) })),
      { name: 'rope_freqs.weight', type: 'F32' as const, shape: [8], data: async () => new Uint8Array(freqs.buffer) },
    ],
  });
  const m = await loadModel(new MemoryByteSource('llama3.gguf', await withFreqs(divisors)));
  assert.deepEqual(m.config.rope, { theta: 10000, layout: 'adjacent', scaling });
  const wrong = divisors.slice();
  wrong[5] = wrong[5]! * 1.5;
  await assert.rejects(loadModel(new MemoryByteSource('bad-freqs.gguf', await withFreqs(wrong))),
    (e: Error) => e instanceof UnsupportedError && /bad-freqs\.gguf.*rope_freqs/.test(e.message));
  await source.close();

  const hfConfig = JSON.parse(readFileSync(modelPath('story_hf/config.json'), 'utf8')) as Record<string, unknown>;
  const c = configFromHfJson({ ...hfConfig, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, 'config.json');
  assert.deepEqual(c.rope.scaling, { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 });
  assert.throws(() => configFromHfJson({ ...hfConfig, rope_scaling: { type: 'yarn', factor: 4 } }, 'config.json'), /yarn/);
  assert.equal(ValueType.ARRAY, 9);
});

test('GGUF version 2 headers load like version 3', async () => {
  const bytes = new Uint8Array(readFileSync(modelPath('story_llama_f32.gguf')));
  new DataView(bytes.buffer).setUint32(4, 2, true);
  const m = await loadModel(new MemoryByteSource('v2.gguf', bytes));
  const v3 = await open('story_llama_f32.gguf');
  assert.deepEqual(m.config, v3.config);
  assert.deepEqual(await m.weights.read('blk.1.attn_k.weight'), await v3.weights.read('blk.1.attn_k.weight'));
});

test('a sharded HF folder (model.safetensors.index.json) loads the same weights as the single file', async () => {
  const single = await open('story_hf');
  const src = readFileSync(modelPath('story_hf/model.safetensors'));
  const headerLength = Number(src.readBigUInt64LE(0));
  const header = JSON.parse(src.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const dir = mkdtempSync(join(tmpdir(), 'star-shards-'));
  try {
    const weightMap: Record<string, string> = {};
    for (const [shard, part] of [['model-00001-of-00002.safetensors', names.slice(0, 7)], ['model-00002-of-00002.safetensors', names.slice(7)]] as const) {
      const entries: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      let at = 0;
      for (const n of part) {
        const { dtype, shape, data_offsets: [b, e] } = header[n]!;
        entries[n] = { dtype, shape, data_offsets: [at, at + e - b] };
        chunks.push(src.subarray(8 + headerLength + b, 8 + headerLength + e));
        at += e - b;
        weightMap[n] = shard;
      }
      const json = Buffer.from(JSON.stringify(entries));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(join(dir, shard), Buffer.concat([len, json, ...chunks]));
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(dir, f), readFileSync(modelPath(`story_hf/${f}`)));
    const sharded = await openModel(dir);
    try {
      assert.deepEqual(sharded.config, single.config);
      assert.deepEqual([...sharded.weights.tensors.keys()].sort(), [...single.weights.tensors.keys()].sort());
      for (const name of single.weights.tensors.keys()) {
        assert.deepEqual(await sharded.weights.read(name), await single.weights.read(name), name);
      }
      assert.notEqual(sharded.identity, single.identity);
    } finally {
      await sharded.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
