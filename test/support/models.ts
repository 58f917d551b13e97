// Opening the shared models in tests: file handles must be closed, not left to the garbage collector.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { after } from 'node:test';
import { SMOLLM2, wheelModelPath } from '../../src/node/models/defaultModel';
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

/**
 * The real default model (SmolLM2-135M-Instruct, fetched by scripts/ensure-default-model.sh, which `npm test` runs
 * first): its path, or why it is absent, for `ctx.skip`.
 */
export function defaultModelFile(): { path: string; skip?: undefined } | { path?: undefined; skip: string } {
  const path = wheelModelPath(SMOLLM2);
  if (existsSync(path)) return { path };
  return { skip: `${SMOLLM2.fileName} is not in ${dirname(path)} (bash scripts/ensure-default-model.sh fetches it from PyPI; it could not here)` };
}
