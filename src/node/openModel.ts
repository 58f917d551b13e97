// Opens a model from a local path: a file is read as GGUF, a folder as a Hugging Face model folder.
import { stat } from 'node:fs/promises';
import type { LoadedModel } from '../engine/model/types';
import { loadModel } from '../engine/model/loadModel';
import { FormatError } from '../engine/errors';
import { FileByteSource, openFileSet } from './fileByteSource';

/** A loaded model that holds open file handles until close(). */
export type OpenedModel = LoadedModel & { close(): Promise<void> };

export async function openModel(path: string): Promise<OpenedModel> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FormatError(code === 'ENOENT' ? 'no such file or folder' : `cannot open (${code ?? String(err)})`, path);
  }
  // Opening a FIFO would wait for a writer forever; sockets and devices are no model either.
  if (!info.isDirectory() && !info.isFile()) throw new FormatError('not a model: neither a regular file nor a folder', path);
  const opened = info.isDirectory() ? openFileSet(path) : await FileByteSource.open(path);
  try {
    const model = await loadModel(opened);
    return Object.assign(model, { close: () => opened.close() });
  } catch (err) {
    await opened.close();
    throw err;
  }
}
