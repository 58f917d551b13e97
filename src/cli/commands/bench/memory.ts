// star-ask bench memory: what loading a model and answering one question costs in memory, against the model
// file's size, on one backend; and the KV cache's size per token at the model's shape (f32 and f16) with the disk
// size of a 100K-token repository.
// Peak RSS is the kernel's own high-water mark (process.resourceUsage().maxRSS), exact. The JS figures (heap,
// ArrayBuffers: typed arrays such as CPU weights live outside the heap) are sampled every --interval-ms and at each
// phase's end, so a peak inside one synchronous stretch of compute can be missed. On WebGPU over SwiftShader the
// "device" memory is this process's memory too, so RSS includes it there; the host-side figure to compare with
// the file is heap + ArrayBuffers. Sampled peaks include garbage not yet collected (a tensor's read buffer after its
// upload): run under `node --expose-gc` to also get what is retained while answering, after a full collection at
// phase 1's first progress report (the weights are loaded then, and still in use).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { kvBytesPerToken, type KvDtype } from '../../../engine/runtime/kvBytes';
import { openModel } from '../../../node/openModel';
import { askRepository } from '../../../node/star/starRepository';
import { round } from '../../figures';
import { benchModelOption, command, parseCommand } from '../../help';
import { printJson } from '../../output';
import { backendOption, intOption } from '../options';
import { writeSourceRepository } from './sourceRepository';

const COMMAND = command({
  usage: 'star-ask bench memory [options]',
  options: {
    ...benchModelOption,
    backend: { type: 'string', default: 'cpu' },
    'repo-tokens': { type: 'string', default: '1024' },
    'chunk-size': { type: 'string', default: '512' },
    'interval-ms': { type: 'string', default: '5' },
  },
  notes: { backend: 'cpu, cpu-ref, webgpu or auto' },
  about: "Run it as 'node --expose-gc dist/cli.mjs bench memory ...' to also report the memory retained while answering.",
});

/** Shapes of the models users download (their config.json), for KV sizes beside the measured model's. */
const REFERENCE_SHAPES = [
  { name: 'Qwen2.5-Coder-0.5B', nLayers: 24, nKvHeads: 2, headDim: 64 },
  { name: 'Qwen2.5-Coder-1.5B', nLayers: 28, nKvHeads: 2, headDim: 128 },
  { name: 'Llama-3.2-1B', nLayers: 16, nKvHeads: 8, headDim: 64 },
];
const REPOSITORY_TOKENS = 100_000;
const MB = 1024 * 1024;

/** High-water marks of process.memoryUsage(), sampled. */
class MemorySampler {
  heapUsed = 0;
  arrayBuffers = 0;
  /** heapUsed + arrayBuffers at the same sample: the JS side's memory. */
  jsTotal = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const m = process.memoryUsage();
    this.heapUsed = Math.max(this.heapUsed, m.heapUsed);
    this.arrayBuffers = Math.max(this.arrayBuffers, m.arrayBuffers);
    this.jsTotal = Math.max(this.jsTotal, m.heapUsed + m.arrayBuffers);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

/** Peak RSS so far, bytes (maxRSS is in KiB). */
const peakRss = () => process.resourceUsage().maxRSS * 1024;

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const backend = backendOption(values.backend);
  const repoTokens = intOption(values['repo-tokens'], '--repo-tokens');
  const chunkSize = intOption(values['chunk-size'], '--chunk-size');
  const modelPath = resolve(values.model!);
  const fileBytes = statSync(modelPath).size;

  const before = process.memoryUsage();
  const sampler = new MemorySampler(intOption(values['interval-ms'], '--interval-ms'));
  const repo = mkdtempSync(join(tmpdir(), 'star-bench-memory-repo-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'star-bench-memory-kv-'));
  let model;
  try {
    let t0 = performance.now();
    model = await openModel(modelPath);
    const openMs = performance.now() - t0;
    sampler.sample();
    const afterOpen = { rss: peakRss(), js: sampler.jsTotal };
    writeSourceRepository(repo, model.tokenizer, repoTokens);
    t0 = performance.now();
    // The weights go to the backend inside ask (each ask opens its hosts): load + one question.
    let retained: { heapUsedBytes: number; arrayBuffersBytes: number } | null = null;
    const gc = (globalThis as { gc?: () => void }).gc;
    const onProgress = () => {
      if (!gc || retained) return;
      gc();
      const m = process.memoryUsage();
      retained = { heapUsedBytes: m.heapUsed, arrayBuffersBytes: m.arrayBuffers };
    };
    const answer = await askRepository({ repo, model, chunkSize, backend, cacheDir, question: 'Which function throws when the session is over the limit?', maxTokens: 8, onProgress });
    const askMs = performance.now() - t0;
    sampler.stop();
    const heap = getHeapStatistics();
    const rss = peakRss();
    const c = model.config;
    const kv = (dtype: KvDtype) => kvBytesPerToken(c, dtype);
    const result = {
      model: model.name,
      backend,
      fileBytes,
      repository: { tokens: answer.stats.contextTokens, blocks: answer.stats.blocks },
      timesMs: { open: round(openMs), askWithLoad: round(askMs), ttft: round(answer.stats.ttftMs) },
      memory: {
        rssBeforeBytes: before.rss,
        peakRssAfterOpenBytes: afterOpen.rss,
        peakRssBytes: rss,
        peakHeapUsedBytes: sampler.heapUsed,
        peakArrayBuffersBytes: sampler.arrayBuffers,
        peakJsBytes: sampler.jsTotal,
        /** After a full collection while answering; null unless run under node --expose-gc. */
        retainedJs: retained as { heapUsedBytes: number; arrayBuffersBytes: number } | null,
        v8: { totalHeapSize: heap.total_heap_size, usedHeapSize: heap.used_heap_size, mallocedMemory: heap.malloced_memory, peakMallocedMemory: heap.peak_malloced_memory, externalMemory: heap.external_memory },
        /** Against the file: peak RSS (whole process), its growth from before the load, and the JS side. */
        peakRssOverFile: round(rss / fileBytes, 3),
        rssGrowthOverFile: round((rss - before.rss) / fileBytes, 3),
        peakJsOverFile: round(sampler.jsTotal / fileBytes, 3),
      },
      kv: {
        shape: { nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim },
        bytesPerTokenF32: kv('f32'),
        bytesPerTokenF16: kv('f16'),
        bytesPerTokenQ8: kv('q8'),
        repositoryTokens: REPOSITORY_TOKENS,
        repositoryDiskBytesF32: kv('f32') * REPOSITORY_TOKENS,
        repositoryDiskBytesF16: kv('f16') * REPOSITORY_TOKENS,
        repositoryDiskBytesQ8: kv('q8') * REPOSITORY_TOKENS,
        referenceShapes: REFERENCE_SHAPES.map((s) => ({ ...s, bytesPerTokenF32: kvBytesPerToken(s, 'f32'), bytesPerTokenF16: kvBytesPerToken(s, 'f16'),
          bytesPerTokenQ8: kvBytesPerToken(s, 'q8'), repositoryDiskBytesF16: kvBytesPerToken(s, 'f16') * REPOSITORY_TOKENS,
          repositoryDiskBytesQ8: kvBytesPerToken(s, 'q8') * REPOSITORY_TOKENS })),
      },
    };
    if (values.json) printJson(result);
    else process.stdout.write(summary(result));
    return 0;
  } finally {
    sampler.stop();
    await model?.close();
    rmSync(repo, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

function summary(r: {
  model: string; backend: string; fileBytes: number; timesMs: { open: number; askWithLoad: number };
  memory: { rssBeforeBytes: number; peakRssBytes: number; peakHeapUsedBytes: number; peakArrayBuffersBytes: number; peakRssOverFile: number; rssGrowthOverFile: number; peakJsOverFile: number;
    retainedJs: { heapUsedBytes: number; arrayBuffersBytes: number } | null };
  kv: { bytesPerTokenF32: number; bytesPerTokenF16: number; bytesPerTokenQ8: number; repositoryDiskBytesF32: number; repositoryDiskBytesF16: number; repositoryDiskBytesQ8: number; referenceShapes: { name: string; bytesPerTokenF16: number; bytesPerTokenQ8: number; repositoryDiskBytesF16: number; repositoryDiskBytesQ8: number }[] };
}): string {
  const mb = (b: number) => `${round(b / MB)} MB`;
  const m = r.memory;
  return [
    `${r.model} (${mb(r.fileBytes)}), ${r.backend}: open ${r.timesMs.open} ms, load + one question ${r.timesMs.askWithLoad} ms`,
    `peak RSS ${mb(m.peakRssBytes)} (${m.peakRssOverFile}x the file; ${m.rssGrowthOverFile}x grown from ${mb(m.rssBeforeBytes)} before the load)`,
    `peak JS heap ${mb(m.peakHeapUsedBytes)}, ArrayBuffers ${mb(m.peakArrayBuffersBytes)}; heap + ArrayBuffers ${m.peakJsOverFile}x the file`,
    m.retainedJs ? `retained while answering (after a full collection): heap ${mb(m.retainedJs.heapUsedBytes)}, ArrayBuffers ${mb(m.retainedJs.arrayBuffersBytes)}` : '(run under node --expose-gc for the memory retained while answering)',
    `KV per token: ${r.kv.bytesPerTokenF32} B f32, ${r.kv.bytesPerTokenF16} B f16, ${r.kv.bytesPerTokenQ8} B q8; a 100K-token repository on disk: ${mb(r.kv.repositoryDiskBytesF32)} f32, ${mb(r.kv.repositoryDiskBytesF16)} f16, ${mb(r.kv.repositoryDiskBytesQ8)} q8`,
    ...r.kv.referenceShapes.map((s) => `  ${s.name}: ${s.bytesPerTokenF16} B/token f16, ${s.bytesPerTokenQ8} q8; 100K tokens ${mb(s.repositoryDiskBytesF16)} f16, ${mb(s.repositoryDiskBytesQ8)} q8`),
  ].join('\n') + '\n';
}
