import { EngineError } from '../../errors';
import type { RopeParams, TensorInfo } from '../../model/types';
import { dequantize } from '../../quant/dequantize';
import { bytesFor, QK_K, TENSOR_FORMATS } from '../../quant/formats';
import { act, CpuBackend, vector, type CpuBackendOptions } from '../cpu/cpuBackend';
import { ropeInvFreq, rotateRow } from '../cpu/rope';
import type { Act, AttnShape, AttnSource, KvTensor, Product, Weight } from '../types';
import { CpuKernels, type KernelExports } from './cpuKernels';
import { KernelThreadPool, CONTROL_BYTES, WORKER_STACK_BYTES, type SpawnKernelWorker } from './threadPool';

/*
 * The `cpu` backend: the JS reference (CpuBackend, `cpu-ref`) with its matrix products and attention, the time of
 * a forward, moved to WebAssembly SIMD128 kernels (kernels/cpu/matmul.c, attention.c) and split across threads
 * sharing one memory. Every matrix weight lives once, in its stored blocks, in that memory, and so does every KV
 * tensor (attention reads it in place); norms and biases stay f32 in JS.
 * Activations are quantized per block to 8 bits inside each product, as llama.cpp's CPU backend does, so
 * results differ from the reference by that rounding (bounds in test/wasm-ops.test.ts).
 */

export interface WasmBackendOptions extends CpuBackendOptions {
  /** Threads for the matrix products, the caller's included (default 1; needs `spawn` and a shared memory beyond 1). */
  readonly threads?: number;
  /** Starts a kernel worker; injected by the platform (Node: worker_threads). */
  readonly spawn?: SpawnKernelWorker;
  /** false: the SIMD128 build even where relaxed SIMD runs (same results, slower; for measuring the difference). */
  readonly relaxedSimd?: boolean;
}

/** How a weight takes its activations: f32 rows (float weights) or Q8_0 / Q8_K rows of qb bytes a value. */
interface ActivationForm {
  kq: 'none' | 'q8_0' | 'q8_k';
  qb: number;
  xStride: number;
  /** Equal for weights that can share one quantized copy of x (the type may differ: Q4_K and Q6_K share Q8_K). */
  key: string;
}

function activationForm(e: KernelExports, w: WasmWeight): ActivationForm {
  const format = TENSOR_FORMATS[w.type];
  const kq = format.blockSize === 1 ? 'none' : format.blockSize === QK_K ? 'q8_k' : 'q8_0';
  const qb = e.act_bytes_per_value(format.ggmlId);
  const k = w.cols;
  const xStride = kq === 'none' ? k * 4 : kq === 'q8_k' ? e.act_stride_q8_k(k) : e.act_stride_q8_0(k, qb);
  return { kq, qb, xStride, key: `${kq}:${qb}:${k}` };
}

/** Activation rows per product call (see matmul). */
const CHUNK_ROWS = 64;
/** Multiply-adds below which attention runs on the caller's thread alone (waking the pool costs more). */
const ATTENTION_THREAD_WORK = 1 << 16;
/** kernels/cpu/attention.c: int32 fields of a Source and of a Job, and its widest head. */
const SOURCE_INTS = 8;
const JOB_INTS = 11;
const MAX_HEAD_DIM = 512;
/** Values per pass of rmsNorm and swiglu: their scratch stays small however long the batch. */
const CHUNK_VALUES = 1 << 16;

/** A K or V store in the kernels' memory, so attention reads it in place: [capacity, width] f32 at `at`. */
class WasmKv implements KvTensor {
  released = false;
  constructor(readonly capacity: number, readonly width: number, readonly at: number) {}
  get bytes(): number {
    return this.capacity * this.width * 4;
  }
}

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
    this.deviceName = `cpu (wasm simd128${kernels.relaxed ? ' + relaxed' : ''}, ${threads} thread${threads === 1 ? '' : 's'}${note})`;
  }

  /** Throws an Error saying why where the kernels cannot run (no WebAssembly, no SIMD128, not built). */
  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = Math.max(1, Math.floor(options.threads ?? 1));
    const kernels = CpuKernels.create(threads > 1 && options.spawn !== undefined, options.relaxedSimd ?? true);
    let pool: KernelThreadPool | undefined;
    let note = '';
    if (threads > 1 && options.spawn && kernels.shared) {
      const control = kernels.allocate(CONTROL_BYTES);
      const stacks = kernels.allocate((threads - 1) * WORKER_STACK_BYTES);
      try {
        pool = await KernelThreadPool.start(options.spawn, kernels.module, kernels.memory, control, stacks, threads, kernels.exports.matmul_rows, kernels.exports.attention_items);
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

  /** Whether the relaxed-SIMD build of the kernels runs (cpuKernels.ts relaxedKernelsRun). */
  get relaxedSimd(): boolean {
    return this.kernels.relaxed;
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

  override createKv(capacity: number, width: number): KvTensor {
    const t = new WasmKv(capacity, width, this.kernels.allocateReleasable(capacity * width * 4));
    this.kernels.f32().fill(0, t.at / 4, t.at / 4 + capacity * width); // a reused region holds an earlier tensor's rows
    return t;
  }

  override release(t: Act | KvTensor | Weight): void {
    if (!(t instanceof WasmKv) || t.released) return;
    t.released = true;
    this.kernels.release(t.at, t.bytes);
  }

  override writeKv(dst: KvTensor, row: number, data: Float32Array): void {
    const d = wasmKv(dst);
    if (row * d.width + data.length > d.capacity * d.width) throw new RangeError(`writeKv: ${data.length} values at row ${row} overflow capacity ${d.capacity}`);
    this.kernels.f32().set(data, d.at / 4 + row * d.width);
  }

  override async readKv(src: KvTensor, row: number, rows: number): Promise<Float32Array> {
    const s = wasmKv(src);
    return this.kernels.f32().slice(s.at / 4 + row * s.width, s.at / 4 + (row + rows) * s.width);
  }

  override storeKv(src: Act, dst: KvTensor, row: number, srcRow = 0, rows = src.rows - srcRow): void {
    const s = act(src);
    const d = wasmKv(dst);
    if (s.cols !== d.width) throw new RangeError(`storeKv: act width ${s.cols} != kv width ${d.width}`);
    if (srcRow < 0 || rows < 0 || srcRow + rows > s.rows) throw new RangeError(`storeKv: source rows [${srcRow}, ${srcRow + rows}) outside ${s.rows}`);
    if (row + rows > d.capacity) throw new RangeError(`storeKv: rows [${row}, ${row + rows}) exceed capacity ${d.capacity}`);
    this.kernels.f32().set(s.data.subarray(srcRow * s.cols, (srcRow + rows) * s.cols), d.at / 4 + row * d.width);
  }

  override ropeShiftKv(k: KvTensor, row: number, rows: number, delta: number, headDim: number, rope: RopeParams): void {
    const t = wasmKv(k);
    const inv = ropeInvFreq(headDim, rope);
    const cos = new Float64Array(headDim / 2);
    const sin = new Float64Array(headDim / 2);
    const f32 = this.kernels.f32();
    for (let r = row; r < row + rows; r++) rotateRow(f32, t.at / 4 + r * t.width, t.width, headDim, delta, inv, rope.layout === 'adjacent', cos, sin);
  }

  /**
   * kernels/cpu/attention.c over the KV in place: q is copied in, out and the running max and sum copied back
   * (lse = max + log(sum) here). Split by (head, row) across the pool when the work pays for waking it.
   */
  override attention(q: Act, sources: readonly AttnSource[], shape: AttnShape, out: Act, lse?: Act): void {
    const { nHeads, nKvHeads, headDim } = shape;
    const width = nHeads * headDim;
    if (headDim > MAX_HEAD_DIM || nHeads % nKvHeads !== 0) throw new EngineError(`attention: ${nHeads} heads over ${nKvHeads} KV heads of ${headDim} is not supported by the cpu kernels`);
    if (q.cols !== width || out.cols !== width || out.rows < q.rows) throw new RangeError(`attention: q [${q.rows}, ${q.cols}] into [${out.rows}, ${out.cols}] for ${nHeads} heads of ${headDim}`);
    const rows = q.rows;
    const qBytes = rows * width * 4, mlBytes = rows * nHeads * 8, srcBytes = ceil16(sources.length * SOURCE_INTS * 4);
    const base = this.kernels.scratch(2 * qBytes + mlBytes + srcBytes + JOB_INTS * 4);
    const qAt = base, outAt = qAt + qBytes, mlAt = outAt + qBytes, srcAt = mlAt + mlBytes, jobAt = srcAt + srcBytes;
    const f32 = this.kernels.f32();
    const i32 = new Int32Array(f32.buffer);
    f32.set(act(q).data.subarray(0, rows * width), qAt / 4);
    let total = 0;
    sources.forEach((s, i) => {
      const k = wasmKv(s.k), v = wasmKv(s.v);
      if (k.width !== v.width || s.length > k.capacity || s.length > v.capacity) throw new RangeError(`attention: source ${i} of ${s.length} entries over K [${k.capacity}, ${k.width}], V [${v.capacity}, ${v.width}]`);
      total += s.length;
      i32.set([k.at, v.at, k.width, s.length, s.causalOffset === undefined ? 0 : 1, s.causalOffset ?? 0, s.rows?.start ?? 0, s.rows ? s.rows.count : -1], srcAt / 4 + i * SOURCE_INTS);
    });
    i32.set([qAt, width, srcAt, sources.length, nHeads, nKvHeads, headDim, outAt, width, mlAt, rows], jobAt / 4);
    const items = rows * nHeads;
    // An explicit limit (attentionOn) always splits, so the tests exercise the split on small shapes too.
    const split = this.threadLimit !== Number.MAX_SAFE_INTEGER || items * total * headDim >= ATTENTION_THREAD_WORK;
    if (this.pool && split) this.pool.attention(jobAt, items, this.threadLimit);
    else this.kernels.exports.attention_items(jobAt, 0, items);
    act(out).data.set(f32.subarray(outAt / 4, outAt / 4 + rows * width));
    if (lse) {
      const ls = act(lse).data;
      for (let i = 0; i < items; i++) {
        const sum = f32[mlAt / 4 + 2 * i + 1]!;
        ls[i] = sum > 0 ? f32[mlAt / 4 + 2 * i]! + Math.log(sum) : -Infinity;
      }
    }
  }

  override rmsNorm(x: Act, w: Weight, eps: number, out: Act): void {
    const cols = x.cols;
    const ws = this.biasData(w);
    if (ws.length !== cols || out.cols !== cols || out.rows < x.rows) throw new RangeError(`rmsNorm ${w.name}: x [${x.rows}, ${cols}] with ${ws.length} weights into [${out.rows}, ${out.cols}]`);
    const xs = act(x).data, o = act(out).data;
    const chunk = Math.max(1, Math.floor(CHUNK_VALUES / cols));
    for (let r0 = 0; r0 < x.rows; r0 += chunk) {
      const m = Math.min(chunk, x.rows - r0), bytes = ceil16(m * cols * 4);
      const wAt = this.kernels.scratch(ceil16(cols * 4) + 2 * bytes), xAt = wAt + ceil16(cols * 4), oAt = xAt + bytes;
      const f32 = this.kernels.f32();
      f32.set(ws, wAt / 4);
      f32.set(xs.subarray(r0 * cols, (r0 + m) * cols), xAt / 4);
      this.kernels.exports.rms_norm_rows(xAt, wAt, eps, oAt, m, cols);
      o.set(f32.subarray(oAt / 4, oAt / 4 + m * cols), r0 * cols);
    }
  }

  /** kernels/cpu/elementwise.c, in f64 as the reference: outputs equal its f32 rounding nearly everywhere. */
  override swiglu(gate: Act, up: Act, out: Act): void {
    const g = act(gate).data, u = act(up).data, o = act(out).data;
    const len = gate.rows * gate.cols;
    if (up.rows * up.cols < len || out.rows * out.cols < len) throw new RangeError(`swiglu: gate [${gate.rows}, ${gate.cols}] with up [${up.rows}, ${up.cols}] into [${out.rows}, ${out.cols}]`);
    for (let i0 = 0; i0 < len; i0 += CHUNK_VALUES) {
      const m = Math.min(CHUNK_VALUES, len - i0), bytes = ceil16(m * 4);
      const gAt = this.kernels.scratch(3 * bytes), uAt = gAt + bytes, oAt = uAt + bytes;
      const f32 = this.kernels.f32();
      f32.set(g.subarray(i0, i0 + m), gAt / 4);
      f32.set(u.subarray(i0, i0 + m), uAt / 4);
      this.kernels.exports.swiglu_f32(gAt, uAt, oAt, m);
      o.set(f32.subarray(oAt / 4, oAt / 4 + m), i0);
    }
  }

  override matmul(x: Act, w: Weight, out: Act, bias?: Weight): void {
    this.matmulShared(x, [bias ? { w, out, bias } : { w, out }]);
  }

  override matmulShared(x: Act, products: readonly Product[]): void {
    // Weights that take x in the same form share its quantization; otherwise each product runs alone.
    const forms = products.map((p) => (p.w instanceof WasmWeight ? activationForm(this.kernels.exports, p.w) : undefined));
    if (forms.every((f) => f !== undefined && f.key === forms[0]!.key)) return this.products(x, forms[0]!, products);
    products.forEach((p, i) => (forms[i] ? this.products(x, forms[i]!, [p]) : super.matmul(x, p.w, p.out, p.bias)));
  }

  /** The products of x with weights that take it in form `f`: x copied in and quantized once per chunk of rows. */
  private products(x: Act, f: ActivationForm, products: readonly Product[]): void {
    const n = x.rows;
    const k = x.cols;
    for (const { w, out } of products) {
      if (k !== w.cols || out.cols !== w.rows || out.rows < n) {
        throw new RangeError(`matmul ${w.name}: x [${n}, ${x.cols}] · [${w.rows}, ${w.cols}]ᵀ into [${out.rows}, ${out.cols}]`);
      }
    }
    const e = this.kernels.exports;
    const { kq, qb, xStride } = f;
    const xs = act(x).data;
    const outRows = Math.max(...products.map((p) => p.w.rows)); // each product's rows copied out before the next
    // A chunk of activation rows at a time: the scratch stays a few MB however long the batch (a 2K-row prefill
    // would hold tens of MB of it for good), and 64 rows per pass over the weights keep the products compute-bound.
    for (let r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
      const m = Math.min(CHUNK_ROWS, n - r0);
      const xBytes = m * k * 4;
      const qBytes = kq === 'none' ? 0 : kq === 'q8_0' ? ceil16(e.act_bytes_q8_0(m, k, qb)) : ceil16(m * xStride);
      const base = this.kernels.scratch(xBytes + qBytes + m * outRows * 4);
      const xAt = base, qAt = base + xBytes;
      const f32 = this.kernels.f32();
      f32.set(xs.subarray(r0 * k, (r0 + m) * k), xAt / 4);
      if (kq === 'q8_0') e.quantize_q8_0(xAt, k, qAt, m, qb);
      else if (kq === 'q8_k') e.quantize_q8_k(xAt, k, qAt, 0, m);
      const outAt = qAt + qBytes;
      for (const { w, out } of products) {
        const ww = w as WasmWeight;
        const job = { type: TENSOR_FORMATS[ww.type].ggmlId, w: ww.at, rowBytes: ww.rowBytes, x: kq === 'none' ? xAt : qAt, xStride, n: m, k, out: outAt, outStride: w.rows, rows: w.rows };
        if (this.pool) this.pool.matmul(job, this.threadLimit);
        else e.matmul_rows(job.type, job.w, job.rowBytes, job.x, job.xStride, m, k, job.out, job.outStride, 0, job.rows);
        act(out).data.set(f32.subarray(outAt / 4, outAt / 4 + m * w.rows), r0 * w.rows);
      }
    }
    for (const { w, out, bias } of products) {
      if (!bias) continue;
      const b = this.biasData(bias);
      const o = act(out).data;
      for (let r = 0; r < n; r++) for (let j = 0, at = r * w.rows; j < w.rows; j++) o[at + j] = o[at + j]! + b[j]!;
    }
  }

  /**
   * This machine's ceilings for the kernels (bench kernels): the products' instruction (i32x4.dot_i16x8_s, 8
   * multiply-adds = 16 ops; in the relaxed build the 8-bit one, 16 = 32 ops) on registers and one pass reading `readBytes` of memory, each on the caller's thread,
   * best of `reps`; `now` is a millisecond clock (the engine has no timer of its own). The compute peak of the
   * pool is that times the thread count (the workers run the same code on their own cores).
   */
  measurePeak(now: () => number, reps = 5, readBytes = 64 << 20): { opsPerSecond: number; readBytesPerSecond: number; threads: number } {
    const e = this.kernels.exports;
    const best = (run: () => void, warm: () => void) => {
      // Many short calls first: V8 runs a function's first calls in its baseline compiler and swaps in the
      // optimized code between calls (never inside a running loop).
      for (let i = 0; i < 500; i++) warm();
      let ms = Infinity;
      for (let r = 0; r < reps; r++) {
        const t0 = now();
        run();
        ms = Math.min(ms, now() - t0);
      }
      return Math.max(ms, 1e-6) / 1000;
    };
    const iters = 1 << 20;
    const dotSeconds = best(() => e.peak_dot(iters), () => e.peak_dot(1000));
    const at = this.kernels.scratch(readBytes);
    this.kernels.u8().fill(1, at, at + readBytes); // touched, so the pass reads memory, not the zero page
    const readSeconds = best(() => e.peak_read(at, readBytes), () => e.peak_read(at, 1 << 16));
    return { opsPerSecond: (iters * 12 * e.peak_dot_ops()) / dotSeconds, readBytesPerSecond: readBytes / readSeconds, threads: this.threads };
  }

  /** The same product on at most `threads` threads (tests: a thread split must not change a result). */
  matmulOn(threads: number, x: Act, w: Weight, out: Act, bias?: Weight): void {
    this.on(threads, () => this.matmul(x, w, out, bias));
  }

  /** The same attention on at most `threads` threads. */
  attentionOn(threads: number, q: Act, sources: readonly AttnSource[], shape: AttnShape, out: Act, lse?: Act): void {
    this.on(threads, () => this.attention(q, sources, shape, out, lse));
  }

  private on(threads: number, run: () => void): void {
    const saved = this.threadLimit;
    this.threadLimit = threads;
    try {
      run();
    } finally {
      this.threadLimit = saved;
    }
  }

  override destroy(): void {
    this.pool?.destroy();
    super.destroy();
  }

  private biasData(bias: Weight): Float32Array {
    if (bias instanceof WasmWeight) throw new EngineError(`${bias.name}: a matrix was used as a vector`);
    return vector(bias);
  }
}

function wasmKv(t: KvTensor): WasmKv {
  if (!(t instanceof WasmKv)) throw new EngineError('the cpu backend was given a KV tensor from another backend');
  if (t.released) throw new EngineError('the cpu backend was given a released KV tensor');
  return t;
}

function ceil16(n: number): number {
  return Math.ceil(n / 16) * 16;
}
