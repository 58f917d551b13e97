import { isRounded, roundKvAs } from '../quant/kvRounding';
import type { Act, AttnSource, Backend, KvTensor } from '../backend/types';
import { EngineError, throwIfAborted } from '../errors';
import type { Transformer } from '../runtime/transformer';
import type { KvCache } from '../runtime/types';
import type { StarHost } from './host';
import { createYieldPoint } from '../util/yieldPoint';
import type { BlockMove } from './host';
import { mergeInto } from './merge';
import { kvBytes } from '../runtime/kvBytes';
import { shiftBlockKv } from './shift';
import type { BlockKv, BlockSpec, HostAttention } from './types';

/*
 * A host running in this process on one Backend (CPU, or Dawn WebGPU in Node; a webview worker
 * wraps the same class behind messages).
 *
 * Residency: a block's KV stays on the device while the host's total fits
 * `memoryBudgetBytes` (the backend's budget unless overridden). When it does not, phase 2 streams
 * the blocks through in waves, layer by layer: a wave's K/V for one layer is written into reused
 * slot tensors, attended, and merged into the running (out, lse) exactly. A wave holds as many
 * blocks as one layer's K+V of `budget` bytes allows (at least one block).
 */

export interface LocalStarHostOptions {
  readonly name?: string;
  /** Overrides backend.memoryBudgetBytes (tests force waves with a tiny budget). */
  readonly memoryBudgetBytes?: number;
  /**
   * Phase 1 encodes the blocks of one encode() call several per forward, up to this many rows
   * together (default DEFAULT_MAX_BATCH_ROWS); a longer block runs alone. 1 encodes one block per forward.
   */
  readonly maxBatchRows?: number;
}

/** Rows of one batched phase-1 forward: large enough to fill matmuls, small enough for modest scratch. */
export const DEFAULT_MAX_BATCH_ROWS = 1024;

interface HeldBlock {
  index: number;
  start: number;
  readonly length: number;
  /** On the device (resident). */
  device?: KvCache;
  /** True when `device` is the anchor cache itself (block 0); not released separately. */
  deviceIsAnchor?: boolean;
  /** Host-memory copy, kept only while the block is not resident. */
  cpu?: BlockKv;
}

interface Slot {
  readonly k: KvTensor;
  readonly v: KvTensor;
}

export class LocalStarHost implements StarHost {
  readonly name: string;
  readonly budgetBytes: number;
  readonly maxBatchRows: number;
  private readonly backend: Backend;
  private readonly width: number;
  private anchorTokens: readonly number[] | undefined;
  private anchorCache: KvCache | undefined;
  private readonly held: HeldBlock[] = [];
  private residentBytes = 0;
  private mode: 'undecided' | 'resident' | 'waves' = 'undecided';
  private waves: HeldBlock[][] = [];
  private slots: Slot[] = [];
  private readonly acts = new Map<number, { q: Act; out: Act; lse: Act }>();
  /** Statistics for reports and tests. */
  readonly stats = { blocksEncoded: 0, tokensEncoded: 0, wavesPerLayer: 0 };
  /** Lets the event loop run now and then during phase 1 (a cancel message must get through; see yieldPoint.ts). */
  private readonly yieldPoint = createYieldPoint();

  constructor(readonly transformer: Transformer, options: LocalStarHostOptions = {}) {
    this.backend = transformer.backend;
    this.budgetBytes = options.memoryBudgetBytes ?? this.backend.memoryBudgetBytes;
    this.maxBatchRows = Math.max(1, options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS);
    this.name = options.name ?? `${this.backend.kind} (${this.backend.deviceName})`;
    this.width = transformer.config.nKvHeads * transformer.config.headDim;
  }

  async encode(anchor: readonly number[], blocks: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]> {
    const anchorCache = await this.ensureAnchor(anchor, signal);
    const results = new Array<BlockKv>(blocks.length);
    // Every batch runs against the same anchor cache: the anchor is uploaded/computed once.
    let batch: number[] = [];
    let batchRows = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.yieldPoint();
      throwIfAborted(signal);
      const kvs = await this.encodeBatch(anchorCache, batch.map((i) => blocks[i]!), signal);
      batch.forEach((i, j) => { results[i] = kvs[j]!; });
      batch = [];
      batchRows = 0;
    };
    for (const [i, spec] of blocks.entries()) {
      throwIfAborted(signal);
      if (spec.start === 0) {
        if (!sameTokens(spec.tokens, anchor)) throw new EngineError(`block ${spec.index} starts at 0 but is not the anchor`);
        const kv = await this.readBack(anchorCache, spec.index, 0);
        // Rounded, the block keeps its own copy: the anchor cache every later block is encoded against stays f32.
        const rounded = isRounded(spec.kvDtype);
        roundKvAs(spec.kvDtype, kv);
        this.add({ index: spec.index, start: 0, length: anchorCache.length }, kv, rounded ? undefined : anchorCache, !rounded);
        results[i] = kv;
        continue;
      }
      if (batch.length > 0 && batchRows + spec.tokens.length > this.maxBatchRows) await flush();
      batch.push(i);
      batchRows += spec.tokens.length;
    }
    await flush();
    return results;
  }

  /** Blocks (none the anchor) as the rows of one forward, each block seeing the anchor and itself. */
  private async encodeBatch(anchorCache: KvCache, specs: readonly BlockSpec[], signal?: AbortSignal): Promise<BlockKv[]> {
    const t = this.transformer;
    const seqs = specs.map((spec) => {
      const n = spec.tokens.length;
      const positions = new Int32Array(n);
      for (let i = 0; i < n; i++) positions[i] = spec.start + i;
      return { ids: Int32Array.from(spec.tokens), positions, cache: t.newCache(n) };
    });
    try {
      if (seqs.length === 1) await t.forward(seqs[0]!.ids, seqs[0]!.positions, seqs[0]!.cache, { context: [anchorCache], logits: 'none', signal });
      else await t.forwardBatch(seqs, { context: [anchorCache], signal });
    } catch (e) {
      for (const q of seqs) t.releaseCache(q.cache);
      throw e;
    }
    const kvs = await Promise.all(seqs.map((q, j) => this.readBack(q.cache, specs[j]!.index, specs[j]!.start)));
    specs.forEach((spec, j) => {
      const meta = { index: spec.index, start: spec.start, length: spec.tokens.length };
      // f16 / q8: kept as a loaded block is (host-side until phase 2 uploads it), so cold and warm runs attend to equal KV.
      if (isRounded(spec.kvDtype)) {
        t.releaseCache(seqs[j]!.cache);
        roundKvAs(spec.kvDtype, kvs[j]!);
        this.add(meta, kvs[j]!, undefined, false);
      } else {
        this.add(meta, kvs[j]!, seqs[j]!.cache, false);
      }
      this.stats.blocksEncoded++;
      this.stats.tokensEncoded += spec.tokens.length;
    });
    return kvs;
  }

  async load(blocks: readonly BlockKv[]): Promise<void> {
    for (const kv of blocks) {
      if (kv.width !== this.width || kv.k.length !== this.transformer.config.nLayers) {
        throw new EngineError(`block ${kv.index}: KV of width ${kv.width} x ${kv.k.length} layers does not fit this model`);
      }
      this.add({ index: kv.index, start: kv.start, length: kv.length }, kv, undefined, false);
    }
  }

  async blockIndices(): Promise<number[]> {
    return this.held.map((b) => b.index);
  }

  /** Total bytes of all held blocks' KV. */
  get totalBytes(): number {
    return this.held.reduce((s, b) => s + kvBytes(this.transformer.config.nLayers, b.length, this.width), 0);
  }

  /**
   * The blocks' device caches, in blockIndices() order, when every block is resident: the query
   * host then passes them to the transformer as `context` (no per-layer readback). Null in waves mode.
   */
  async residentCaches(): Promise<{ index: number; cache: KvCache }[] | null> {
    await this.prepare();
    if (this.mode !== 'resident') return null;
    return this.held.map((b) => ({ index: b.index, cache: b.device! }));
  }

  /** 'resident' or 'waves', decided on the first phase-2 call. */
  async residency(): Promise<'resident' | 'waves'> {
    await this.prepare();
    return this.mode as 'resident' | 'waves';
  }

  async attend(layer: number, q: Float32Array, rows: number, perBlock: boolean): Promise<HostAttention> {
    await this.prepare();
    const c = this.transformer.config;
    const qWidth = c.nHeads * c.headDim;
    if (q.length !== rows * qWidth) throw new EngineError(`attend: q has ${q.length} values, expected ${rows} x ${qWidth}`);
    const acc = { out: new Float32Array(rows * qWidth), lse: new Float32Array(rows * c.nHeads).fill(-Infinity) };
    const blockLse: { index: number; lse: Float32Array }[] = [];
    if (this.held.length === 0) return perBlock ? { ...acc, blocks: blockLse } : acc;

    const a = this.actsFor(rows);
    this.backend.writeAct(a.q, q);
    const run = async (group: { index: number; source: AttnSource }[]): Promise<void> => {
      if (!perBlock) {
        this.backend.attention(a.q, group.map((g) => g.source), this.shape, a.out, a.lse);
        mergeInto(acc, { out: await this.backend.readAct(a.out), lse: await this.backend.readAct(a.lse) });
        return;
      }
      for (const g of group) {
        this.backend.attention(a.q, [g.source], this.shape, a.out, a.lse);
        const lse = await this.backend.readAct(a.lse);
        mergeInto(acc, { out: await this.backend.readAct(a.out), lse });
        blockLse.push({ index: g.index, lse });
      }
    };

    if (this.mode === 'resident') {
      await run(this.held.map((b) => ({ index: b.index, source: sourceOf(b.device!, layer) })));
    } else {
      for (const wave of this.waves) {
        const group = wave.map((b, i) => {
          const slot = this.slots[i]!;
          this.backend.writeKv(slot.k, 0, b.cpu!.k[layer]!);
          this.backend.writeKv(slot.v, 0, b.cpu!.v[layer]!);
          return { index: b.index, source: { k: slot.k, v: slot.v, length: b.length } };
        });
        await run(group);
      }
    }
    return perBlock ? { ...acc, blocks: blockLse } : acc;
  }

  async drop(indices: readonly number[]): Promise<void> {
    const gone = new Set(indices);
    for (const b of this.held) {
      if (!gone.has(b.index) || !b.device) continue;
      if (!b.deviceIsAnchor) this.transformer.releaseCache(b.device);
      this.residentBytes -= kvBytes(this.transformer.config.nLayers, b.length, this.width);
    }
    this.held.splice(0, this.held.length, ...this.held.filter((b) => !gone.has(b.index)));
    this.unprepare();
  }

  async move(moves: readonly BlockMove[]): Promise<void> {
    const c = this.transformer.config;
    const byIndex = new Map(this.held.map((b) => [b.index, b]));
    const targets = moves.map((m) => {
      const b = byIndex.get(m.from);
      if (!b) throw new EngineError(`move: block ${m.from} is not held by ${this.name}`);
      if (b.start === 0 && m.start !== 0) throw new EngineError('move: the anchor (block 0) cannot move');
      return b;
    });
    // All rotations first, then the renumbering: moves may swap indices.
    for (const [i, m] of moves.entries()) {
      const b = targets[i]!;
      const delta = m.start - b.start;
      if (delta === 0) continue;
      if (b.device) for (const l of b.device.layers) this.backend.ropeShiftKv(l.k, 0, b.length, delta, c.headDim, c.rope);
      else if (b.cpu) b.cpu = { ...(await shiftBlockKv(this.backend, b.cpu, m.start, c.headDim, c.rope)), index: m.to };
    }
    moves.forEach((m, i) => {
      targets[i]!.index = m.to;
      targets[i]!.start = m.start;
    });
  }

  async clear(): Promise<void> {
    for (const b of this.held) if (b.device && !b.deviceIsAnchor) this.transformer.releaseCache(b.device);
    this.held.length = 0;
    this.residentBytes = 0;
    this.waves = [];
    this.mode = 'undecided';
  }

  async dispose(): Promise<void> {
    await this.clear();
    if (this.anchorCache) this.transformer.releaseCache(this.anchorCache);
    this.anchorCache = undefined;
    this.anchorTokens = undefined;
    for (const s of this.slots) {
      this.backend.release(s.k);
      this.backend.release(s.v);
    }
    this.slots = [];
    for (const a of this.acts.values()) for (const x of [a.q, a.out, a.lse]) this.backend.release(x);
    this.acts.clear();
    this.residentBytes = 0;
    this.mode = 'undecided';
  }

  private get shape() {
    const c = this.transformer.config;
    return { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  }

  private async ensureAnchor(anchor: readonly number[], signal?: AbortSignal): Promise<KvCache> {
    if (this.anchorCache && this.anchorTokens && sameTokens(this.anchorTokens, anchor)) return this.anchorCache;
    if (anchor.length === 0) throw new EngineError('Star Attention needs a non-empty anchor');
    if (this.anchorCache) {
      if (this.held.some((b) => b.deviceIsAnchor)) throw new EngineError('this host already holds blocks of another anchor');
      this.transformer.releaseCache(this.anchorCache);
    }
    const cache = this.transformer.newCache(anchor.length);
    const positions = new Int32Array(anchor.length);
    for (let i = 0; i < anchor.length; i++) positions[i] = i;
    await this.transformer.forward(Int32Array.from(anchor), positions, cache, { logits: 'none', signal });
    this.anchorCache = cache;
    this.anchorTokens = [...anchor];
    return cache;
  }

  private add(meta: { index: number; start: number; length: number }, kv: BlockKv, device: KvCache | undefined, isAnchor: boolean): void {
    if (this.mode !== 'undecided') this.unprepare();
    const bytes = kvBytes(kv.k.length, kv.length, kv.width);
    const held: HeldBlock = { ...meta };
    if (device && this.residentBytes + bytes <= this.budgetBytes) {
      held.device = device;
      held.deviceIsAnchor = isAnchor;
      this.residentBytes += bytes;
    } else {
      if (device && !isAnchor) this.transformer.releaseCache(device);
      held.cpu = kv;
    }
    this.held.push(held);
  }

  /** Phase 2 starts: every block resident if the total fits the budget, otherwise waves. */
  private async prepare(): Promise<void> {
    if (this.mode !== 'undecided') return;
    const perToken = kvBytes(this.transformer.config.nLayers, 1, this.width);
    const total = this.held.reduce((s, b) => s + b.length * perToken, 0);
    if (total <= this.budgetBytes) {
      for (const b of this.held) {
        if (b.device) continue;
        b.device = this.upload(b.cpu!);
        b.cpu = undefined;
      }
      this.residentBytes = total;
      this.mode = 'resident';
      return;
    }
    // Waves: everything to host memory, then group blocks so one layer's K+V of a wave fits the budget.
    for (const b of this.held) {
      if (!b.device) continue;
      b.cpu = await this.readBack(b.device, b.index, b.start);
      if (!b.deviceIsAnchor) this.transformer.releaseCache(b.device);
      b.device = undefined;
    }
    this.residentBytes = 0;
    const waveTokens = Math.floor(this.budgetBytes / kvBytes(1, 1, this.width));
    this.waves = [];
    let wave: HeldBlock[] = [];
    let tokens = 0;
    for (const b of this.held) {
      if (wave.length > 0 && tokens + b.length > waveTokens) {
        this.waves.push(wave);
        wave = [];
        tokens = 0;
      }
      wave.push(b);
      tokens += b.length;
    }
    if (wave.length) this.waves.push(wave);
    const maxLen = Math.max(...this.held.map((b) => b.length));
    const slotsNeeded = Math.max(...this.waves.map((w) => w.length));
    for (const s of this.slots) {
      this.backend.release(s.k);
      this.backend.release(s.v);
    }
    this.slots = Array.from({ length: slotsNeeded }, () => ({
      k: this.backend.createKv(maxLen, this.width),
      v: this.backend.createKv(maxLen, this.width),
    }));
    this.stats.wavesPerLayer = this.waves.length;
    this.mode = 'waves';
  }

  /** Blocks added after phase 2 began: decide residency again on the next attend. */
  private unprepare(): void {
    this.mode = 'undecided';
  }

  private upload(kv: BlockKv): KvCache {
    const cache = this.transformer.newCache(kv.length);
    cache.layers.forEach((l, i) => {
      this.backend.writeKv(l.k, 0, kv.k[i]!);
      this.backend.writeKv(l.v, 0, kv.v[i]!);
    });
    cache.length = kv.length;
    return cache;
  }

  private async readBack(cache: KvCache, index: number, start: number): Promise<BlockKv> {
    // All reads in flight together: a GPU backend can serve them from one submit.
    const [k, v] = await Promise.all([
      Promise.all(cache.layers.map((l) => this.backend.readKv(l.k, 0, cache.length))),
      Promise.all(cache.layers.map((l) => this.backend.readKv(l.v, 0, cache.length))),
    ]);
    return { index, start, length: cache.length, width: this.width, k, v };
  }

  private actsFor(rows: number): { q: Act; out: Act; lse: Act } {
    let a = this.acts.get(rows);
    if (!a) {
      const c = this.transformer.config;
      a = {
        q: this.backend.createAct(rows, c.nHeads * c.headDim),
        out: this.backend.createAct(rows, c.nHeads * c.headDim),
        lse: this.backend.createAct(rows, c.nHeads),
      };
      this.acts.set(rows, a);
    }
    return a;
  }
}

function sourceOf(cache: KvCache, layer: number): AttnSource {
  const l = cache.layers[layer]!;
  return { k: l.k, v: l.v, length: cache.length };
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
