import { BufferUsage, MapMode } from './flags';
import { DeviceError, EngineError, UnsupportedError } from '../../errors';
import type { RopeParams, TensorInfo, TensorType } from '../../model/types';
import { ropeInvFreq } from '../cpu/rope';
import type { Act, AttnShape, AttnSource, Backend, KvTensor, Product, Weight } from '../types';
import { PARAMS } from './kernelParams';
import { KERNELS } from './kernelTable';
import { PipelineCache, type KernelSpec } from './pipelines';
import { grid, Recorder } from './recorder';
import { deviceRowBytes, packRows, planParts } from './weights';

/*
 * The WebGPU backend. Ops are recorded into one command encoder (recorder.ts) and submitted on
 * flush() or a read, so a decode step is one submit. Weights stay quantized on the device
 * (weights.ts). Every kernel has an f32 path. With preferF16 on an adapter with shader-f16, the GEMV
 * and tiled matmul multiply in f16 (sums stay f32; FTYPE in their WGSL) and `f16` is true; that path
 * is untested on machines without such an adapter.
 */

export interface WebGpuBackendOptions {
  /** Use f16 products in GEMV/matmul where the adapter has shader-f16 (default false: untested in CI). */
  readonly preferF16?: boolean;
  readonly powerPreference?: GPUPowerPreference;
  /** Bytes of KV + activations to hold at most (default: half of maxBufferSize * 4, at most 4 GiB). */
  readonly memoryBudgetBytes?: number;
  /** Largest weight part in bytes (default: the device's maxStorageBufferBindingSize); tests force splits with it. */
  readonly maxWeightPartBytes?: number;
  /**
   * Kernel shapes for the adapter: 'gpu' (cooperative workgroups, many attention splits) or 'emulated'
   * (one thread per output row and few splits, for CPU emulators such as SwiftShader where every
   * workgroup barrier is expensive). Default: 'emulated' on SwiftShader, else 'gpu'.
   */
  readonly tuning?: 'gpu' | 'emulated';
  /**
   * Reduce GEMV sums with subgroup operations where the adapter has `subgroups` with power-of-two subgroup sizes
   * from 4 to 64 (the subgroup GEMV kernel's assumption; default true). Tests turn it off to run the tree reduction.
   */
  readonly subgroups?: boolean;
}

const STORAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
const ARENA_BYTES = 4 << 20;
const WINDOW_BYTES = 64 << 10;
const GEMV_MAX_ROWS = 8;
/** Target workgroups for split-KV attention: enough splits per (row, head) to fill the device. */
const ATTN_TARGET_GROUPS = { gpu: 1024, emulated: 8 } as const;
const ATTN_MAX_HEAD_DIM = 256;
/** From this many query rows on, attention uses the tiled kernel on GPUs (and the per-thread reduction). */
const ATTN_TILED_ROWS = 16;

class GpuAct implements Act {
  constructor(readonly rows: number, readonly cols: number, readonly buffer: GPUBuffer) {}
}
class GpuKv implements KvTensor {
  constructor(readonly capacity: number, readonly width: number, readonly buffer: GPUBuffer) {}
}
interface WeightPart {
  readonly rowStart: number;
  readonly rows: number;
  readonly buffer: GPUBuffer;
}
class GpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: TensorType,
    readonly rows: number,
    readonly cols: number,
    readonly rowBytes: number,
    readonly parts: readonly WeightPart[],
  ) {}
}

export async function createWebGpuBackend(gpu: GPU, opts: WebGpuBackendOptions = {}): Promise<Backend> {
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) throw new DeviceError('no WebGPU adapter available');
  // f16 is opt-in: its kernels have never run on this project's CI (SwiftShader has no shader-f16).
  const wantF16 = (opts.preferF16 ?? false) && adapter.features.has('shader-f16');
  const features: GPUFeatureName[] = [];
  if (wantF16) features.push('shader-f16');
  if ((opts.subgroups ?? true) && subgroupsUsable(adapter)) features.push('subgroups');
  if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  } catch (err) {
    throw new DeviceError(`could not create a WebGPU device: ${(err as Error).message}`);
  }
  const info = adapter.info;
  const name = [info.description || info.device || info.vendor || 'WebGPU adapter', info.architecture ? `(${info.architecture})` : '']
    .filter(Boolean)
    .join(' ');
  // A CPU-emulated adapter: SwiftShader by name, or any adapter the browser calls a fallback adapter.
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const emulated = fallback || /swiftshader|llvmpipe|lavapipe|warp/i.test(`${info.vendor} ${info.architecture} ${info.description}`);
  const tuning = opts.tuning ?? (emulated ? 'emulated' : 'gpu');
  return new WebGpuBackend(device, name, wantF16, { ...opts, tuning });
}

/** The adapter has `subgroups`, and says its subgroup sizes lie in [4, 64] (the assumption of the subgroup GEMV kernel). */
function subgroupsUsable(adapter: GPUAdapter): boolean {
  if (!adapter.features.has('subgroups')) return false;
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = adapter.info;
  return lo !== undefined && hi !== undefined && lo >= 4 && hi <= 64 && (lo & (lo - 1)) === 0 && (hi & (hi - 1)) === 0;
}

/** What WebGpuBackend.recording() hands out: the device, its recorder, pipelines and scratch buffers. */
export interface GpuRecording {
  readonly device: GPUDevice;
  readonly recorder: Recorder;
  /** A 16-byte buffer for a slot a kernel does not read. */
  readonly dummy: GPUBuffer;
  /** The largest buffer one binding may hold. */
  readonly maxPartBytes: number;
  pipeline(spec: KernelSpec): GPUComputePipeline;
  /** A named scratch buffer of at least `bytes` (grown by doubling), or of exactly `bytes` with `exact`. */
  scratchBuffer(name: string, bytes: number, exact?: boolean): GPUBuffer;
  /** Throws the backend's DeviceError once the device is lost or the backend destroyed. */
  check(): void;
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly memoryBudgetBytes: number;
  readonly hasTimestamps: boolean;
  readonly tuning: 'gpu' | 'emulated';
  /** GEMV reduces with subgroupAdd (the device was created with `subgroups`; see subgroupsUsable). */
  readonly subgroups: boolean;
  /** The kernel matmul runs for few rows of x (decode): barrier-free on emulators, else reduced by subgroups or a tree. */
  readonly gemvKernel: 'gemv' | 'gemv-subgroup' | 'gemv-per-thread';
  /** Element type of the matmul products ('f16' only with shader-f16 and preferF16). */
  private readonly ftype: 'f32' | 'f16';
  private readonly cache: PipelineCache;
  private readonly rec: Recorder;
  private readonly maxPartBytes: number;
  private readonly dummy: GPUBuffer;
  private readonly scratch = new Map<string, GPUBuffer>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly invFreq = new Map<string, Float32Array>();
  private lost: string | undefined;
  /** Settles once a loss of the device is recorded (every later call throws DeviceError); pending until then. */
  readonly lossRecorded: Promise<void>;
  private firstError: string | undefined;
  private destroyed = false;

  constructor(
    readonly device: GPUDevice,
    readonly deviceName: string,
    readonly f16: boolean,
    opts: WebGpuBackendOptions = {},
  ) {
    const limits = device.limits;
    this.maxPartBytes = Math.min(opts.maxWeightPartBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.memoryBudgetBytes = opts.memoryBudgetBytes ?? Math.min(4 * 1024 ** 3, limits.maxBufferSize * 2);
    this.hasTimestamps = device.features.has('timestamp-query');
    this.tuning = opts.tuning ?? 'gpu';
    this.ftype = f16 ? 'f16' : 'f32';
    this.subgroups = device.features.has('subgroups');
    this.gemvKernel = this.tuning === 'emulated' ? 'gemv-per-thread' : this.subgroups ? 'gemv-subgroup' : 'gemv';
    this.cache = new PipelineCache(device, WINDOW_BYTES, f16);
    this.rec = new Recorder(device, this.cache, ARENA_BYTES, WINDOW_BYTES);
    this.dummy = device.createBuffer({ label: 'dummy', size: 16, usage: STORAGE });
    this.lossRecorded = device.lost.then((info) => {
      if (!this.destroyed) this.lost = `GPU device lost (${info.reason}): ${info.message}`;
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.firstError ??= (ev as GPUUncapturedErrorEvent).error.message;
    });
  }

  // ---- memory ----------------------------------------------------------------------------

  async uploadWeight(info: TensorInfo, bytes: Uint8Array): Promise<Weight> {
    this.check();
    const cols = info.shape[0]!;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const rows = count / cols;
    const rowBytes = deviceRowBytes(info.type, cols);
    const parts = planParts(rows, rowBytes, this.maxPartBytes).map((plan) => {
      const data = packRows(info.type, cols, bytes, plan.rowStart, plan.rows);
      const buffer = this.device.createBuffer({ label: `${info.name}[${plan.rowStart}..]`, size: data.byteLength, usage: STORAGE });
      this.device.queue.writeBuffer(buffer, 0, data as Uint8Array<ArrayBuffer>);
      return { rowStart: plan.rowStart, rows: plan.rows, buffer };
    });
    return new GpuWeight(info.name, info.type, rows, cols, rowBytes, parts);
  }

  createAct(rows: number, cols: number): Act {
    this.check();
    return new GpuAct(rows, cols, this.createZeroed(`act ${rows}x${cols}`, rows * cols * 4));
  }

  createKv(capacity: number, width: number): KvTensor {
    this.check();
    return new GpuKv(capacity, width, this.createZeroed(`kv ${capacity}x${width}`, capacity * width * 4));
  }

  release(t: Act | KvTensor | Weight): void {
    const buffers = t instanceof GpuWeight ? t.parts.map((p) => p.buffer) : t instanceof GpuAct || t instanceof GpuKv ? [t.buffer] : [];
    // Submit first: recorded commands may still use the buffers.
    if (this.rec.pending > 0) this.rec.submit();
    for (const b of buffers) {
      this.cache.forget(b);
      b.destroy();
    }
  }

  writeAct(dst: Act, data: Float32Array, rowOffset = 0): void {
    this.check();
    const d = act(dst);
    if (rowOffset * d.cols + data.length > d.rows * d.cols) throw new RangeError(`writeAct: ${data.length} values at row ${rowOffset} overflow [${d.rows}, ${d.cols}]`);
    this.rec.upload(d.buffer, rowOffset * d.cols * 4, bytesOf(data));
  }

  async readAct(src: Act): Promise<Float32Array> {
    const s = act(src);
    return this.readBuffer(s.buffer, 0, s.rows * s.cols * 4);
  }

  writeKv(dst: KvTensor, row: number, data: Float32Array): void {
    this.check();
    const d = kv(dst);
    if (row * d.width + data.length > d.capacity * d.width) throw new RangeError(`writeKv: ${data.length} values at row ${row} overflow capacity ${d.capacity}`);
    this.rec.upload(d.buffer, row * d.width * 4, bytesOf(data));
  }

  async readKv(src: KvTensor, row: number, rows: number): Promise<Float32Array> {
    const s = kv(src);
    if (row + rows > s.capacity) throw new RangeError(`readKv: rows [${row}, ${row + rows}) exceed capacity ${s.capacity}`);
    return this.readBuffer(s.buffer, row * s.width * 4, rows * s.width * 4);
  }

  copyRows(src: Act, srcRow: number, rows: number, dst: Act, dstRow: number): void {
    this.check();
    const s = act(src);
    const d = act(dst);
    if (s.cols !== d.cols) throw new RangeError(`copyRows: cols ${s.cols} != ${d.cols}`);
    if (srcRow + rows > s.rows || dstRow + rows > d.rows) throw new RangeError('copyRows: rows out of range');
    this.rec.copy(s.buffer, srcRow * s.cols * 4, d.buffer, dstRow * d.cols * 4, rows * s.cols * 4);
  }

  // ---- ops --------------------------------------------------------------------------------

  embed(table: Weight, ids: Int32Array, out: Act): void {
    this.check();
    const t = weight(table);
    const o = act(out);
    if (o.cols !== t.cols || o.rows < ids.length) throw new RangeError(`embed ${t.name}: [${t.rows}, ${t.cols}] into [${o.rows}, ${o.cols}]`);
    for (const id of ids) if (id < 0 || id >= t.rows) throw new RangeError(`embed: token id ${id} outside vocabulary of ${t.rows}`);
    const pipeline = this.pipeline(KERNELS.embed.spec({ type: t.type }));
    const perRow = Math.ceil(t.cols / 4);
    for (const part of t.parts) {
      if (!ids.some((id) => id >= part.rowStart && id < part.rowStart + part.rows)) continue;
      this.rec.reserve(512 + ids.byteLength);
      const po = this.rec.params(PARAMS.embed.pack({ n: ids.length, cols: t.cols, row_start: part.rowStart, part_rows: part.rows, row_bytes: t.rowBytes }));
      const io = this.rec.table(ids);
      const [x, y] = grid(Math.ceil((ids.length * perRow) / 64));
      this.rec.dispatch(pipeline, 'urdw', [this.rec.arena, part.buffer, this.rec.arena, o.buffer], [po, io], x, y);
    }
  }

  rmsNorm(x: Act, w: Weight, eps: number, out: Act): void {
    this.check();
    const xa = act(x);
    const wt = weight(w);
    const o = act(out);
    if (wt.parts.length !== 1 || wt.rows * wt.cols !== xa.cols) throw new RangeError(`rmsNorm: weight ${wt.name} does not match width ${xa.cols}`);
    const src = this.distinct(xa.buffer, [o.buffer], 0, xa.rows * xa.cols * 4);
    const perThread = this.tuning === 'emulated';
    const pipeline = this.pipeline(KERNELS.rmsnorm.spec({ type: wt.type, perThread }));
    const po = this.rec.params(PARAMS.rmsnorm.pack({ rows: xa.rows, cols: xa.cols, eps }));
    const [gx, gy] = grid(perThread ? Math.ceil(xa.rows / 64) : xa.rows);
    this.rec.dispatch(pipeline, 'urrw', [this.rec.arena, wt.parts[0]!.buffer, src, o.buffer], [po], gx, gy);
  }

  matmulShared(x: Act, products: readonly Product[]): void {
    for (const p of products) this.matmul(x, p.w, p.out, p.bias);
  }

  matmul(x: Act, w: Weight, out: Act, bias?: Weight): void {
    this.check();
    const xa = act(x);
    const wt = weight(w);
    const o = act(out);
    const n = xa.rows;
    if (wt.cols !== xa.cols || o.cols !== wt.rows || o.rows < n) {
      throw new RangeError(`matmul ${wt.name}: x [${n}, ${xa.cols}] · [${wt.rows}, ${wt.cols}]ᵀ into [${o.rows}, ${o.cols}]`);
    }
    let biasKind = 0;
    let biasBuffer = this.dummy;
    if (bias) {
      const b = weight(bias);
      const kinds: Partial<Record<TensorType, number>> = { F32: 1, F16: 2, BF16: 3 };
      const k = kinds[b.type];
      if (!k || b.parts.length !== 1) throw new UnsupportedError(`bias ${b.name} of type ${b.type} is not supported on the GPU`);
      if (b.rows * b.cols !== wt.rows) throw new RangeError(`bias ${b.name} has ${b.rows * b.cols} values for ${wt.rows} outputs`);
      biasKind = k;
      biasBuffer = b.parts[0]!.buffer;
    }
    const src = this.distinct(xa.buffer, [o.buffer], 0, n * xa.cols * 4);
    // Few rows: a GEMV (on emulated adapters the barrier-free per-thread one). Many rows: the register-tiled
    // kernel; on emulated adapters only for rows of 256 values or more, where it wins (SwiftShader, bench kernels:
    // 0.92 vs 0.33 GFLOP/s at 256x896x896 Q8_0, 0.51 vs 0.37 at 64x256x256) and not below (stories260K's
    // 64-wide rows: prefill 300 vs 390 tokens/s).
    const gemv = n <= GEMV_MAX_ROWS || (this.tuning === 'emulated' && wt.cols < 256);
    const kernel = gemv ? this.gemvKernel : 'tiled';
    const pipeline = this.pipeline(KERNELS.matmul.spec({ type: wt.type, ftype: this.ftype, kernel }));
    for (const part of wt.parts) {
      const po = this.rec.params(PARAMS.matmul.pack({
        n, k: wt.cols, out_cols: wt.rows, row_start: part.rowStart, part_rows: part.rows, row_bytes: wt.rowBytes, bias_kind: biasKind,
      }));
      const buffers = [this.rec.arena, part.buffer, src, o.buffer, biasBuffer];
      if (gemv) {
        // gemv and gemv-subgroup: 4 weight rows per workgroup; gemv-per-thread: 64.
        const [gx, gy] = grid(Math.ceil(part.rows / (kernel === 'gemv-per-thread' ? 64 : 4)));
        this.rec.dispatch(pipeline, 'urrwr', buffers, [po], gx, gy);
      } else {
        // matmul.wgsl: 64 x 64 output tiles.
        this.rec.dispatch(pipeline, 'urrwr', buffers, [po], Math.ceil(part.rows / 64), Math.ceil(n / 64));
      }
    }
  }

  rope(x: Act, positions: Int32Array, headDim: number, rope: RopeParams): void {
    this.check();
    const a = act(x);
    const rows = Math.min(a.rows, positions.length);
    this.ropeRows(a.buffer, a.cols, 0, rows, positions, 0, headDim, rope);
  }

  ropeShiftKv(k: KvTensor, row: number, rows: number, delta: number, headDim: number, rope: RopeParams): void {
    this.check();
    const t = kv(k);
    if (row + rows > t.capacity) throw new RangeError(`ropeShiftKv: rows [${row}, ${row + rows}) exceed capacity ${t.capacity}`);
    this.ropeRows(t.buffer, t.width, row, rows, undefined, delta, headDim, rope);
  }

  swiglu(gate: Act, up: Act, out: Act): void {
    this.check();
    const g = act(gate);
    const u = act(up);
    const o = act(out);
    const len = g.rows * g.cols;
    const gb = this.distinct(g.buffer, [o.buffer], 0, len * 4);
    const ub = this.distinct(u.buffer, [o.buffer], 1, len * 4);
    const pipeline = this.pipeline(KERNELS.swiglu.spec({}));
    const po = this.rec.params(PARAMS.swiglu.pack({ len }));
    const [gx, gy] = grid(Math.ceil(len / 64));
    this.rec.dispatch(pipeline, 'urrw', [this.rec.arena, gb, ub, o.buffer], [po], gx, gy);
  }

  add(a: Act, b: Act): void {
    this.check();
    const x = act(a);
    const y = act(b);
    const len = x.rows * x.cols;
    const yb = this.distinct(y.buffer, [x.buffer], 0, len * 4);
    const pipeline = this.pipeline(KERNELS.add.spec({}));
    const po = this.rec.params(PARAMS.add.pack({ len }));
    const [gx, gy] = grid(Math.ceil(len / 64));
    this.rec.dispatch(pipeline, 'uwr', [this.rec.arena, x.buffer, yb], [po], gx, gy);
  }

  storeKv(src: Act, dst: KvTensor, row: number, srcRow = 0, rows = src.rows - srcRow): void {
    this.check();
    const s = act(src);
    const d = kv(dst);
    if (s.cols !== d.width) throw new RangeError(`storeKv: act width ${s.cols} != kv width ${d.width}`);
    if (srcRow < 0 || rows < 0 || srcRow + rows > s.rows) throw new RangeError(`storeKv: source rows [${srcRow}, ${srcRow + rows}) outside ${s.rows}`);
    if (row + rows > d.capacity) throw new RangeError(`storeKv: rows [${row}, ${row + rows}) exceed capacity ${d.capacity}`);
    if (rows === 0) return;
    this.rec.copy(s.buffer, srcRow * s.cols * 4, d.buffer, row * d.width * 4, rows * s.cols * 4);
  }

  attention(q: Act, sources: readonly AttnSource[], shape: AttnShape, out: Act, lse?: Act): void {
    this.check();
    const { nHeads, nKvHeads, headDim } = shape;
    const qa = act(q);
    const o = act(out);
    const n = qa.rows;
    if (headDim > ATTN_MAX_HEAD_DIM) throw new UnsupportedError(`attention: head size ${headDim} exceeds ${ATTN_MAX_HEAD_DIM}`);
    if (qa.cols < nHeads * headDim || o.cols < nHeads * headDim || o.rows < n) throw new RangeError('attention: q/out shapes do not match the heads');
    // Chunk size: enough splits per (row, head) that ~ATTN_TARGET_GROUPS workgroups run, in steps of 64.
    const total = sources.reduce((s, src) => s + src.length, 0);
    const wantSplits = Math.max(1, Math.ceil(ATTN_TARGET_GROUPS[this.tuning] / (n * nHeads)));
    const chunk = Math.max(64, Math.ceil(Math.max(1, total) / wantSplits / 64) * 64);
    // Sources restricted to rows that tile [0, n) (a batch of sequences) share one set of split slots:
    // each is dispatched over its own rows only, so every (row, slot) is still written exactly once
    // and the partials do not grow with the number of sequences. Other sources get their own slots
    // over every row (a row outside a source's range writes an empty split).
    const group = tilesRows(sources, n);
    const groupChunks = group ? Math.max(...group.map((s) => Math.ceil(s.length / chunk))) : 0;
    const plan: { src: AttnSource; chunks: number; splitBase: number; rowBase: number; rows: number }[] = [];
    let slots = 0;
    for (const src of sources) {
      if (group?.includes(src)) continue;
      const chunks = Math.ceil(src.length / chunk);
      plan.push({ src, chunks, splitBase: slots, rowBase: 0, rows: n });
      slots += chunks;
    }
    for (const src of groupChunks > 0 ? group! : []) plan.push({ src, chunks: groupChunks, splitBase: slots, rowBase: src.rows!.start, rows: src.rows!.count });
    slots += groupChunks;
    const totalSplits = Math.max(1, slots);
    const partBytes = n * nHeads * totalSplits * (headDim + 2) * 4;
    const part = this.scratchBuffer('attn-part', partBytes);
    const qb = this.distinct(qa.buffer, [o.buffer, lse ? act(lse).buffer : this.dummy], 0, n * qa.cols * 4);
    // Few rows (decode): a workgroup per (row, head, split) sharing the scoring of 64 entries at a time. Many rows
    // (prefill) on a GPU: 64 rows per workgroup sharing K/V tiles in workgroup memory. Emulated adapters: one
    // thread per row, no barriers.
    // The reduction: one thread per (row, head) where there are many pairs (prefill) or no barriers pay (emulated);
    // a workgroup per pair for the few rows of a decode.
    const reduceThreadPerPair = this.tuning === 'emulated' || n >= ATTN_TILED_ROWS;
    const entry = this.tuning === 'emulated' ? 'per_thread' : n >= ATTN_TILED_ROWS ? 'tiled' : 'main';
    const partial = this.pipeline(KERNELS.attention.spec({ entry }));
    for (const { src, chunks, splitBase, rowBase, rows } of plan) {
      if (chunks === 0 || rows === 0) continue;
      const k = kv(src.k);
      const v = kv(src.v);
      if (k.width !== nKvHeads * headDim || v.width !== k.width) throw new RangeError('attention: KV width does not match the KV heads');
      const po = this.rec.params(PARAMS.attention.pack({
        n: rows, n_heads: nHeads, n_kv_heads: nKvHeads, head_dim: headDim, q_cols: qa.cols, kv_width: k.width,
        length: src.length, causal: src.causalOffset === undefined ? 0 : 1, causal_offset: src.causalOffset ?? 0,
        chunk, n_chunks: chunks, split_base: splitBase, total_splits: totalSplits, scale: 1 / Math.sqrt(headDim),
        row_start: src.rows?.start ?? 0, row_count: src.rows?.count ?? n, row_base: rowBase,
      }));
      const groups = entry === 'main' ? rows * nHeads * chunks
        : entry === 'tiled' ? Math.ceil(rows / 64) * nHeads * chunks
        : Math.ceil((rows * nHeads * chunks) / 64);
      const [gx, gy] = grid(groups);
      this.rec.dispatch(partial, 'urrrw', [this.rec.arena, qb, k.buffer, v.buffer, part], [po], gx, gy);
    }
    if (slots === 0) {
      // No entries at all: every split reads as empty.
      this.rec.upload(part, 0, new Uint8Array(Math.min(partBytes, (headDim + 2) * 4 * n * nHeads)));
    }
    const reduce = this.pipeline(KERNELS.attentionReduce.spec({ perThread: reduceThreadPerPair }));
    const la = lse ? act(lse) : undefined;
    const po = this.rec.params(PARAMS.attentionReduce.pack({
      n, n_heads: nHeads, head_dim: headDim, total_splits: totalSplits, out_cols: o.cols, lse_cols: la ? la.cols : 0, write_lse: la ? 1 : 0,
    }));
    const [gx, gy] = grid(reduceThreadPerPair ? Math.ceil((n * nHeads) / 64) : n * nHeads);
    this.rec.dispatch(reduce, 'urww', [this.rec.arena, part, o.buffer, la ? la.buffer : this.dummy], [po], gx, gy);
  }

  mergeAttention(parts: readonly { out: Act; lse: Act }[], headDim: number, out: Act, lse?: Act): void {
    this.check();
    if (parts.length === 0) throw new RangeError('mergeAttention: no parts');
    const o = act(out);
    const nHeads = parts[0]!.lse.cols;
    const rows = o.rows;
    const lseCols = lse ? lse.cols : nHeads;
    const lb = lse ? act(lse).buffer : this.scratchBuffer('merge-lse', rows * nHeads * 4);
    const first = parts[0]!;
    const p0o = act(first.out);
    const p0l = act(first.lse);
    if (p0o.cols !== o.cols || p0l.cols !== lseCols) throw new RangeError('mergeAttention: part shapes differ from the output');
    if (p0o.buffer !== o.buffer) this.rec.copy(p0o.buffer, 0, o.buffer, 0, rows * o.cols * 4);
    if (p0l.buffer !== lb) this.rec.copy(p0l.buffer, 0, lb, 0, rows * lseCols * 4);
    const pipeline = this.pipeline(KERNELS.merge.spec({}));
    const [gx, gy] = grid(rows * nHeads);
    for (const part of parts.slice(1)) {
      const po_ = act(part.out);
      const pl = act(part.lse);
      const ob = this.distinct(po_.buffer, [o.buffer, lb], 0, rows * po_.cols * 4);
      const lbb = this.distinct(pl.buffer, [o.buffer, lb], 1, rows * pl.cols * 4);
      const po = this.rec.params(PARAMS.merge.pack({
        rows, n_heads: nHeads, head_dim: headDim, out_cols: o.cols, lse_cols: lseCols, b_out_cols: po_.cols, b_lse_cols: pl.cols,
      }));
      this.rec.dispatch(pipeline, 'uwwrr', [this.rec.arena, o.buffer, lb, ob, lbb], [po], gx, gy);
    }
  }

  async argmax(logits: Act): Promise<Int32Array> {
    this.check();
    const l = act(logits);
    const result = this.scratchBuffer('result', Math.max(16, l.rows * 4));
    const pipeline = this.pipeline(KERNELS.argmax.spec({}));
    const po = this.rec.params(PARAMS.sample.pack({ rows: l.rows, cols: l.cols, temperature: 0, top_p: 0, uniform_: 0 }));
    const [gx, gy] = grid(l.rows);
    this.rec.dispatch(pipeline, 'urw', [this.rec.arena, l.buffer, result], [po], gx, gy);
    const bytes = await this.readBuffer(result, 0, l.rows * 4);
    return new Int32Array(bytes.buffer, bytes.byteOffset, l.rows);
  }

  async sampleTopP(logits: Act, temperature: number, topP: number, uniform: number): Promise<number> {
    this.check();
    const l = act(logits);
    const result = this.scratchBuffer('result', 16);
    const probs = this.scratchBuffer('probs', l.cols * 4);
    const pipeline = this.pipeline(KERNELS.topP.spec({}));
    const po = this.rec.params(PARAMS.sample.pack({ rows: 1, cols: l.cols, temperature, top_p: topP, uniform_: uniform }));
    this.rec.dispatch(pipeline, 'urww', [this.rec.arena, l.buffer, result, probs], [po], 1);
    const bytes = await this.readBuffer(result, 0, 4);
    return new Int32Array(bytes.buffer, bytes.byteOffset, 1)[0]!;
  }

  async flush(): Promise<void> {
    this.check();
    this.rec.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
  }

  /** For code that records its own dispatches beside the ops (the kernel benchmark's probes): not part of Backend. */
  recording(): GpuRecording {
    return {
      device: this.device, recorder: this.rec, dummy: this.dummy, maxPartBytes: this.maxPartBytes,
      pipeline: (spec) => this.pipeline(spec),
      scratchBuffer: (name, bytes, exact) => this.scratchBuffer(name, bytes, exact),
      check: () => this.check(),
    };
  }

  // ---- internals ---------------------------------------------------------------------------

  private ropeRows(
    buffer: GPUBuffer, width: number, row0: number, rows: number, positions: Int32Array | undefined, constPos: number,
    headDim: number, rope: RopeParams,
  ): void {
    if (rows === 0) return;
    if (headDim % 2 !== 0 || width % headDim !== 0) throw new RangeError(`rope: width ${width} is not a whole number of heads of ${headDim}`);
    const inv = this.invFreqTable(headDim, rope);
    const half = headDim / 2;
    const tab = new Uint32Array(half + (positions ? rows : 0));
    tab.set(new Uint32Array(inv.buffer, inv.byteOffset, half));
    if (positions) tab.set(new Uint32Array(positions.buffer, positions.byteOffset, rows), half);
    const adjacent = rope.layout === 'adjacent';
    const pipeline = this.pipeline(KERNELS.rope.spec({ adjacent }));
    this.rec.reserve(512 + tab.byteLength);
    const po = this.rec.params(PARAMS.rope.pack({ rows, width, head_dim: headDim, row0, const_pos_flag: positions ? 0 : 1, const_pos: constPos }));
    const to = this.rec.table(tab);
    const [gx, gy] = grid(Math.ceil((rows * width) / 2 / 64));
    this.rec.dispatch(pipeline, 'uwd', [this.rec.arena, buffer, this.rec.arena], [po, to], gx, gy);
  }

  private invFreqTable(headDim: number, rope: RopeParams): Float32Array {
    const s = rope.scaling;
    const key = `${headDim}/${rope.theta}/${s ? `${s.factor}/${s.lowFreqFactor}/${s.highFreqFactor}/${s.originalContextLength}` : ''}`;
    let t = this.invFreq.get(key);
    if (!t) {
      t = Float32Array.from(ropeInvFreq(headDim, rope));
      this.invFreq.set(key, t);
    }
    return t;
  }

  private pipeline(spec: KernelSpec): GPUComputePipeline {
    return this.cache.pipeline(spec);
  }

  /**
   * WebGPU forbids binding one buffer as read-only and writable in one dispatch. When an input
   * aliases an output, copy the input into a scratch buffer (in recording order) and read that.
   */
  private distinct(input: GPUBuffer, outputs: readonly GPUBuffer[], slot: number, bytes: number): GPUBuffer {
    if (!outputs.includes(input)) return input;
    const s = this.scratchBuffer(`alias${slot}`, bytes);
    this.rec.copy(input, 0, s, 0, bytes);
    return s;
  }

  /** A named scratch buffer of at least `bytes` (grown by doubling), or of exactly `bytes` with `exact`. */
  private scratchBuffer(name: string, bytes: number, exact = false): GPUBuffer {
    const need = Math.max(16, Math.ceil(bytes / 16) * 16);
    const cur = this.scratch.get(name);
    if (cur && (exact ? cur.size === need : cur.size >= need)) return cur;
    if (cur) {
      if (this.rec.pending > 0) this.rec.submit();
      this.cache.forget(cur);
      cur.destroy();
    }
    const size = exact ? need : Math.max(need, (cur?.size ?? 0) * 2);
    const b = this.device.createBuffer({ label: `scratch ${name}`, size, usage: STORAGE });
    this.scratch.set(name, b);
    return b;
  }

  private createZeroed(label: string, bytes: number): GPUBuffer {
    // WebGPU zero-initializes new buffers.
    return this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: STORAGE });
  }

  private async readBuffer(buffer: GPUBuffer, offset: number, bytes: number): Promise<Float32Array> {
    this.check();
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    // Readback buffers are pooled by size, so a decode step creates none.
    const pool = this.staging.get(size);
    const staging = pool?.pop() ?? this.device.createBuffer({ label: 'readback', size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.rec.submit((enc) => enc.copyBufferToBuffer(buffer, offset, staging, 0, Math.ceil(bytes / 4) * 4));
    try {
      await staging.mapAsync(MapMode.READ);
    } catch (err) {
      this.check();
      throw new DeviceError(`reading a GPU buffer failed: ${(err as Error).message}`);
    }
    const out = new Float32Array(bytes / 4);
    out.set(new Float32Array(staging.getMappedRange(0, Math.ceil(bytes / 4) * 4), 0, bytes / 4));
    staging.unmap();
    if (pool && pool.length < 4) pool.push(staging);
    else if (!pool) this.staging.set(size, [staging]);
    else staging.destroy();
    this.check();
    return out;
  }

  private check(): void {
    if (this.lost) throw new DeviceError(this.lost);
    if (this.destroyed) throw new DeviceError('the WebGPU backend was destroyed');
    if (this.firstError) throw new EngineError(`WebGPU error: ${this.firstError}`);
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
function act(a: Act): GpuAct {
  if (!(a instanceof GpuAct)) throw new EngineError('WebGpuBackend was given an activation from another backend');
  return a;
}
function kv(k: KvTensor): GpuKv {
  if (!(k instanceof GpuKv)) throw new EngineError('WebGpuBackend was given a KV tensor from another backend');
  return k;
}
function weight(w: Weight): GpuWeight {
  if (!(w instanceof GpuWeight)) throw new EngineError('WebGpuBackend was given a weight from another backend');
  return w;
}

/** The row-restricted sources when there are two or more and their ranges tile [0, n) exactly; else null. */
function tilesRows(sources: readonly AttnSource[], n: number): AttnSource[] | null {
  const restricted = sources.filter((s) => s.rows).sort((a, b) => a.rows!.start - b.rows!.start);
  if (restricted.length < 2) return null;
  let next = 0;
  for (const s of restricted) {
    if (s.rows!.start !== next || s.rows!.count < 0) return null;
    next += s.rows!.count;
  }
  return next === n ? restricted : null;
}
