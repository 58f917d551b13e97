import { BufferUsage } from './flags';
import { PARAM_BYTES, type PipelineCache } from './pipelines';

/*
 * Records ops into one command encoder and submits on demand (a flush or a read).
 *
 * Per-dispatch parameters, small tables (token ids, positions) and small uploads go into an arena:
 * a CPU-side mirror of one GPU buffer, 256-byte slots handed out in call order, written with a
 * single queue.writeBuffer right before the submit that uses them. (Writing one buffer twice before
 * a submit would keep only the last value, so every dispatch gets its own slot.) When the arena is
 * full the pending work is submitted and the arena starts over; queue order keeps that safe.
 */

const ALIGN = 256;

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly mirror: ArrayBuffer;
  private readonly u32: Uint32Array;
  private used = 0;
  /** The arena: [capacity] slots + one storage window of slack past the end. */
  readonly arena: GPUBuffer;
  /** Commands recorded since the last submit. */
  pending = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly cache: PipelineCache,
    private readonly capacity: number,
    readonly windowBytes: number,
  ) {
    this.mirror = new ArrayBuffer(capacity);
    this.u32 = new Uint32Array(this.mirror);
    this.arena = device.createBuffer({
      label: 'arena',
      size: capacity + windowBytes,
      usage: BufferUsage.UNIFORM | BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC,
    });
  }

  /** Reserves `bytes` of the arena (256-aligned) and returns its byte offset; may submit first. */
  alloc(bytes: number): number {
    const size = Math.ceil(Math.max(bytes, 4) / ALIGN) * ALIGN;
    if (size > this.capacity) throw new RangeError(`arena request of ${bytes} bytes exceeds ${this.capacity}`);
    if (this.used + size > this.capacity) this.submit();
    const off = this.used;
    this.used += size;
    return off;
  }

  /** Makes sure `bytes` more fit without a submit, so one dispatch's slots share an arena epoch. */
  reserve(bytes: number): void {
    if (this.used + bytes + ALIGN * 4 > this.capacity) this.submit();
  }

  /** A parameter slot filled from u32/i32/f32 values (tagged: numbers are u32 unless wrapped). */
  params(values: readonly ParamValue[]): number {
    if (values.length * 4 > PARAM_BYTES) throw new RangeError('too many kernel parameters');
    const off = this.alloc(PARAM_BYTES);
    this.fill(off, values);
    return off;
  }

  /** A table slot (read through a 'd' binding); the window is windowBytes long. */
  table(values: readonly ParamValue[] | Int32Array | Float32Array | Uint32Array): number {
    if (values.length * 4 > this.windowBytes) throw new RangeError(`table of ${values.length} values exceeds the ${this.windowBytes}-byte window`);
    const off = this.alloc(values.length * 4);
    if (ArrayBuffer.isView(values)) {
      new Uint8Array(this.mirror, off, values.byteLength).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    } else {
      this.fill(off, values);
    }
    return off;
  }

  /** Copies `data` into `dst` at `dstOffset` in recording order (through the arena). */
  upload(dst: GPUBuffer, dstOffset: number, data: Uint8Array): void {
    if (data.byteLength > this.capacity / 4) {
      // Large: submit what is recorded so the write lands after it, then write directly.
      this.submit();
      this.device.queue.writeBuffer(dst, dstOffset, data as Uint8Array<ArrayBuffer>);
      return;
    }
    const off = this.alloc(data.byteLength);
    new Uint8Array(this.mirror, off, data.byteLength).set(data);
    this.copy(this.arena, off, dst, dstOffset, data.byteLength);
  }

  dispatch(pipeline: GPUComputePipeline, slots: string, buffers: readonly GPUBuffer[], offsets: readonly number[], x: number, y = 1): void {
    if (x === 0 || y === 0) return;
    const group = this.cache.bindGroup(slots, buffers);
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, offsets);
    pass.dispatchWorkgroups(x, y);
    this.pending++;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    this.endPass();
    this.enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.pending++;
  }

  /** Records and submits everything so far (also when empty: reads rely on it for ordering). */
  submit(extra?: (enc: GPUCommandEncoder) => void): void {
    this.endPass();
    if (extra) extra(this.enc());
    if (this.used > 0) this.device.queue.writeBuffer(this.arena, 0, this.mirror, 0, this.used);
    if (this.encoder) this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.used = 0;
    this.pending = 0;
  }

  /**
   * GPU timing (timestamp-query): while set, every compute pass writes a begin/end timestamp pair
   * into `timing.querySet` (passes past its capacity go untimed).
   */
  timing: { querySet: GPUQuerySet; capacity: number; used: number } | null = null;

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      const t = this.timing;
      if (t && t.used + 2 <= t.capacity) {
        this.pass = this.enc().beginComputePass({
          timestampWrites: { querySet: t.querySet, beginningOfPassWriteIndex: t.used, endOfPassWriteIndex: t.used + 1 },
        });
        t.used += 2;
      } else {
        this.pass = this.enc().beginComputePass();
      }
    }
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private enc(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private fill(off: number, values: readonly ParamValue[]): void {
    const base = off / 4;
    const f32 = new Float32Array(this.mirror, off, values.length);
    const i32 = new Int32Array(this.mirror, off, values.length);
    values.forEach((v, i) => {
      if (typeof v === 'number') this.u32[base + i] = v >>> 0;
      else if (v.f !== undefined) f32[i] = v.f;
      else i32[i] = v.i!;
    });
  }
}

/** A u32 (plain number), an f32 ({f}) or an i32 ({i}). */
export type ParamValue = number | { f: number; i?: undefined } | { i: number; f?: undefined };

export const f32 = (f: number): ParamValue => ({ f });
export const i32 = (i: number): ParamValue => ({ i });

/** Workgroup counts for `count` workgroups within the 65535-per-dimension limit. */
export function grid(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}
