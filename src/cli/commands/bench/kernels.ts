// star-ask bench kernels: per-backend kernel speed: GEMV GB/s and matmul GFLOP/s per weight type and
// shape, and prefill / decode tokens per second of a whole model (stories260K by default). On WebGPU, each op's
// achieved fraction of the device's measured peak (kernels/peak.wgsl): GEMV of read bandwidth, matmul of f32
// FMA throughput.
// Timing of single ops: GPU time from timestamp-query where the WebGPU device has it, else wall clock
// from recording to the backend's flush() (WebGPU: submit + onSubmittedWorkDone); `inner` ops per
// measurement, median of --reps; one warm-up first (pipelines compile there). Whole-model figures are
// wall clock. The defaults are small so the run stays short on SwiftShader.
import { resolve } from 'node:path';
import type { Backend, Weight } from '../../../engine/backend/types';
import { EngineError } from '../../../engine/errors';
import type { TensorType } from '../../../engine/model/types';
import { TENSOR_TYPES } from '../../../engine/quant/formats';
import { quantize } from '../../../engine/quant/quantize';
import { createRandom } from '../../../engine/runtime/random';
import { Transformer } from '../../../engine/runtime/transformer';
import { WasmBackend } from '../../../engine/backend/wasm/wasmBackend';
import { WebGpuBackend } from '../../../engine/backend/webgpu/webgpuBackend';
import { createBackend, type BackendKind } from '../../../node/createBackend';
import { openModel } from '../../../node/openModel';
import { median, round, significant } from '../../figures';
import { benchModelOption, command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendsOption, intOption } from '../options';
import { recordPeakProbe, timeGpu } from './gpuProbes';

const TYPES: readonly TensorType[] = TENSOR_TYPES;

const COMMAND = command({
  usage: 'star-ask bench kernels [options]',
  options: {
    backend: { type: 'string', default: 'all' },
    types: { type: 'string', default: TYPES.join(',') },
    gemv: { type: 'string', default: '1024x1024' },
    matmul: { type: 'string', default: '64x256x256' },
    reps: { type: 'string', default: '5' },
    ...benchModelOption,
    prefill: { type: 'string', default: '64' },
    decode: { type: 'string', default: '16' },
    tuning: { type: 'string' },
    f16: { type: 'boolean', default: false },
  },
  notes: {
    backend: 'cpu (WebAssembly), cpu-ref (the JS reference), webgpu, all, or a list such as cpu,cpu-ref (side by side)',
    gemv: 'one-row matmul shapes OUTxIN (comma-separated)',
    matmul: 'prefill-style shapes NxOUTxIN (comma-separated)',
    tuning: "WebGPU kernel shapes, gpu or emulated (default: 'emulated' on SwiftShader and other CPU emulators, else 'gpu'; "
      + "'gpu' on SwiftShader runs the real-GPU kernels there: tiled matmul and attention, subgroup GEMV)",
    f16: 'also run WebGPU with f16 products where the adapter has shader-f16 (sums stay f32), side by side',
  },
});

interface OpFigure {
  type: TensorType;
  shape: string;
  ms: number;
  gbPerS?: number;
  gflopPerS?: number;
  /** Achieved fraction of the measured peak: GEMV of read bandwidth (weight bytes / time), matmul of f32 FMA rate. */
  ofPeak?: number;
}

/** The device's measured peaks (kernels/peak.wgsl): f32 FMA GFLOP/s on registers, GB/s reading one buffer (unrounded). */
interface Peak {
  fmaGflopPerS: number;
  readGbPerS: number;
  /** What the figures are where they are not f32 FMA and one buffer read on a GPU. */
  what?: string;
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const kinds = backendsOption(values.backend);
  const types = values.types!.split(',').map((t) => t.trim()) as TensorType[];
  for (const t of types) if (!TYPES.includes(t)) throw new EngineError(`--types: unknown type ${t} (known: ${TYPES.join(', ')})`);
  const gemvShapes = parseShapes(values.gemv!, 2, '--gemv').map(([o, i]) => [1, o!, i!] as const);
  const matmulShapes = parseShapes(values.matmul!, 3, '--matmul').map(([n, o, i]) => [n!, o!, i!] as const);
  const reps = intOption(values.reps, '--reps');
  const prefill = intOption(values.prefill, '--prefill');
  const decode = intOption(values.decode, '--decode');
  const tuning = values.tuning;
  if (tuning !== undefined && tuning !== 'gpu' && tuning !== 'emulated') throw new EngineError(`--tuning: "${tuning}" is not gpu or emulated`);
  const log = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };

  const backends = [];
  // --f16: WebGPU once more with f16 products (shader-f16), side by side with the f32 run.
  const runs = kinds.flatMap((kind): [BackendKind, boolean][] => (kind === 'webgpu' && values.f16 ? [[kind, false], [kind, true]] : [[kind, false]]));
  for (const [kind, preferF16] of runs) {
    const backend = await createBackend(kind, { ...(tuning ? { tuning } : {}), preferF16 });
    try {
      if (preferF16 && !backend.f16) {
        log(`${kind} f16: ${backend.deviceName} has no shader-f16; skipped`);
        backends.push({ backend: kind, device: backend.deviceName, f16: 'requested, but the adapter has no shader-f16' });
        continue;
      }
      log(`${kind}${preferF16 ? ' f16' : ''}: ${backend.deviceName}`);
      const peak = backend instanceof WebGpuBackend ? await measurePeak(backend, reps, log) : backend instanceof WasmBackend ? measureCpuPeak(backend, reps, log) : undefined;
      const gemv = await benchMatmuls(backend, types, gemvShapes, reps, log, peak);
      const matmul = await benchMatmuls(backend, types, matmulShapes, reps, log, peak);
      const model = await benchModel(backend, resolve(values.model!), prefill, decode, reps, log);
      const opTiming = backend instanceof WebGpuBackend && backend.hasTimestamps ? 'timestamp-query' : 'wall clock';
      const kernels = backend instanceof WebGpuBackend
        ? { tuning: backend.tuning, gemvKernel: backend.gemvKernel }
        : undefined;
      backends.push({
        backend: kind, device: backend.deviceName, f16: backend.f16, opTiming, kernels,
        peak: peak ? { fmaGflopPerS: significant(peak.fmaGflopPerS), readGbPerS: significant(peak.readGbPerS), ...(peak.what ? { what: peak.what } : {}) } : 'not measured: the JS reference runs no probe',
        gemv, matmul, model,
      });
    } finally {
      backend.destroy();
    }
  }
  const result = {
    timing: 'ops: per backend opTiming (timestamp-query GPU time, or wall clock to flush() completion); model: wall clock; median of reps',
    reps,
    backends,
  };
  if (values.json) printJson(result);
  else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  return 0;
}

async function measurePeak(backend: WebGpuBackend, reps: number, log: (s: string) => void): Promise<Peak> {
  const rate = async (kind: 'fma' | 'read') => {
    // Grow the probe until one dispatch takes 2 ms (or the probe's largest size): small enough for SwiftShader,
    // large enough to fill a discrete GPU.
    let groups = 16;
    let work = 0;
    const op = () => { const w = recordPeakProbe(backend, kind, groups); work = kind === 'fma' ? w.flops : w.bytes; };
    await timeFlush(backend, op, 1); // warm-up: the pipeline compiles here
    for (let ms = await timeFlush(backend, op, 1); ms < 2 && groups < 65536; ms = await timeFlush(backend, op, 1)) {
      groups = Math.min(65536, groups * Math.max(2, Math.ceil(2 / Math.max(ms, 0.01))));
    }
    // The best of reps, not the median: a peak is what the device can do.
    const times: number[] = [];
    for (let r = 0; r < reps; r++) times.push(await timeFlush(backend, op, 1));
    return work / (Math.min(...times) * 1e6);
  };
  const peak = { fmaGflopPerS: await rate('fma'), readGbPerS: await rate('read') };
  log(`  peak (measured): ${significant(peak.fmaGflopPerS)} GFLOP/s f32 FMA, ${significant(peak.readGbPerS)} GB/s read`);
  return peak;
}

/**
 * The WebAssembly kernels' ceilings (WasmBackend.measurePeak): the dot product the quantized products are built
 * of (8-bit in the relaxed-SIMD build, else 16-bit), on registers, times the threads (the "FMA" figure, in GOP/s: 2 per multiply-add, as the products count), and
 * one thread reading memory. Float weights (F32/F16/BF16) run f32 multiply-adds, a lower ceiling: their fraction is
 * of the dot peak too.
 */
function measureCpuPeak(backend: WasmBackend, reps: number, log: (s: string) => void): Peak {
  const p = backend.measurePeak(() => performance.now(), reps);
  const [instruction, dot] = backend.relaxedSimd ? ['i16x8.relaxed_dot_i8x16_i7x16_s', '8-bit'] : ['i32x4.dot_i16x8_s', '16-bit'];
  const peak = { fmaGflopPerS: (p.opsPerSecond * p.threads) / 1e9, readGbPerS: p.readBytesPerSecond / 1e9,
    what: `${instruction} on registers, one thread's rate times ${p.threads}; read: one thread, one pass over 64 MiB` };
  log(`  peak (measured): ${significant(peak.fmaGflopPerS)} GOP/s ${dot} dot (${p.threads} threads), ${significant(peak.readGbPerS)} GB/s read (1 thread)`);
  return peak;
}

async function benchMatmuls(
  backend: Backend, types: readonly TensorType[], shapes: readonly (readonly [number, number, number])[], reps: number,
  log: (s: string) => void, peak?: Peak,
): Promise<OpFigure[]> {
  const rand = createRandom(7);
  const figures: OpFigure[] = [];
  for (const [n, outDim, inDim] of shapes) {
    const x = backend.createAct(n, inDim);
    backend.writeAct(x, Float32Array.from({ length: n * inDim }, () => rand() - 0.5));
    const out = backend.createAct(n, outDim);
    for (const type of types) {
      const values = Float32Array.from({ length: outDim * inDim }, () => (rand() - 0.5) * 0.1);
      let w: Weight;
      let stored: Uint8Array;
      try {
        stored = quantize(type, values);
        w = await backend.uploadWeight({ name: `bench.${type}`, type, shape: [inDim, outDim], offset: 0, byteLength: stored.byteLength }, stored);
      } catch (err) {
        log(`  ${type} ${n}x${outDim}x${inDim}: skipped (${(err as Error).message})`);
        continue;
      }
      // Enough ops per flush that one flush takes a measurable time, bounded for slow hosts.
      const first = await timeFlush(backend, () => backend.matmul(x, w, out), 1);
      const inner = Math.max(1, Math.min(64, Math.floor(20 / Math.max(first, 0.01))));
      const ms = await medianFlush(backend, () => backend.matmul(x, w, out), inner, reps);
      const fig: OpFigure = { type, shape: n === 1 ? `${outDim}x${inDim}` : `${n}x${outDim}x${inDim}`, ms: round(ms, 4) };
      const gbPerS = stored.byteLength / (ms * 1e6);
      const gflopPerS = (2 * n * outDim * inDim) / (ms * 1e6);
      if (n === 1) fig.gbPerS = significant(gbPerS);
      fig.gflopPerS = significant(gflopPerS);
      // From the unrounded rates: a ratio of rounded figures would round twice.
      if (peak) fig.ofPeak = significant(n === 1 ? gbPerS / peak.readGbPerS : gflopPerS / peak.fmaGflopPerS);
      log(`  ${n === 1 ? 'gemv' : 'matmul'} ${type} ${fig.shape}: ${fig.ms} ms` + (fig.gbPerS !== undefined ? `, ${fig.gbPerS} GB/s` : '') +
        `, ${fig.gflopPerS} GFLOP/s` + (fig.ofPeak !== undefined ? `, ${(fig.ofPeak * 100).toFixed(1)}% of peak` : ''));
      figures.push(fig);
      backend.release(w);
    }
    backend.release(x);
    backend.release(out);
  }
  return figures;
}

export async function benchModel(backend: Backend, file: string, prefill: number, decode: number, reps: number, log: (s: string) => void) {
  const model = await openModel(file);
  const t = await Transformer.create(model, backend);
  const ids = Int32Array.from({ length: prefill }, (_, i) => 1 + ((i * 37) % (t.config.vocabSize - 1)));
  const positions = Int32Array.from({ length: prefill }, (_, i) => i);
  const cache = t.newCache(prefill + decode + 1);
  const prefillOnce = async () => {
    cache.length = 0;
    const logits = await t.forward(ids, positions, cache, { logits: 'last' });
    await backend.argmax(logits!);
  };
  await prefillOnce(); // warm-up: pipelines compile here
  const prefillMs: number[] = [];
  let cpu0 = process.cpuUsage();
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await prefillOnce();
    prefillMs.push(performance.now() - t0);
  }
  const prefillCpuMs = cpuMsSince(cpu0) / reps;
  // Decode: one token per step after the prefill, argmax on the device.
  const decodeMs: number[] = [];
  let next = (await backend.argmax((await t.forward(ids, positions, ((cache.length = 0), cache), { logits: 'last' }))!))[0]!;
  cpu0 = process.cpuUsage();
  for (let i = 0; i < decode; i++) {
    const t0 = performance.now();
    const logits = await t.forward(Int32Array.of(next), Int32Array.of(prefill + i), cache, { logits: 'last' });
    next = (await backend.argmax(logits!))[0]!;
    decodeMs.push(performance.now() - t0);
  }
  const decodeCpuMs = cpuMsSince(cpu0) / Math.max(1, decode);
  t.releaseCache(cache);
  t.dispose();
  await model.close();
  const p = median(prefillMs);
  const d = median(decodeMs);
  const figure = {
    model: model.name,
    prefillTokens: prefill,
    prefillMs: round(p, 2),
    prefillTokensPerS: round((prefill * 1000) / p, 1),
    decodeSteps: decode,
    decodeMsPerToken: round(d, 3),
    decodeTokensPerS: round(1000 / d, 1),
    /** Process CPU time (every thread) per token: what the work costs whatever else the machine runs. */
    prefillCpuMsPerToken: round(prefillCpuMs / prefill, 3),
    decodeCpuMsPerToken: round(decodeCpuMs, 3),
  };
  log(`  ${model.name}: prefill ${figure.prefillTokensPerS} tok/s, decode ${figure.decodeTokensPerS} tok/s`);
  return figure;
}

/** Milliseconds of CPU time this process (all its threads) spent since `start` (process.cpuUsage()). */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

async function timeFlush(backend: Backend, op: () => void, inner: number): Promise<number> {
  if (backend instanceof WebGpuBackend && backend.hasTimestamps) {
    const gpuMs = await timeGpu(backend, () => { for (let i = 0; i < inner; i++) op(); });
    if (gpuMs !== undefined) return gpuMs / inner;
  }
  await backend.flush();
  const t0 = performance.now();
  for (let i = 0; i < inner; i++) op();
  await backend.flush();
  return (performance.now() - t0) / inner;
}

async function medianFlush(backend: Backend, op: () => void, inner: number, reps: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await timeFlush(backend, op, inner));
  return median(times);
}

function parseShapes(text: string, dims: number, flag: string): number[][] {
  return text.split(',').filter(Boolean).map((s) => {
    const parts = s.trim().split('x').map((p) => Number(p));
    if (parts.length !== dims || parts.some((p) => !Number.isInteger(p) || p <= 0)) {
      throw new EngineError(`${flag}: "${s}" is not ${dims} positive integers joined by x`);
    }
    return parts;
  });
}
