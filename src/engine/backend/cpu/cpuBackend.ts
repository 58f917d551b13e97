import { EngineError } from '../../errors';
import type { RopeParams, TensorInfo } from '../../model/types';
import { dequantize } from '../../quant/dequantize';
import { bytesFor, isBlockQuantized } from '../../quant/formats';
import type { Act, AttnShape, AttnSource, Backend, KvTensor, Product, Weight } from '../types';
import { ropeInvFreq, rotateRow } from './rope';

/*
 * The CPU reference backend: plain f32 TypeScript, every op run at once. It is the oracle the
 * WebGPU kernels are tested against and the host of last resort, so it favours exactness and
 * readable loops, but keeps the loops tight (typed arrays, row-major, register-blocked matmul).
 * F32/F16/BF16 weights become f32 at upload; block-quantized matrices (Q8_0, Q4_0, Q4_K, ...)
 * stay in their stored bytes and are dequantized a panel of rows at a time inside matmul/embed,
 * so a quantized model costs its file size in memory, not 4-8x more. The values used are the same
 * either way (dequantize() is the only decoder), so the oracle stays exact.
 */

/** Weight rows handed to matmul this many at a time (a quantized panel is dequantized once per call). */
const PANEL_ROWS = 16;

class CpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: Weight['type'],
    readonly rows: number,
    readonly cols: number,
    /** [rows, cols] row-major f32, or undefined when kept quantized. */
    readonly data: Float32Array | undefined,
    /** Stored bytes, rows of `rowBytes` each, when kept quantized. */
    readonly stored: Uint8Array | undefined,
    readonly rowBytes: number,
  ) {}

  /** Rows [row, row + count) as f32: a view of `data`, or dequantized into `scratch`. */
  panel(row: number, count: number, scratch: Float32Array): Float32Array {
    if (this.data) return this.data.subarray(row * this.cols, (row + count) * this.cols);
    const bytes = this.stored!.subarray(row * this.rowBytes, (row + count) * this.rowBytes);
    return dequantize(this.type, bytes, count * this.cols, scratch).subarray(0, count * this.cols);
  }
}

export class CpuAct implements Act {
  readonly data: Float32Array; // [rows, cols]
  /** `data`, when given, is the storage of another act's rows (viewRows). */
  constructor(readonly rows: number, readonly cols: number, data?: Float32Array) {
    this.data = data ?? new Float32Array(rows * cols);
  }
}

class CpuKv implements KvTensor {
  readonly data: Float32Array; // [capacity, width]
  constructor(readonly capacity: number, readonly width: number) {
    this.data = new Float32Array(capacity * width);
  }
}

export interface CpuBackendOptions {
  /** Bytes of KV + activations to hold at most (default 2 GiB). */
  readonly memoryBudgetBytes?: number;
  /** Keep block-quantized matrices in their stored bytes (default true); false dequantizes everything at upload. */
  readonly keepQuantized?: boolean;
}

export class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;
  readonly deviceName: string = 'cpu (js f32)';
  readonly f16 = false;
  readonly memoryBudgetBytes: number;
  private readonly invFreqCache = new Map<string, Float64Array>();
  private readonly keepQuantized: boolean;
  // Scores and sums in f64: JS arithmetic is f64, so f32 scratch would only add a rounding per store.
  private scores = new Float64Array(256);
  private panelScratch = new Float32Array(0);

  constructor(options: CpuBackendOptions = {}) {
    this.memoryBudgetBytes = options.memoryBudgetBytes ?? 2 * 1024 ** 3;
    this.keepQuantized = options.keepQuantized ?? true;
  }

  async uploadWeight(info: TensorInfo, bytes: Uint8Array): Promise<Weight> {
    const cols = info.shape[0]!;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const rows = count / cols;
    const need = bytesFor(info.type, count);
    if (bytes.byteLength < need) throw new EngineError(`tensor ${info.name}: ${bytes.byteLength} bytes, ${info.type} [${info.shape}] needs ${need}`);
    if (this.keepQuantized && isBlockQuantized(info.type) && rows > 1) {
      // Copy: the caller's buffer may be a view of a larger read that should not stay alive.
      return new CpuWeight(info.name, info.type, rows, cols, undefined, bytes.slice(0, need), need / rows);
    }
    return new CpuWeight(info.name, info.type, rows, cols, dequantize(info.type, bytes, count), undefined, 0);
  }

  createAct(rows: number, cols: number): Act {
    return new CpuAct(rows, cols);
  }

  createKv(capacity: number, width: number): KvTensor {
    return new CpuKv(capacity, width);
  }

  release(_t: Act | KvTensor | Weight): void {
    // Garbage-collected.
  }

  writeAct(dst: Act, data: Float32Array, rowOffset = 0): void {
    const d = act(dst);
    if ((rowOffset * d.cols + data.length) > d.data.length) throw new RangeError(`writeAct: ${data.length} values at row ${rowOffset} overflow [${d.rows}, ${d.cols}]`);
    d.data.set(data, rowOffset * d.cols);
  }

  async readAct(src: Act): Promise<Float32Array> {
    return act(src).data.slice();
  }

  writeKv(dst: KvTensor, row: number, data: Float32Array): void {
    const d = kv(dst);
    if (row * d.width + data.length > d.data.length) throw new RangeError(`writeKv: ${data.length} values at row ${row} overflow capacity ${d.capacity}`);
    d.data.set(data, row * d.width);
  }

  async readKv(src: KvTensor, row: number, rows: number): Promise<Float32Array> {
    const s = kv(src);
    return s.data.slice(row * s.width, (row + rows) * s.width);
  }

  viewRows(a: Act, start: number, rows: number): Act {
    const s = act(a);
    if (start < 0 || rows < 0 || start + rows > s.rows) throw new RangeError(`viewRows: rows [${start}, ${start + rows}) outside [${s.rows}, ${s.cols}]`);
    return new CpuAct(rows, s.cols, s.data.subarray(start * s.cols, (start + rows) * s.cols));
  }

  /** Copies rows [srcRow, srcRow + rows) of src into dst starting at dstRow (same cols). */
  copyRows(src: Act, srcRow: number, rows: number, dst: Act, dstRow: number): void {
    const s = act(src);
    const d = act(dst);
    d.data.set(s.data.subarray(srcRow * s.cols, (srcRow + rows) * s.cols), dstRow * d.cols);
  }

  embed(table: Weight, ids: Int32Array, out: Act): void {
    const t = weight(table);
    const o = act(out);
    const scratch = this.scratchFor(t.cols);
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r]!;
      if (id < 0 || id >= t.rows) throw new RangeError(`embed: token id ${id} outside vocabulary of ${t.rows}`);
      o.data.set(t.panel(id, 1, scratch), r * o.cols);
    }
  }

  rmsNorm(x: Act, w: Weight, eps: number, out: Act): void {
    const xs = act(x).data;
    const ws = vector(w);
    const o = act(out).data;
    const cols = x.cols;
    for (let r = 0; r < x.rows; r++) {
      const base = r * cols;
      let ss = 0;
      for (let i = 0; i < cols; i++) ss += xs[base + i]! * xs[base + i]!;
      const scale = 1 / Math.sqrt(ss / cols + eps);
      for (let i = 0; i < cols; i++) o[base + i] = xs[base + i]! * scale * ws[i]!;
    }
  }

  matmulShared(x: Act, products: readonly Product[]): void {
    for (const p of products) this.matmul(x, p.w, p.out, p.bias);
  }

  matmul(x: Act, w: Weight, out: Act, bias?: Weight): void {
    const W = weight(w);
    const n = x.rows;
    if (W.cols !== x.cols || out.cols !== W.rows || out.rows < n) {
      throw new RangeError(`matmul ${W.name}: x [${n}, ${x.cols}] · [${W.rows}, ${W.cols}]ᵀ into [${out.rows}, ${out.cols}]`);
    }
    const xs = act(x).data;
    const o = act(out).data;
    const b = bias ? vector(bias) : undefined;
    const scratch = this.scratchFor(PANEL_ROWS * W.cols);
    // Panels of weight rows outermost: W is read (and dequantized) once; x stays in cache.
    for (let j = 0; j < W.rows; j += PANEL_ROWS) {
      const count = Math.min(PANEL_ROWS, W.rows - j);
      matmulPanel(xs, n, W.cols, W.panel(j, count, scratch), count, o, W.rows, j, b);
    }
  }

  rope(x: Act, positions: Int32Array, headDim: number, rope: RopeParams): void {
    const a = act(x);
    const inv = this.invFreq(headDim, rope);
    const cos = new Float64Array(headDim / 2);
    const sin = new Float64Array(headDim / 2);
    const adjacent = rope.layout === 'adjacent';
    for (let r = 0; r < a.rows && r < positions.length; r++) {
      rotateRow(a.data, r * a.cols, a.cols, headDim, positions[r]!, inv, adjacent, cos, sin);
    }
  }

  ropeShiftKv(k: KvTensor, row: number, rows: number, delta: number, headDim: number, rope: RopeParams): void {
    const t = kv(k);
    const inv = this.invFreq(headDim, rope);
    const cos = new Float64Array(headDim / 2);
    const sin = new Float64Array(headDim / 2);
    const adjacent = rope.layout === 'adjacent';
    for (let r = row; r < row + rows; r++) {
      rotateRow(t.data, r * t.width, t.width, headDim, delta, inv, adjacent, cos, sin);
    }
  }

  swiglu(gate: Act, up: Act, out: Act): void {
    const g = act(gate).data;
    const u = act(up).data;
    const o = act(out).data;
    const len = gate.rows * gate.cols;
    for (let i = 0; i < len; i++) {
      const v = g[i]!;
      o[i] = (v / (1 + Math.exp(-v))) * u[i]!;
    }
  }

  add(a: Act, b: Act): void {
    const x = act(a).data;
    const y = act(b).data;
    const len = a.rows * a.cols;
    for (let i = 0; i < len; i++) x[i] = x[i]! + y[i]!;
  }

  storeKv(src: Act, dst: KvTensor, row: number, srcRow = 0, rows = src.rows - srcRow): void {
    const s = act(src);
    const d = kv(dst);
    if (s.cols !== d.width) throw new RangeError(`storeKv: act width ${s.cols} != kv width ${d.width}`);
    if (srcRow < 0 || rows < 0 || srcRow + rows > s.rows) throw new RangeError(`storeKv: source rows [${srcRow}, ${srcRow + rows}) outside ${s.rows}`);
    if (row + rows > d.capacity) throw new RangeError(`storeKv: rows [${row}, ${row + rows}) exceed capacity ${d.capacity}`);
    d.data.set(s.data.subarray(srcRow * s.cols, (srcRow + rows) * s.cols), row * d.width);
  }

  attention(q: Act, sources: readonly AttnSource[], shape: AttnShape, out: Act, lse?: Act): void {
    const { nHeads, nKvHeads, headDim } = shape;
    const qs = act(q).data;
    const os = act(out).data;
    const ls = lse ? act(lse).data : undefined;
    const total = sources.reduce((s, src) => s + src.length, 0);
    // Scores of every head for one query row, head-major: [nHeads, total].
    if (this.scores.length < nHeads * total) this.scores = new Float64Array(nHeads * total);
    const scores = this.scores;
    const scale = 1 / Math.sqrt(headDim);
    const acc = new Float64Array(nHeads * headDim);
    const max = new Float64Array(nHeads);
    const sum = new Float64Array(nHeads);
    const srcK = sources.map((s) => kv(s.k).data);
    const srcV = sources.map((s) => kv(s.v).data);
    const groupSize = nHeads / nKvHeads;

    for (let r = 0; r < q.rows; r++) {
      // Every head is scored in the same pass over a KV row: the row is read from memory once, not once per head
      // (the difference between memory-bound and compute-bound over long contexts).
      let n = 0;
      for (let si = 0; si < sources.length; si++) {
        const src = sources[si]!;
        n = scoreRows(qs, r * q.cols, srcK[si]!, src.k.width, nHeads, groupSize, headDim, visibleEntries(src, r), scale, scores, total, n);
      }
      for (let h = 0; h < nHeads; h++) {
        const base = h * total;
        let m = -Infinity;
        for (let j = 0; j < n; j++) if (scores[base + j]! > m) m = scores[base + j]!;
        let s = 0;
        if (n > 0) {
          for (let j = 0; j < n; j++) {
            const p = Math.exp(scores[base + j]! - m);
            scores[base + j] = p;
            s += p;
          }
        }
        max[h] = m;
        sum[h] = s;
      }
      acc.fill(0);
      n = 0;
      for (let si = 0; si < sources.length; si++) {
        const src = sources[si]!;
        n = accumulateRows(scores, total, n, srcV[si]!, src.v.width, nHeads, groupSize, headDim, visibleEntries(src, r), acc);
      }
      for (let h = 0; h < nHeads; h++) {
        const oBase = r * out.cols + h * headDim;
        if (n === 0) {
          os.fill(0, oBase, oBase + headDim);
          if (ls) ls[r * nHeads + h] = -Infinity;
          continue;
        }
        const inv = 1 / sum[h]!;
        for (let d = 0; d < headDim; d++) os[oBase + d] = acc[h * headDim + d]! * inv;
        if (ls) ls[r * nHeads + h] = max[h]! + Math.log(sum[h]!);
      }
    }
  }

  mergeAttention(parts: readonly { out: Act; lse: Act }[], headDim: number, out: Act, lse?: Act): void {
    const os = act(out).data;
    const ls = lse ? act(lse).data : undefined;
    const rows = out.rows;
    const nHeads = parts[0]!.lse.cols;
    const outs = parts.map((p) => act(p.out).data);
    const lses = parts.map((p) => act(p.lse).data);
    const acc = new Float64Array(headDim);
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < nHeads; h++) {
        const li = r * nHeads + h;
        let max = -Infinity;
        for (const l of lses) if (l[li]! > max) max = l[li]!;
        const oBase = r * out.cols + h * headDim;
        if (max === -Infinity) {
          os.fill(0, oBase, oBase + headDim);
          if (ls) ls[li] = -Infinity;
          continue;
        }
        let sum = 0;
        for (const l of lses) sum += Math.exp(l[li]! - max);
        const total = max + Math.log(sum);
        acc.fill(0);
        for (let p = 0; p < outs.length; p++) {
          const w = Math.exp(lses[p]![li]! - total);
          if (w === 0) continue;
          const o = outs[p]!;
          for (let d = 0; d < headDim; d++) acc[d] += w * o[oBase + d]!;
        }
        for (let d = 0; d < headDim; d++) os[oBase + d] = acc[d]!;
        if (ls) ls[li] = total;
      }
    }
  }

  async argmax(logits: Act): Promise<Int32Array> {
    const l = act(logits);
    const result = new Int32Array(l.rows);
    for (let r = 0; r < l.rows; r++) {
      const base = r * l.cols;
      let best = 0;
      let bestValue = -Infinity;
      for (let i = 0; i < l.cols; i++) {
        const v = l.data[base + i]!;
        if (v > bestValue) { bestValue = v; best = i; } // first index wins ties
      }
      result[r] = best;
    }
    return result;
  }

  /**
   * Nucleus sampling of row 0. The order is fixed so every backend draws the same id from the same
   * `uniform`: tokens sorted by probability descending (ties: lower id first), the nucleus is the
   * shortest prefix whose mass reaches topP, and the draw is the first token of that prefix whose
   * cumulative mass exceeds uniform * (nucleus mass).
   */
  async sampleTopP(logits: Act, temperature: number, topP: number, uniform: number): Promise<number> {
    const l = act(logits);
    const vocab = l.cols;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (l.data[i]! > max) max = l.data[i]!;
    const probs = new Float64Array(vocab);
    let z = 0;
    for (let i = 0; i < vocab; i++) {
      const p = Math.exp((l.data[i]! - max) / temperature);
      probs[i] = p;
      z += p;
    }
    const order = Array.from({ length: vocab }, (_, i) => i);
    order.sort((a, b) => probs[b]! - probs[a]! || a - b);
    const limit = Math.min(topP, 1) * z;
    let mass = 0;
    let size = 0;
    while (size < vocab) {
      mass += probs[order[size]!]!;
      size++;
      if (mass >= limit) break;
    }
    const target = uniform * mass;
    let cum = 0;
    for (let i = 0; i < size; i++) {
      cum += probs[order[i]!]!;
      if (cum > target) return order[i]!;
    }
    return order[size - 1]!;
  }

  async flush(): Promise<void> {}

  destroy(): void {
    this.invFreqCache.clear();
  }

  private scratchFor(values: number): Float32Array {
    if (this.panelScratch.length < values) this.panelScratch = new Float32Array(values);
    return this.panelScratch;
  }

  private invFreq(headDim: number, rope: RopeParams): Float64Array {
    const s = rope.scaling;
    const key = `${headDim}/${rope.theta}/${s ? `${s.factor}/${s.lowFreqFactor}/${s.highFreqFactor}/${s.originalContextLength}` : ''}`;
    let inv = this.invFreqCache.get(key);
    if (!inv) {
      inv = ropeInvFreq(headDim, rope);
      this.invFreqCache.set(key, inv);
    }
    return inv;
  }
}

/**
 * out[r, j0 + p] = x[r] · panel[p] (+ bias) for every row r < n and panel row p < count.
 * Register-blocked: four x rows share each panel-row load; a lone row (decode) takes four panel
 * rows per pass so they share each x load.
 */
function matmulPanel(xs: Float32Array, n: number, inDim: number, ws: Float32Array, count: number,
  o: Float32Array, outDim: number, j0: number, b: Float32Array | undefined): void {
  let r = 0;
  for (; r + 4 <= n; r += 4) {
    const x0 = r * inDim, x1 = x0 + inDim, x2 = x1 + inDim, x3 = x2 + inDim;
    for (let p = 0; p < count; p++) {
      const wBase = p * inDim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const wv = ws[wBase + i]!;
        s0 += xs[x0 + i]! * wv;
        s1 += xs[x1 + i]! * wv;
        s2 += xs[x2 + i]! * wv;
        s3 += xs[x3 + i]! * wv;
      }
      const j = j0 + p;
      const bj = b ? b[j]! : 0;
      o[r * outDim + j] = s0 + bj;
      o[(r + 1) * outDim + j] = s1 + bj;
      o[(r + 2) * outDim + j] = s2 + bj;
      o[(r + 3) * outDim + j] = s3 + bj;
    }
  }
  for (; r < n; r++) {
    const xBase = r * inDim;
    const oBase = r * outDim + j0;
    let p = 0;
    for (; p + 4 <= count; p += 4) {
      const w0 = p * inDim, w1 = w0 + inDim, w2 = w1 + inDim, w3 = w2 + inDim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xv = xs[xBase + i]!;
        s0 += xv * ws[w0 + i]!;
        s1 += xv * ws[w1 + i]!;
        s2 += xv * ws[w2 + i]!;
        s3 += xv * ws[w3 + i]!;
      }
      o[oBase + p] = s0 + (b ? b[j0 + p]! : 0);
      o[oBase + p + 1] = s1 + (b ? b[j0 + p + 1]! : 0);
      o[oBase + p + 2] = s2 + (b ? b[j0 + p + 2]! : 0);
      o[oBase + p + 3] = s3 + (b ? b[j0 + p + 3]! : 0);
    }
    for (; p < count; p++) {
      const wBase = p * inDim;
      let s0 = 0;
      for (let i = 0; i < inDim; i++) s0 += xs[xBase + i]! * ws[wBase + i]!;
      o[oBase + p] = s0 + (b ? b[j0 + p]! : 0);
    }
  }
}

/** scores[h * stride + n..] = scale * q_h·k_j for entries j < visible, every head h; returns the new n. */
function scoreRows(q: Float32Array, qRow: number, k: Float32Array, width: number, nHeads: number, groupSize: number,
  headDim: number, visible: number, scale: number, scores: Float64Array, stride: number, n: number): number {
  for (let j = 0; j < visible; j++, n++) {
    const kRow = j * width;
    for (let h = 0; h < nHeads; h++) {
      const qBase = qRow + h * headDim;
      const kBase = kRow + Math.floor(h / groupSize) * headDim;
      let s0 = 0, s1 = 0;
      let d = 0;
      for (; d + 2 <= headDim; d += 2) {
        s0 += q[qBase + d]! * k[kBase + d]!;
        s1 += q[qBase + d + 1]! * k[kBase + d + 1]!;
      }
      for (; d < headDim; d++) s0 += q[qBase + d]! * k[kBase + d]!;
      scores[h * stride + n] = (s0 + s1) * scale;
    }
  }
  return n;
}

/** acc[h] += p_hj * v_j over entries j < visible, every head h, p read from weights[h * stride + n..]; returns the new n. */
function accumulateRows(weights: Float64Array, stride: number, n: number, v: Float32Array, width: number, nHeads: number,
  groupSize: number, headDim: number, visible: number, acc: Float64Array): number {
  for (let j = 0; j < visible; j++, n++) {
    const vRow = j * width;
    for (let h = 0; h < nHeads; h++) {
      const p = weights[h * stride + n]!;
      const vBase = vRow + Math.floor(h / groupSize) * headDim;
      const aBase = h * headDim;
      for (let d = 0; d < headDim; d++) acc[aBase + d] += p * v[vBase + d]!;
    }
  }
  return n;
}

export function act(a: Act): CpuAct {
  if (!(a instanceof CpuAct)) throw new EngineError('CpuBackend was given an activation from another backend');
  return a;
}
function kv(k: KvTensor): CpuKv {
  if (!(k instanceof CpuKv)) throw new EngineError('CpuBackend was given a KV tensor from another backend');
  return k;
}
/** A norm weight or bias: always held as f32. */
export function vector(w: Weight): Float32Array {
  const data = weight(w).data;
  if (!data) throw new EngineError(`${w.name}: a quantized matrix was used as a vector`);
  return data;
}
function weight(w: Weight): CpuWeight {
  if (!(w instanceof CpuWeight)) throw new EngineError('CpuBackend was given a weight from another backend');
  return w;
}

/** How many leading entries of `src` query row r sees (row restriction, then the causal mask). */
function visibleEntries(src: AttnSource, r: number): number {
  if (src.rows && (r < src.rows.start || r >= src.rows.start + src.rows.count)) return 0;
  return src.causalOffset === undefined ? src.length : Math.max(0, Math.min(src.length, src.causalOffset + r + 1));
}
