// star-ask bench logits: this engine's next-token distribution beside llama.cpp's on the same file, for a prompt of
// --tokens tokens of a real source file, at a few positions: max |Δ log p| (log-probabilities: logits less their
// log-sum-exp, so each side's free constant shift cancels) and KL(llama.cpp || star-ask). llama.cpp gives
// probabilities (temperature 1, no top-k/top-p/min-p cut); tokens it reports as 0 are left out of max |Δ log p|.
// llama.cpp is loaded as ./llamaCpp.ts says; without it this bench prints the install command and exits 1.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EngineError } from '../../../engine/errors';
import { Transformer } from '../../../engine/runtime/transformer';
import { createBackend } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { benchModelOption, command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import type { Backend } from '../../../engine/backend/types';
import type { LoadedModel } from '../../../engine/model/types';
import { LLAMA_CPP_INSTALL, LLAMA_CPP_KV, LLAMA_CPP_PREFILL_THREADS, loadLlamaCppModel, type LlamaCppModel } from './llamaCpp';

const COMMAND = command({
  usage: 'star-ask bench logits [options]',
  options: {
    ...benchModelOption,
    backend: { type: 'string', default: 'cpu' },
    text: { type: 'string', default: 'src/engine/runtime/transformer.ts' },
    tokens: { type: 'string', default: '64' },
    positions: { type: 'string', default: '7,15,31,47,63' },
  },
  notes: { backend: 'cpu, cpu-ref or webgpu' },
  about: `llama.cpp side: ${LLAMA_CPP_INSTALL}`,
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backendKind = backendOption(values.backend);
  const n = intOption(values.tokens, '--tokens');
  const positions = values.positions!.split(',').map((s) => intOption(s.trim(), '--positions', 0));
  if (positions.some((p) => p >= n)) throw new EngineError(`--positions must be below --tokens (${n})`);
  const modelPath = resolve(values.model!);
  const peer = await loadLlamaCppModel(modelPath);
  if (!peer) {
    process.stderr.write(`llama.cpp is not installed: ${LLAMA_CPP_INSTALL}\n`);
    if (values.json) printJson({ llamaCpp: { installed: false, install: LLAMA_CPP_INSTALL } });
    return 1;
  }
  const model = await openModel(modelPath);
  const backend = await createBackend(backendKind);
  try {
    const ids = model.tokenizer.encode(readFileSync(resolve(values.text!), 'utf8')).slice(0, n);
    if (ids.length < n) throw new EngineError(`the text encodes to ${ids.length} tokens, fewer than --tokens ${n}`, values.text);

    const { vocab, rows } = await logitsBesideLlamaCpp(model, backend, peer, ids, positions);
    const result = { model: model.name, backend: backendKind, device: backend.deviceName, llamaCpp: { installed: true, device: peer.device }, text: values.text, tokens: n, vocab, rows };
    if (values.json) printJson(result);
    else for (const r of rows) process.stdout.write(`position ${r.position}: max |Δ log p| ${r.maxAbsDeltaLogP.toExponential(3)}, KL ${r.kl.toExponential(3)}, top-1 ${r.top1Agrees ? 'agrees' : 'differs'} (${r.llamaCppTokens} tokens from llama.cpp)\n`);
    return 0;
  } finally {
    backend.destroy();
    await model.close();
    await peer.dispose();
  }
}

export interface LogitsRow {
  readonly position: number;
  readonly maxAbsDeltaLogP: number;
  /** KL(llama.cpp || this engine) */
  readonly kl: number;
  readonly llamaCppTokens: number;
  readonly top1Agrees: boolean;
}

/**
 * This engine's next-token log-probabilities after `ids[0..p]` beside llama.cpp's, for each p of `positions`: one
 * prefill on each side. Exported for the real-model tests (test/smollm2-llama-cpp.test.ts).
 */
export async function logitsBesideLlamaCpp(model: LoadedModel, backend: Backend, peer: LlamaCppModel, ids: readonly number[], positions: readonly number[]): Promise<{ vocab: number; rows: LogitsRow[] }> {
  const n = ids.length;
  const t = await Transformer.create(model, backend);
  let logits: Float32Array;
  try {
    const cache = t.newCache(n);
    logits = await backend.readAct((await t.forward(Int32Array.from(ids), Int32Array.from(ids, (_, i) => i), cache, { logits: 'all' }))!);
    t.releaseCache(cache);
  } finally {
    t.dispose();
  }
  const vocab = logits.length / n;
  const ctx = await peer.model.createContext({ contextSize: n + 8, batchSize: n, threads: LLAMA_CPP_PREFILL_THREADS, ...LLAMA_CPP_KV });
  const wanted = new Set(positions);
  const sampling = { temperature: 1, topK: 0, topP: 1, minP: 0 };
  let out: any[];
  try {
    out = await ctx.getSequence().controlledEvaluate(ids.map((id, i) => (wanted.has(i) ? [id, { generateNext: { probabilities: true, options: sampling } }] : id)));
  } finally {
    await ctx.dispose();
  }
  const rows = positions.map((p): LogitsRow => {
    const ours = logSoftmax(logits.subarray(p * vocab, (p + 1) * vocab));
    const theirs: Map<number, number> = out[p].next.probabilities;
    // llama.cpp's f32 probabilities sum to 1 only up to rounding: renormalized, so KL stays >= 0.
    let total = 0;
    for (const prob of theirs.values()) total += prob;
    let kl = 0;
    let maxAbs = 0;
    for (const [token, raw] of theirs) {
      const prob = raw / total;
      if (!(prob > 0)) continue;
      const d = Math.log(prob) - ours[token]!;
      kl += prob * d;
      maxAbs = Math.max(maxAbs, Math.abs(d));
    }
    return { position: p, maxAbsDeltaLogP: maxAbs, kl, llamaCppTokens: theirs.size, top1Agrees: argmax(ours) === (theirs.keys().next().value as number) };
  });
  return { vocab, rows };
}

export function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

export function argmax(x: Float64Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
