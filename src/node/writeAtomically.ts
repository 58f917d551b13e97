// Writing a file so that a failure never leaves a partial one behind: stream into a temporary file beside
// the target, fsync, rename over it.
import { open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EngineError } from '../engine/errors';

/** Streams into `<dir>/.<name>.<random>.tmp`, fsyncs, renames over `path`; removes the temp file on any failure. */
export async function writeAtomically(path: string, write: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<number>): Promise<number> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx').catch((err: NodeJS.ErrnoException) => {
    throw new EngineError(`cannot create the output file (${err.code === 'ENOENT' ? 'its folder does not exist' : err.code ?? err.message})`, path);
  });
  try {
    const total = await write(async (chunk) => {
      let done = 0;
      while (done < chunk.byteLength) done += (await handle.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    });
    await handle.sync();
    await handle.close();
    await rename(temp, path);
    return total;
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}
