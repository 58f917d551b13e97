// star-ask bench qa: ten questions with known answers about a real repository (./qaSet.ts: npm's own
// npm-registry-fetch), answered in each mode of bench needle (./needle.ts), scored by containment. What a user
// reads: how many of the ten a small model gets right from the code, Star vs global (and llama.cpp on the same
// tokens as global, the fast stand-in for global while this engine's CPU backend is slow).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EngineError } from '../../../engine/errors';
import { openModel } from '../../../node/openModel';
import { median, round } from '../../figures';
import { command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import { modelOrDefault } from '../fetchModel';
import { LLAMA_CPP_INSTALL, loadLlamaCppModel } from './llamaCpp';
import { answerWith, NEEDLE_MODES } from './needle';
import { QA_FILES, QA_QUESTIONS, QA_SOURCE } from './qaSet';

const COMMAND = command({
  usage: 'star-ask bench qa [options]',
  options: {
    model: { type: 'string' },
    modes: { type: 'string', default: 'star-512,llama.cpp' },
    questions: { type: 'string', default: String(QA_QUESTIONS.length) },
    'max-tokens': { type: 'string', default: '40' },
    backend: { type: 'string', default: 'cpu' },
  },
  notes: { model: 'a GGUF file (default: SmolLM2-135M-Instruct, fetched once)', questions: 'how many of the questions to ask', backend: 'cpu, cpu-ref, webgpu or auto' },
  about: `modes: ${NEEDLE_MODES.map((m) => m.name).join(', ')}`,
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backend = backendOption(values.backend);
  const modes = values.modes!.split(',').map((name) => {
    const m = NEEDLE_MODES.find((x) => x.name === name.trim());
    if (!m) throw new EngineError(`--modes: ${name} is not one of ${NEEDLE_MODES.map((x) => x.name).join(', ')}`);
    return m;
  });
  const questions = QA_QUESTIONS.slice(0, intOption(values.questions, '--questions', 1, QA_QUESTIONS.length));
  const maxTokens = intOption(values['max-tokens'], '--max-tokens');
  const source = QA_SOURCE();
  for (const q of questions) {
    const text = readFileSync(join(source, q.file), 'utf8');
    if (!q.expect.some((e) => text.includes(e) || q.file.endsWith(e))) throw new EngineError(`the answer to "${q.question}" (${q.expect.join(' / ')}) is not in ${q.file}: another version of the package?`, source);
  }
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  const modelPath = resolve(await modelOrDefault(values.model, values.json));
  const model = await openModel(modelPath);
  const peer = modes.some((m) => m.path === 'llama.cpp') ? await loadLlamaCppModel(modelPath) : undefined;
  const repo = mkdtempSync(join(tmpdir(), 'star-qa-'));
  try {
    for (const f of QA_FILES) {
      mkdirSync(dirname(join(repo, f)), { recursive: true });
      copyFileSync(join(source, f), join(repo, f));
    }
    const repoTokens = QA_FILES.reduce((s, f) => s + model.tokenizer.encode(readFileSync(join(repo, f), 'utf8'), { addBos: false }).length, 0);
    const results = [];
    for (const mode of modes) {
      if (mode.path === 'llama.cpp' && !peer) {
        log(`llama.cpp: not installed (${LLAMA_CPP_INSTALL}); skipped`);
        continue;
      }
      const cacheDir = mkdtempSync(join(tmpdir(), 'star-qa-kv-'));
      try {
        const answers = [];
        for (const q of questions) {
          const r = await answerWith(model, peer, mode, { repo, repoTokens, question: q.question, maxTokens, backend, cacheDir });
          const correct = q.expect.some((e) => r.answer.toLowerCase().includes(e.toLowerCase()));
          log(`${mode.name} ${correct ? 'right' : 'wrong'}: ${q.question} -> ${JSON.stringify(r.answer)}`);
          answers.push({ question: q.question, expect: q.expect, answer: r.answer, correct, ttftMs: round(r.ttftMs), contextTokens: r.contextTokens });
        }
        results.push({ mode: mode.name, right: answers.filter((a) => a.correct).length, asked: answers.length, medianTtftMs: round(median(answers.map((a) => a.ttftMs))), answers });
      } finally {
        rmSync(cacheDir, { recursive: true, force: true });
      }
    }
    const out = { model: model.name, source, files: QA_FILES, repoTokens, maxTokens, results };
    if (values.json) printJson(out);
    else for (const r of results) process.stdout.write(`${r.mode}: ${r.right}/${r.asked} right (median ttft ${r.medianTtftMs} ms)\n`);
    return 0;
  } finally {
    rmSync(repo, { recursive: true, force: true });
    await peer?.dispose();
    await model.close();
  }
}
