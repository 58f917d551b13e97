// Splits a kernel's work across threads that share the kernels' memory: a matrix product's weight rows, or
// attention's (head, query row) items. The caller's thread takes
// share 0 and waits for the others on a control block in that memory (Atomics), so Backend.matmul stays
// synchronous. Workers are started by the platform (SpawnKernelWorker; Node's glue uses worker_threads).
import { EngineError } from '../../errors';
import type { WasmMemory, WasmModule } from './wasmApi';

/**
 * Starts one worker that runs `body`, the source of a function `(data, ready) => void`, with `data` delivered by
 * structured clone (it holds a WebAssembly.Module and a shared memory); resolves once the worker called ready().
 */
export type SpawnKernelWorker = (body: string, data: unknown) => Promise<{ terminate(): void }>;

// Control block: int32 slots at `control` in the shared memory.
const GEN = 0; // bumped once per job; workers wait on it
const DONE = 1; // workers finished with the current job
const QUIT = 2;
const PARAMS = 3; // type, w, rowBytes, x, xStride, n, k, out, outStride, rows, threads, kind
const KIND = PARAMS + 11; // 0: matmul_rows; 1: attention_items (the job's address in slot PARAMS, its items in rows)
export const CONTROL_BYTES = 64;
/** Polls of the job counter before a worker sleeps (a few µs: on a busy machine a spinning thread takes the core its peers need). */
const WORKER_SPINS = 2000;
/** Each worker's shadow stack (the kernels' own is 64 KiB too: scripts/build-cpu-kernels.sh). */
export const WORKER_STACK_BYTES = 65536;

// Runs in each worker: its own instance of the module on the shared memory, then a loop of jobs.
const WORKER_BODY = `(data, ready) => {
  const { module, memory, control, index, stackTop } = data;
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  kernels.__stack_pointer.value = stackTop; // its own stack: every instance's starts at the same address
  const ctl = new Int32Array(memory.buffer, control, ${CONTROL_BYTES / 4});
  let seen = Atomics.load(ctl, ${GEN});
  ready();
  for (;;) {
    // Spin a while before sleeping: in a forward the next product follows within microseconds, and a futex wake-up
    // costs more than that (a scheduler slice on a busy machine). llama.cpp's pool polls the same way.
    for (let spin = 0; spin < ${WORKER_SPINS} && Atomics.load(ctl, ${GEN}) === seen; spin++);
    Atomics.wait(ctl, ${GEN}, seen);
    const gen = Atomics.load(ctl, ${GEN});
    if (gen === seen) continue;
    seen = gen;
    if (Atomics.load(ctl, ${QUIT})) return;
    const p = ${PARAMS};
    const rows = ctl[p + 9], threads = ctl[p + 10];
    if (index < threads) {
      const r0 = Math.floor((rows * index) / threads), r1 = Math.floor((rows * (index + 1)) / threads);
      if (r1 > r0 && ctl[${KIND}] === 1) kernels.attention_items(ctl[p], r0, r1);
      else if (r1 > r0) kernels.matmul_rows(ctl[p], ctl[p + 1], ctl[p + 2], ctl[p + 3], ctl[p + 4], ctl[p + 5], ctl[p + 6], ctl[p + 7], ctl[p + 8], r0, r1);
    }
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
  }
}`;

export type MatmulRows = (type: number, w: number, rowBytes: number, x: number, xStride: number, n: number, k: number,
  out: number, outStride: number, r0: number, r1: number) => number;

export type AttentionItems = (job: number, i0: number, i1: number) => number;

export interface MatmulJob {
  readonly type: number;
  readonly w: number;
  readonly rowBytes: number;
  readonly x: number;
  readonly xStride: number;
  readonly n: number;
  readonly k: number;
  readonly out: number;
  readonly outStride: number;
  readonly rows: number;
}

export class KernelThreadPool {
  private constructor(
    private readonly ctl: Int32Array,
    private readonly workers: readonly { terminate(): void }[],
    private readonly local: MatmulRows,
    private readonly localAttention: AttentionItems,
  ) {}

  /** Threads in all, the caller's included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts `threads - 1` workers on `memory` (shared); `control` is CONTROL_BYTES of that memory, zeroed;
   * `stacks` holds (threads - 1) * WORKER_STACK_BYTES for the workers' shadow stacks.
   */
  static async start(spawn: SpawnKernelWorker, module: WasmModule, memory: WasmMemory, control: number, stacks: number,
    threads: number, local: MatmulRows, localAttention: AttentionItems): Promise<KernelThreadPool> {
    const ctl = new Int32Array(memory.buffer, control, CONTROL_BYTES / 4);
    ctl.fill(0);
    const started = await Promise.allSettled(Array.from({ length: threads - 1 }, (_, i) => spawn(WORKER_BODY, { module, memory, control, index: i + 1, stackTop: stacks + (i + 1) * WORKER_STACK_BYTES })));
    const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      for (const w of workers) w.terminate();
      throw new EngineError(`cpu kernels: a worker thread did not start: ${String(failed.reason)}`);
    }
    return new KernelThreadPool(ctl, workers, local, localAttention);
  }

  /** Rows [0, job.rows) of the product, split into one contiguous range per thread; returns when all are done. */
  matmul(job: MatmulJob, threads = this.threads): void {
    const t = Math.max(1, Math.min(threads, this.threads, job.rows));
    if (t === 1) {
      this.local(job.type, job.w, job.rowBytes, job.x, job.xStride, job.n, job.k, job.out, job.outStride, 0, job.rows);
      return;
    }
    this.post([job.type, job.w, job.rowBytes, job.x, job.xStride, job.n, job.k, job.out, job.outStride, job.rows, t, 0]);
    this.local(job.type, job.w, job.rowBytes, job.x, job.xStride, job.n, job.k, job.out, job.outStride, 0, Math.floor(job.rows / t));
    this.awaitWorkers();
  }

  /** Attention items [0, items) of the job written at `job`, one contiguous range per thread; returns when all are done. */
  attention(job: number, items: number, threads = this.threads): void {
    const t = Math.max(1, Math.min(threads, this.threads, items));
    if (t === 1) {
      this.localAttention(job, 0, items);
      return;
    }
    this.post([job, 0, 0, 0, 0, 0, 0, 0, 0, items, t, 1]);
    this.localAttention(job, 0, Math.floor(items / t));
    this.awaitWorkers();
  }

  private post(params: number[]): void {
    const ctl = this.ctl;
    ctl.set(params, PARAMS);
    Atomics.store(ctl, DONE, 0);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
  }

  private awaitWorkers(): void {
    const ctl = this.ctl;
    // Every worker reports, those past `t` included, so none can still be reading these parameters at the next job.
    const all = this.workers.length;
    for (let spin = 0; Atomics.load(ctl, DONE) < all && spin < 2000; spin++);
    for (let done = Atomics.load(ctl, DONE); done < all; done = Atomics.load(ctl, DONE)) Atomics.wait(ctl, DONE, done);
  }

  destroy(): void {
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
