import { EngineError } from '../../errors';
import type { TensorInfo } from '../../model/types';
import { dequantize } from '../../quant/dequantize';
import { bytesFor, QK_K, TENSOR_FORMATS } from '../../quant/formats';
import { act, CpuBackend, vector, type CpuBackendOptions } from '../cpu/cpuBackend';
import type { Act, Weight } from '../types';
import { CpuKernels } from './cpuKernels';
import { KernelThreadPool, CONTROL_BYTES, WORKER_STACK_BYTES, type SpawnKernelWorker } from './threadPool';

/*
 * The `cpu` backend: the JS reference (CpuBackend, `cpu-ref`) with its matrix products, the time of a forward,
 * moved to WebAssembly SIMD128 kernels (kernels/cpu/matmul.c) and split across threads sharing one memory.
 * Every matrix weight lives once, in its stored blocks, in that memory; norms and biases stay f32 in JS.
 * Activations are quantized per block to 8 bits inside each product, as llama.cpp's CPU backend does, so
 * results differ from the reference by that rounding (bounds in test/wasm-ops.test.ts).
 */

export interface WasmBackendOptions extends CpuBackendOptions {
  /** Threads for the matrix products, the caller's included (default 1; needs `spawn` and a shared memory beyond 1). */
  readonly threads?: number;
  /** Starts a kernel worker; injected by the platform (Node: worker_threads). */
  readonly spawn?: SpawnKernelWorker;
}

/** Activation rows per product call (see matmul). */
const CHUNK_ROWS = 64;

class WasmWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: Weight['type'],
    readonly rows: number,
    readonly cols: number,
    /** Address of the stored bytes in the kernels' memory. */
    readonly at: number,
    readonly rowBytes: number,
  ) {}
}

export class WasmBackend extends CpuBackend {
  override readonly deviceName: string;
  private threadLimit = Number.MAX_SAFE_INTEGER;

  private constructor(
    private readonly kernels: CpuKernels,
    private readonly pool: KernelThreadPool | undefined,
    options: CpuBackendOptions,
    note = '',
  ) {
    super(options);
    const threads = pool?.threads ?? 1;
    this.deviceName = `cpu (wasm simd128, ${threads} thread${threads === 1 ? '' : 's'}${note})`;
  }

  /** Throws an Error saying why where the kernels cannot run (no WebAssembly, no SIMD128, not built). */
  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = Math.max(1, Math.floor(options.threads ?? 1));
    const kernels = CpuKernels.create(threads > 1 && options.spawn !== undefined);
    let pool: KernelThreadPool | undefined;
    let note = '';
    if (threads > 1 && options.spawn && kernels.shared) {
      const control = kernels.allocate(CONTROL_BYTES);
      const stacks = kernels.allocate((threads - 1) * WORKER_STACK_BYTES);
      try {
        pool = await KernelThreadPool.start(options.spawn, kernels.module, kernels.memory, control, stacks, threads, kernels.exports.matmul_rows);
      } catch (e) {
        // One thread still beats the JS reference many times over; the device name says why there are no more.
        note = `; no worker threads: ${(e as Error).message}`;
      }
    } else if (threads > 1) {
      note = options.spawn ? '; one thread: this host cannot share memory' : '; one thread: no way to start workers here';
    }
    return new WasmBackend(kernels, pool, options, note);
  }

  /** Threads the products run on. */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** Bytes of the kernels' memory (weights and scratch). */
  get kernelMemoryBytes(): number {
    return this.kernels.byteLength;
  }

  override async uploadWeight(info: TensorInfo, bytes: Uint8Array): Promise<Weight> {
    const cols = info.shape[0]!;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const rows = count / cols;
    if (rows <= 1) return super.uploadWeight(info, bytes);
    const need = bytesFor(info.type, count);
    if (bytes.byteLength < need) throw new EngineError(`tensor ${info.name}: ${bytes.byteLength} bytes, ${info.type} [${info.shape}] needs ${need}`);
    const at = this.kernels.allocate(need);
    this.kernels.u8().set(bytes.subarray(0, need), at);
    return new WasmWeight(info.name, info.type, rows, cols, at, need / rows);
  }

  /** Matrices are read straight into the kernels' memory; vectors go the reference's way (f32 in JS). */
  async uploadWeightFrom(info: TensorInfo, fill: (dst: Uint8Array) => Promise<void>): Promise<Weight> {
    const cols = info.shape[0]!;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const rows = count / cols;
    const need = bytesFor(info.type, count);
    if (rows <= 1) {
      const bytes = new Uint8Array(need);
      await fill(bytes);
      return super.uploadWeight(info, bytes);
    }
    const at = this.kernels.allocate(need);
    // The view is made after allocate() grew the memory; the uploads are sequential, so no growth detaches it mid-read.
    await fill(this.kernels.u8().subarray(at, at + need));
    return new WasmWeight(info.name, info.type, rows, cols, at, need / rows);
  }

  override embed(table: Weight, ids: Int32Array, out: Act): void {
    if (!(table instanceof WasmWeight)) return super.embed(table, ids, out);
    const o = act(out);
    const mem = this.kernels.u8();
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r]!;
      if (id < 0 || id >= table.rows) throw new RangeError(`embed: token id ${id} outside vocabulary of ${table.rows}`);
      const at = table.at + id * table.rowBytes;
      dequantize(table.type, mem.subarray(at, at + table.rowBytes), table.cols, o.data.subarray(r * o.cols, (r + 1) * o.cols));
    }
  }

  override matmul(x: Act, w: Weight, out: Act, bias?: Weight): void {
    if (!(w instanceof WasmWeight)) return super.matmul(x, w, out, bias);
    const n = x.rows;
    const k = w.cols;
    if (k !== x.cols || out.cols !== w.rows || out.rows < n) {
      throw new RangeError(`matmul ${w.name}: x [${n}, ${x.cols}] · [${w.rows}, ${w.cols}]ᵀ into [${out.rows}, ${out.cols}]`);
    }
    const format = TENSOR_FORMATS[w.type];
    const kq = format.blockSize === 1 ? 'none' : format.blockSize === QK_K ? 'q8_k' : 'q8_0';
    const e = this.kernels.exports;
    const xStride = kq === 'none' ? k * 4 : kq === 'q8_k' ? e.act_stride_q8_k(k) : e.act_stride_q8_0(k);
    const xs = act(x).data;
    const o = act(out).data;
    // A chunk of activation rows at a time: the scratch stays a few MB however long the batch (a 2K-row prefill
    // would hold tens of MB of it for good), and 64 rows per pass over the weights keep the products compute-bound.
    for (let r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
      const m = Math.min(CHUNK_ROWS, n - r0);
      const xBytes = m * k * 4;
      const qBytes = kq === 'none' ? 0 : ceil16(m * xStride);
      const base = this.kernels.scratch(xBytes + qBytes + m * w.rows * 4);
      const xAt = base, qAt = base + xBytes, outAt = qAt + qBytes;
      const f32 = this.kernels.f32();
      f32.set(xs.subarray(r0 * k, (r0 + m) * k), xAt / 4);
      if (kq === 'q8_0') e.quantize_q8_0(xAt, k, qAt, 0, m);
      else if (kq === 'q8_k') e.quantize_q8_k(xAt, k, qAt, 0, m);
      const job = { type: format.ggmlId, w: w.at, rowBytes: w.rowBytes, x: kq === 'none' ? xAt : qAt, xStride, n: m, k, out: outAt, outStride: w.rows, rows: w.rows };
      if (this.pool) this.pool.matmul(job, this.threadLimit);
      else e.matmul_rows(job.type, job.w, job.rowBytes, job.x, job.xStride, m, k, job.out, job.outStride, 0, job.rows);
      o.set(f32.subarray(outAt / 4, outAt / 4 + m * w.rows), r0 * w.rows);
    }
    if (bias) {
      const b = this.biasData(bias);
      for (let r = 0; r < n; r++) for (let j = 0, at = r * w.rows; j < w.rows; j++) o[at + j] = o[at + j]! + b[j]!;
    }
  }

  /** The same product on at most `threads` threads (tests: a thread split must not change a result). */
  matmulOn(threads: number, x: Act, w: Weight, out: Act, bias?: Weight): void {
    const saved = this.threadLimit;
    this.threadLimit = threads;
    try {
      this.matmul(x, w, out, bias);
    } finally {
      this.threadLimit = saved;
    }
  }

  override destroy(): void {
    this.pool?.destroy();
    super.destroy();
  }

  private biasData(bias: Weight): Float32Array {
    if (bias instanceof WasmWeight) throw new EngineError(`${bias.name}: a matrix was used as a bias`);
    return vector(bias);
  }
}

function ceil16(n: number): number {
  return Math.ceil(n / 16) * 16;
}
