// star-ask bench threads: Star Attention phase 1 (context encoding) with one host in this thread
// vs k hosts each in its own worker thread (createThreadHostPool), same blocks. Also
// reports process CPU time over wall time: about 1 means the threads got one core between them
// (a busy or 1-core machine), about k means k cores worked at once.
import { resolve } from 'node:path';
import type { LoadedModel } from '../../../engine/model/types';
import { CpuBackend } from '../../../engine/backend/cpu/cpuBackend';
import { encodeContext } from '../../../engine/star/context';
import type { StarHost } from '../../../engine/star/host';
import { fixedLayout } from '../../../engine/star/layout';
import { shiftBlockKv } from '../../../engine/star/shift';
import { openModel } from '../../../node/openModel';
import { createLocalHosts } from '../../../node/star/localHosts';
import { createThreadHostPool } from '../../../node/star/hostPool';
import { printJson } from '../../output';
import { intOption } from '../options';
import { benchModelOption, command, parseCommand } from '../../help';

interface Timing {
  encodeMs: number;
  cpuMs: number;
}

const COMMAND = command({
  usage: 'star-ask bench threads [options]',
  options: {
    ...benchModelOption,
    tokens: { type: 'string', default: '2048' },
    chunk: { type: 'string', default: '256' },
    hosts: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '2' },
  },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const tokens = intOption(values.tokens, '--tokens');
  const chunk = intOption(values.chunk, '--chunk');
  const hosts = intOption(values.hosts, '--hosts');
  const repeats = intOption(values.repeats, '--repeats');
  const path = resolve(values.model!);
  const model = await openModel(path);
  try {
    const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
    const vocab = model.config.vocabSize;
    // Any fixed ids do: the time depends on the shapes only.
    const layout = fixedLayout(Array.from({ length: tokens }, (_, i) => 3 + ((i * 7919) % (vocab - 3))), tokens, chunk);
    const inThread: Timing[] = [];
    const threaded: Timing[] = [];
    // Alternated so a neighbour's load hits both; each run builds fresh hosts (weights included).
    for (let r = 0; r < repeats; r++) {
      const a = await createLocalHosts(model, { backend: 'cpu', hosts: 1 });
      inThread.push(await timePhase1(model, layout, a.hosts).finally(() => a.dispose()));
      const b = await createThreadHostPool({ backend: 'cpu', hosts, modelPath: path });
      threaded.push(await timePhase1(model, layout, b.hosts).finally(() => b.dispose()));
      log(`run ${r + 1}: 1 host ${inThread[r]!.encodeMs.toFixed(0)} ms (cpu ${inThread[r]!.cpuMs.toFixed(0)}), ${hosts} hosts in threads ${threaded[r]!.encodeMs.toFixed(0)} ms (cpu ${threaded[r]!.cpuMs.toFixed(0)})`);
    }
    const best = (t: Timing[]) => t.reduce((m, x) => (x.encodeMs < m.encodeMs ? x : m));
    const one = best(inThread);
    const many = best(threaded);
    const result = {
      model: model.name, backend: 'cpu', contextTokens: tokens, chunk, blocks: layout.blocks.length, hosts,
      oneHostMs: one.encodeMs, threadHostsMs: many.encodeMs,
      /** oneHostMs / threadHostsMs: above 1 means the worker threads encode in parallel. */
      speedup: one.encodeMs / many.encodeMs,
      threadHostsCpuOverWall: many.cpuMs / many.encodeMs,
    };
    if (values.json) printJson(result);
    else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  } finally {
    await model.close();
  }
}

async function timePhase1(model: LoadedModel, layout: ReturnType<typeof fixedLayout>, hosts: readonly StarHost[]): Promise<Timing> {
  const c = model.config;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await encodeContext({
    modelIdentity: model.identity, anchor: layout.anchor, blocks: layout.blocks, hosts,
    kvWidth: c.nKvHeads * c.headDim, nLayers: c.nLayers,
    shift: (kv, s) => shiftBlockKv(new CpuBackend(), kv, s, c.headDim, c.rope),
  });
  const encodeMs = performance.now() - t0;
  const u = process.cpuUsage(u0);
  return { encodeMs, cpuMs: (u.user + u.system) / 1000 };
}
