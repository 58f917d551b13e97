// Opens a model from a local path: a file is read as GGUF, a folder as a Hugging Face model folder.
import { stat } from 'node:fs/promises';
import type { LoadedModel } from '../engine/model/types';
import { loadModel } from '../engine/model/loadModel';
import { FormatError } from '../engine/errors';
import { FileByteSource, openFileSet } from './fileByteSource';

export async function openModel(path: string): Promise<LoadedModel> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FormatError(code === 'ENOENT' ? 'no such file or folder' : `cannot open (${code ?? String(err)})`, path);
  }
  if (info.isDirectory()) {
    const folder = openFileSet(path);
    try {
      return await loadModel(folder);
    } catch (err) {
      await folder.close();
      throw err;
    }
  }
  const source = await FileByteSource.open(path);
  try {
    return await loadModel(source);
  } catch (err) {
    await source.close();
    throw err;
  }
}
