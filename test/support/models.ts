// Opening the shared models in tests: file handles must be closed, not left to the garbage collector.
import { after } from 'node:test';
import { openModel, type OpenedModel } from '../../src/node/openModel';
import { modelPath } from './paths';

/**
 * Returns a function that opens a shared model by file name (`stories260K.gguf`); every model it
 * opened is closed after the calling test file's tests. Call it at a test file's top level.
 */
export function modelOpener(): (name: string) => Promise<OpenedModel> {
  const opened: OpenedModel[] = [];
  after(async () => {
    await Promise.all(opened.splice(0).map((m) => m.close()));
  });
  return async (name) => {
    const model = await openModel(modelPath(name));
    opened.push(model);
    return model;
  };
}
