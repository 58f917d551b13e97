// One instance of the WebAssembly CPU kernels (kernels/cpu/*.c) and the memory it computes in: weights are
// placed there once (bump-allocated, never moved), each op's activations in a scratch area above them.
import sharedBytes from 'star-cpu-kernels:shared';
import sharedRelaxedBytes from 'star-cpu-kernels:shared-relaxed';
import singleBytes from 'star-cpu-kernels:single';
import singleRelaxedBytes from 'star-cpu-kernels:single-relaxed';
import { canShareMemory, WASM_MAX_PAGES, WASM_PAGE_BYTES, wasmApi, type WasmMemory, type WasmModule } from './wasmApi';
import type { AttentionItems, MatmulRows } from './threadPool';

/** Pages the module is linked to start with (scripts/build-cpu-kernels.sh: --initial-memory=2 MiB). */
const INITIAL_PAGES = 32;

export interface KernelExports {
  readonly __heap_base: { value: number };
  /** Fills the f16 table (65,536 floats at `table`); once, before any other call or worker. */
  init(table: number): void;
  /** Bytes per quantized activation in the products of a weight type (ggml id): 1 or 2, by build and type. */
  act_bytes_per_value(type: number): number;
  act_stride_q8_0(k: number, qb: number): number;
  act_stride_q8_k(k: number): number;
  /** Bytes quantize_q8_0 writes for n rows (the rows, then each 4-row group's scales side by side). */
  act_bytes_q8_0(n: number, k: number, qb: number): number;
  quantize_q8_0(x: number, k: number, dst: number, n: number, qb: number): void;
  quantize_q8_k(x: number, k: number, dst: number, r0: number, r1: number): void;
  matmul_rows: MatmulRows;
  attention_items: AttentionItems;
  rms_norm_rows(x: number, w: number, eps: number, out: number, rows: number, cols: number): void;
  swiglu_f32(g: number, u: number, out: number, len: number): void;
  peak_dot(iters: number): number;
  /** Ops (2 per multiply-add) of one peak_dot step in this build. */
  peak_dot_ops(): number;
  peak_read(p: number, bytes: number): number;
}

/**
 * Whether this engine runs the relaxed-SIMD build of the kernels (8-bit activations against 7-bit weights in one
 * instruction, kernels/cpu/matmul.c QB = 1): built (a clang of 16 or newer) and validated here. The two builds give
 * bit-identical results (integer sums either way; test/wasm-ops.test.ts), so the choice is speed alone.
 */
export function relaxedKernelsRun(shared: boolean): boolean {
  return relaxedKernelsBuilt() && (wasmApi()?.validate(shared ? sharedRelaxedBytes : singleRelaxedBytes) ?? false);
}

/** Whether the build made the relaxed-SIMD kernels at all. */
export function relaxedKernelsBuilt(): boolean {
  return sharedRelaxedBytes.byteLength > 0 && singleRelaxedBytes.byteLength > 0;
}

/** Why the kernels cannot run here, or undefined when they can. */
export function kernelsUnavailable(shared: boolean): string | undefined {
  const api = wasmApi();
  if (!api) return 'this JavaScript host has no WebAssembly';
  const bytes = shared ? sharedBytes : singleBytes;
  if (bytes.byteLength === 0) return 'the build found no clang/wasm-ld for wasm32 (run scripts/ensure-wasm-toolchain.sh, then build again)';
  if (!api.validate(bytes)) return 'this WebAssembly engine rejects the kernels (it needs SIMD128)';
  return undefined;
}

export class CpuKernels {
  private top: number;
  /** Released regions (KV tensors), address-ordered and coalesced: [at, bytes] pairs. */
  private free: [number, number][] = [];

  private constructor(
    readonly module: WasmModule,
    readonly memory: WasmMemory,
    readonly exports: KernelExports,
    readonly shared: boolean,
    /** The relaxed-SIMD build (see relaxedKernelsRun). */
    readonly relaxed: boolean,
  ) {
    this.top = align(exports.__heap_base.value);
  }

  /**
   * A shared memory (threads possible) when the host allows it, else a private one; the relaxed-SIMD build where it
   * runs, unless `preferRelaxed` is false. Throws where kernelsUnavailable says why.
   */
  static create(preferShared = true, preferRelaxed = true): CpuKernels {
    const shared = preferShared && canShareMemory();
    const why = kernelsUnavailable(shared);
    if (why) throw new Error(why);
    const api = wasmApi()!;
    const relaxed = preferRelaxed && relaxedKernelsRun(shared);
    const module = new api.Module(relaxed ? (shared ? sharedRelaxedBytes : singleRelaxedBytes) : shared ? sharedBytes : singleBytes);
    const memory = new api.Memory({ initial: INITIAL_PAGES, maximum: WASM_MAX_PAGES, ...(shared ? { shared: true } : {}) });
    const instance = new api.Instance(module, { env: { memory } });
    const kernels = new CpuKernels(module, memory, instance.exports as unknown as KernelExports, shared, relaxed);
    kernels.exports.init(kernels.allocate(65536 * 4));
    return kernels;
  }

  /** Reserves `bytes` for the life of this instance (16-byte aligned); returns the address. */
  allocate(bytes: number): number {
    const at = this.top;
    this.ensure(at + bytes);
    this.top = align(at + bytes);
    return at;
  }

  /**
   * Reserves `bytes` (16-byte aligned) until release(): a released region is reused by later ones (first fit), so
   * Star's stream of block KV tensors does not grow the memory block after block.
   */
  allocateReleasable(bytes: number): number {
    const size = align(bytes);
    for (let i = 0; i < this.free.length; i++) {
      const [at, have] = this.free[i]!;
      if (have < size) continue;
      if (have === size) this.free.splice(i, 1);
      else this.free[i] = [at + size, have - size];
      return at;
    }
    return this.allocate(size);
  }

  /** Gives back a region allocateReleasable() returned (the same `bytes`). */
  release(at: number, bytes: number): void {
    const size = align(bytes);
    let i = 0;
    while (i < this.free.length && this.free[i]![0] < at) i++;
    this.free.splice(i, 0, [at, size]);
    // Coalesce with the neighbours, then hand a free tail back to the bump allocator.
    if (i + 1 < this.free.length && at + size === this.free[i + 1]![0]) {
      this.free[i] = [at, size + this.free[i + 1]![1]];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1]![0] + this.free[i - 1]![1] === at) {
      this.free[i - 1] = [this.free[i - 1]![0], this.free[i - 1]![1] + this.free[i]![1]];
      this.free.splice(i, 1);
    }
    const last = this.free[this.free.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.free.pop();
    }
  }

  /** `bytes` of scratch above every allocation, valid until the next allocate() or scratch(). */
  scratch(bytes: number): number {
    this.ensure(this.top + bytes);
    return this.top;
  }

  /** Views are made per use: growing a private memory detaches its old buffer, and a shared one's old views stop short. */
  u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  f32(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  /** Bytes the memory holds (its committed size; pages never touched cost no RSS). */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  private ensure(end: number): void {
    if (end > WASM_MAX_PAGES * WASM_PAGE_BYTES) throw new RangeError(`cpu kernels: ${end} bytes exceed wasm32's 4 GiB`);
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    // Grow by at least an eighth so many small weights do not grow one page at a time.
    const want = Math.max(end - have, have >> 3);
    const pages = Math.min(Math.ceil(want / WASM_PAGE_BYTES), WASM_MAX_PAGES - have / WASM_PAGE_BYTES);
    this.memory.grow(pages);
  }
}

function align(p: number): number {
  return Math.ceil(p / 16) * 16; // not a bit mask: addresses reach past 2^31
}
