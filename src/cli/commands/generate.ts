// star-ask generate: text (or raw ids) in, generated ids and text out, with prefill/decode speed.
import type { Backend } from '../../engine/backend/types';
import { EngineError } from '../../engine/errors';
import { generateText } from '../../engine/runtime/generateText';
import { fitAnswer } from '../../engine/runtime/answerBudget';
import { Transformer } from '../../engine/runtime/transformer';
import { createBackend } from '../../node/createBackend';
import { openModel } from '../../node/openModel';
import { round } from '../figures';
import { command, helpText, parseCommand } from '../help';
import { printJson } from '../output';
import { backendOption, intOption, maxTokensOption, numberOption } from './options';

const COMMAND = command({
  usage: 'star-ask generate --model <file.gguf|hf-folder> (--prompt <text> | --prompt-ids <1,2,3>) [options]',
  options: {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'prompt-ids': { type: 'string' },
    'max-tokens': { type: 'string', default: '64' },
    temperature: { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'auto' },
  },
  notes: { backend: 'auto (WebGPU on a hardware GPU, else the CPU: a software GPU such as SwiftShader is slower), webgpu, cpu (WebAssembly) or cpu-ref (the JS reference)' },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  if (!values.model || (values.prompt === undefined) === (values['prompt-ids'] === undefined)) {
    process.stderr.write(`star-ask generate: give --model and exactly one of --prompt, --prompt-ids\n${helpText(COMMAND)}`);
    return 2;
  }
  const backendKind = backendOption(values.backend);
  const maxTokens = maxTokensOption(values['max-tokens'], 0);
  const temperature = numberOption(values.temperature, '--temperature');
  const topP = numberOption(values['top-p'], '--top-p');
  const seed = intOption(values.seed, '--seed', 0);
  if (topP <= 0 || topP > 1) throw new EngineError(`--top-p must be in (0, 1], not ${topP}`);

  const model = await openModel(values.model);
  let backend: Backend | undefined;
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const tokenizer = model.tokenizer;
    const promptIds = values['prompt-ids'] !== undefined ? parseIds(values['prompt-ids'], tokenizer.vocabSize) : tokenizer.encode(values.prompt!);
    const limit = model.config.contextLength;
    const generated = fitAnswer(limit, promptIds.length, maxTokens, `the prompt's ${promptIds.length} tokens`).maxTokens;
    if (generated < maxTokens) {
      process.stderr.write(`note: --max-tokens ${maxTokens} capped at ${generated}: the model's context is ${limit} tokens and the prompt has ${promptIds.length}\n`);
    }
    backend = await createBackend(backendKind);
    const transformer = await Transformer.create(model, backend);
    const ids: number[] = [];
    let prefillMs = 0;
    let firstTokenAt = 0;
    let lastTokenAt = 0;
    const stream = generateText(transformer, tokenizer, promptIds, {
      maxTokens, temperature, topP, seed, signal: controller.signal, onPrefill: (ms) => { prefillMs = ms; },
    });
    let text = '';
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        text += next.value.tail;
        if (!values.json) process.stdout.write(next.value.tail + '\n');
        break;
      }
      lastTokenAt = performance.now();
      if (ids.length === 0) firstTokenAt = lastTokenAt;
      ids.push(next.value.id);
      text += next.value.text;
      if (!values.json) process.stdout.write(next.value.text);
    }
    const decodeSec = (lastTokenAt - firstTokenAt) / 1000;
    const stats = {
      prefillTokensPerSec: prefillMs > 0 ? round(promptIds.length / (prefillMs / 1000)) : null,
      // Each id after the first costs one decode forward.
      decodeTokensPerSec: ids.length > 1 && decodeSec > 0 ? round((ids.length - 1) / decodeSec) : null,
      device: backend.deviceName,
      promptTokens: promptIds.length,
      generatedTokens: ids.length,
      /** At most this many tokens could be generated: --max-tokens, capped at the model's context. */
      maxTokens: generated,
    };
    if (values.json) printJson({ ids, text, stats });
    else process.stderr.write(`[${stats.promptTokens} prompt tokens, ${stats.generatedTokens} generated; prefill ${stats.prefillTokensPerSec} tok/s, decode ${stats.decodeTokensPerSec} tok/s on ${stats.device}]\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    backend?.destroy();
    await model.close();
  }
}

function parseIds(list: string, vocabSize: number): number[] {
  const ids = list.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (ids.length === 0 || bad !== undefined) {
    throw new EngineError(`--prompt-ids must be a comma list of token ids in [0, ${vocabSize})${bad !== undefined ? `; got ${bad}` : ''}`);
  }
  return ids;
}
