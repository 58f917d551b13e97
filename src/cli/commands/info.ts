// star-ask info --model <file.gguf | hf-folder> [--json]: what the engine reads from a model, without running it.
import { command, helpText, parseCommand } from '../help';
import { printJson } from '../output';
import { openModel } from '../../node/openModel';
import type { LoadedModel } from '../../engine/model/types';

const COMMAND = command({ usage: 'star-ask info --model <file.gguf | hf-folder> [--json]', options: { model: { type: 'string' } } });

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  if (!values.model) {
    process.stderr.write(helpText(COMMAND));
    return 2;
  }
  const model = await openModel(values.model);
  const info = describe(model);
  await model.close();
  if (values.json) printJson(info);
  else for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(16)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
  return 0;
}

export function describe(m: LoadedModel): Record<string, unknown> {
  const c = m.config;
  const tensorTypes: Record<string, number> = {};
  for (const t of m.weights.tensors.values()) tensorTypes[t.type] = (tensorTypes[t.type] ?? 0) + 1;
  return {
    name: m.name,
    format: m.format,
    architecture: c.architecture,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    ffnDim: c.ffnDim,
    vocabSize: c.vocabSize,
    contextLength: c.contextLength,
    rmsEps: c.rmsEps,
    rope: c.rope,
    qkvBias: c.qkvBias,
    tiedEmbeddings: c.tiedEmbeddings,
    tensorTypes,
    tokenizer: m.tokenizer.kind,
    bos: m.tokenizer.bos ?? null,
    eos: [...m.tokenizer.eos],
    chatTemplate: m.chatTemplate !== undefined,
    bytes: m.source.size,
    identity: m.identity,
  };
}
