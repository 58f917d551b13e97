// star-ask bench peer: this engine beside llama.cpp (the engine local-model users run), same model, same token
// counts, same machine, one run. llama.cpp is loaded as ./llamaCpp.ts says (installed beside the checkout).
import { spawnSync } from 'node:child_process';
import { EngineError } from '../../../engine/errors';
import { createBackend } from '../../../node/createBackend';
import { median, round } from '../../figures';
import { benchModelOption, command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendsOption, intOption } from '../options';
import { benchModel, cpuMsSince } from './kernels';
import { LLAMA_CPP_CPU, LLAMA_CPP_INSTALL as INSTALL, LLAMA_CPP_KV, LLAMA_CPP_PREFILL_THREADS, llamaCppBuilds, loadLlamaCppModel } from './llamaCpp';

const COMMAND = command({
  usage: 'star-ask bench peer [options]',
  options: {
    ...benchModelOption,
    backend: { type: 'string', default: 'all' },
    prefill: { type: 'string', default: '512' },
    decode: { type: 'string', default: '64' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string' },
    'peer-cpu': { type: 'string', default: 'best' },
  },
  notes: {
    backend: 'cpu (WebAssembly), cpu-ref (the JS reference), webgpu, all, none (llama.cpp alone), or a list such as cpu,cpu-ref (side by side)',
    'peer-cpu': "llama.cpp's CPU builds, side by side: best (the one it picks for this CPU) and names of node-llama-cpp's "
      + 'libggml-cpu-<name>.so, such as haswell (AVX2, what most laptops run), alderlake (AVX2 + AVX-VNNI), icelake '
      + '(AVX-512 VNNI), sapphirerapids (adds AMX); each but best runs in a process of its own (STAR_ASK_LLAMA_CPP_CPU)',
    threads: 'threads for both engines\' prefill and decode (default: llama.cpp every core for prefill and 1 for decode, '
      + 'the cpu backend every core). With 1, the CPU-time ratios hold on a busy machine: no thread waits on another',
  },
  about: `llama.cpp side: ${INSTALL}`,
});

interface Row {
  engine: string;
  backend: string;
  device: string;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  /** Process CPU time (all threads) per token. */
  prefillCpuMsPerToken: number;
  decodeCpuMsPerToken: number;
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const kinds = values.backend === 'none' ? [] : backendsOption(values.backend);
  const peerCpus = values['peer-cpu']!.split(',').map((c) => c.trim()).filter((c) => c !== '');
  if (peerCpus.length === 0) throw new EngineError('--peer-cpu is empty: give best or CPU build names such as haswell');
  const builds = llamaCppBuilds();
  const unknown = builds ? peerCpus.filter((c) => c !== 'best' && !builds.includes(c)) : [];
  if (unknown.length > 0) throw new EngineError(`--peer-cpu: node-llama-cpp has no CPU build ${unknown.join(', ')} (it has: ${builds!.join(', ')})`);
  const prefill = intOption(values.prefill, '--prefill');
  const decode = intOption(values.decode, '--decode');
  const reps = intOption(values.reps, '--reps');
  const threads = values.threads === undefined ? undefined : intOption(values.threads, '--threads');
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };

  const rows: Row[] = [];
  const peers: Row[] = [];
  for (const cpu of peerCpus) {
    const p = cpu === (LLAMA_CPP_CPU ?? 'best')
      ? await benchLlamaCpp(values.model!, prefill, decode, reps, threads)
      : benchLlamaCppBuild(cpu, values.model!, prefill, decode, reps, threads);
    if (p) peers.push(p);
    log(p ? `llama.cpp (${cpu}): prefill ${p.prefillTokensPerS} tok/s, decode ${p.decodeTokensPerS} tok/s` : `llama.cpp: not installed (${INSTALL})`);
  }
  rows.push(...peers);
  const peer = peers[0];
  for (const kind of kinds) {
    const backend = await createBackend(kind, threads === undefined ? {} : { threads });
    try {
      const f = await benchModel(backend, values.model!, prefill, decode, reps, log);
      rows.push({ engine: 'star-ask', backend: kind, device: backend.deviceName, prefillTokensPerS: f.prefillTokensPerS, decodeTokensPerS: f.decodeTokensPerS,
        prefillCpuMsPerToken: f.prefillCpuMsPerToken, decodeCpuMsPerToken: f.decodeCpuMsPerToken });
    } finally {
      backend.destroy();
    }
  }
  // Ours against each llama.cpp build (keyed by its --peer-cpu name); `ratios` against the first.
  const ratiosTo = (p: Row) => Object.fromEntries(rows.filter((r) => r.engine !== 'llama.cpp').map((r) => [r.backend, {
    prefillVsLlamaCpp: round(r.prefillTokensPerS / p.prefillTokensPerS, 3),
    decodeVsLlamaCpp: round(r.decodeTokensPerS / p.decodeTokensPerS, 3),
    // Speed by CPU time: llama.cpp's CPU per token over ours (above 1: less CPU than llama.cpp for the same tokens).
    prefillCpuVsLlamaCpp: round(p.prefillCpuMsPerToken / r.prefillCpuMsPerToken, 3),
    decodeCpuVsLlamaCpp: round(p.decodeCpuMsPerToken / r.decodeCpuMsPerToken, 3),
  }]));
  const ratios = peer ? ratiosTo(peer) : null;
  const ratiosByPeerCpu = peers.length > 1 ? Object.fromEntries(peers.map((p, i) => [peerCpus[i], ratiosTo(p)])) : undefined;
  const result = { model: values.model, prefillTokens: prefill, decodeTokens: decode, rows, ratios, ratiosByPeerCpu, peerInstall: peer ? undefined : INSTALL };
  if (values.json) printJson(result);
  else for (const r of rows) process.stdout.write(`${r.engine.padEnd(9)} ${r.backend.padEnd(7)} prefill ${r.prefillTokensPerS} tok/s  decode ${r.decodeTokensPerS} tok/s  `
    + `CPU ${r.prefillCpuMsPerToken} / ${r.decodeCpuMsPerToken} ms/token  (${r.device})\n`);
  return 0;
}

/** benchLlamaCpp with llama.cpp's CPU build `cpu`, in a child process (ggml picks its build once per process). */
function benchLlamaCppBuild(cpu: string, model: string, prefill: number, decode: number, reps: number, threads?: number): Row | undefined {
  const args = ['bench', 'peer', '--backend', 'none', '--peer-cpu', cpu, '--model', model, '--prefill', String(prefill), '--decode', String(decode),
    '--reps', String(reps), ...(threads === undefined ? [] : ['--threads', String(threads)]), '--json'];
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
    env: { ...process.env, STAR_ASK_LLAMA_CPP_CPU: cpu === 'best' ? '' : cpu }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20,
  });
  const why = (child.stderr || String(child.error ?? '')).trim().split('\n').pop()?.replace(/^star-ask: /, '');
  if (child.status !== 0) throw new EngineError(`llama.cpp's ${cpu} build: ${why}`);
  return (JSON.parse(child.stdout) as { rows: Row[] }).rows[0];
}

/** Prefill `prefill` tokens, then decode `decode` greedy tokens after them: the same work benchModel times. */
async function benchLlamaCpp(model: string, prefill: number, decode: number, reps: number, threads?: number): Promise<Row | undefined> {
  const peer = await loadLlamaCppModel(model);
  if (!peer) return undefined;
  const m = peer.model;
  const vocab = m.tokens?.vocabularySize ?? 512;
  const ids = Array.from({ length: prefill }, (_, i) => 1 + ((i * 37) % (vocab - 1)));
  try {
    const prefillMs: number[] = [];
    const pctx = await m.createContext({ contextSize: prefill + decode + 8, batchSize: prefill, threads: threads ?? LLAMA_CPP_PREFILL_THREADS, ...LLAMA_CPP_KV });
    let prefillCpuMs = 0;
    for (let r = 0; r <= reps; r++) {
      const seq = pctx.getSequence();
      const t0 = performance.now(), cpu0 = process.cpuUsage();
      await seq.evaluateWithoutGeneratingNewTokens(ids);
      if (r > 0) { // the first run is a warm-up
        prefillMs.push(performance.now() - t0);
        prefillCpuMs += cpuMsSince(cpu0);
      }
      seq.dispose();
    }
    await pctx.dispose();
    const dctx = await m.createContext({ contextSize: prefill + decode + 8, batchSize: prefill, threads: threads ?? 1, ...LLAMA_CPP_KV });
    const seq = dctx.getSequence();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    let produced = 0;
    const t0 = performance.now(), cpu0 = process.cpuUsage();
    for await (const _token of seq.evaluate([ids[ids.length - 1]!], { temperature: 0 })) if (++produced >= decode) break;
    const decodeMs = (performance.now() - t0) / produced;
    const decodeCpuMs = cpuMsSince(cpu0) / produced;
    await dctx.dispose();
    const p = median(prefillMs);
    return { engine: 'llama.cpp', backend: 'cpu', device: peer.device, prefillTokensPerS: round((prefill * 1000) / p), decodeTokensPerS: round(1000 / decodeMs),
      prefillCpuMsPerToken: round(prefillCpuMs / reps / prefill, 3), decodeCpuMsPerToken: round(decodeCpuMs, 3) };
  } finally {
    await peer.dispose();
  }
}
