// star-ask bench <kind>: speed figures as ratios measured in one run. Each kind lives in ./bench/<kind>.ts
// and exports run(argv); add a kind with one line in `kinds`.
import { printJson } from '../output';

const kinds: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  kernels: { summary: 'GEMV GB/s, matmul GFLOP/s per weight type, prefill/decode tokens/s, per backend', load: () => import('./bench/kernels') },
  peer: { summary: 'this engine beside llama.cpp (node-llama-cpp): prefill and decode tokens/s, same model and machine', load: () => import('./bench/peer') },
  threads: { summary: 'Star Attention phase 1 on the CPU: one host vs hosts in worker threads (the same blocks)', load: () => import('./bench/threads') },
  logits: { summary: 'next-token log-probabilities beside llama.cpp on the same file: max |Δ log p| and KL at a few positions', load: () => import('./bench/logits') },
  memory: { summary: 'peak RSS and JS heap of load + one question vs the file size; KV bytes per token (f32, f16)', load: () => import('./bench/memory') },
  repo: { summary: 'the headline question: llama.cpp re-prefilling the repository vs star-ask warm and after an edit, ttft', load: () => import('./bench/repo') },
  walk: { summary: 'walk and tokenization of a generated large repository: time and peak memory', load: () => import('./bench/walk') },
  needle: { summary: 'needle in a real repository: accuracy and ttft per size x depth x mode (global, star chunk rules, anchor, llama.cpp)', load: () => import('./bench/needle') },
  rank: { summary: 'answer-block rank@1/@3 per ranking (BM25, two-stage, candidate-independent attention, fusion) on a repository beyond the context', load: () => import('./bench/rank') },
  qa: { summary: 'ten questions with known answers about a real repository: how many right, per mode (star, global, llama.cpp)', load: () => import('./bench/qa') },
  star: { summary: 'Star Attention: phase-1 star vs global, warm vs cold ttft, one-file re-index vs full', load: () => import('./bench/star') },
};

export async function run(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  const help = kind === '--help' || kind === '-h';
  if (!kind || help || !(kind in kinds)) {
    if (argv.includes('--json')) printJson({ error: `unknown bench kind ${JSON.stringify(kind ?? '')}`, kinds: Object.keys(kinds) });
    const lines = Object.entries(kinds).map(([n, k]) => `  ${n.padEnd(10)} ${k.summary}`);
    process.stderr.write(`usage: star-ask bench <kind> [options]\n\nkinds:\n${lines.join('\n')}\n`);
    return kind && !help ? 2 : 0;
  }
  return (await kinds[kind]!.load()).run(rest);
}
