import type { Act, AttnShape, AttnSource, Backend, Weight } from '../backend/types';
import { EngineError, throwIfAborted } from '../errors';
import { yieldToEventLoop } from '../util/yieldToEventLoop';
import type { LoadedModel, ModelConfig } from '../model/types';
import type { BatchForwardOptions, BatchSequence, ForwardOptions, KvCache, RemoteAttention } from './types';

/*
 * The Llama / Qwen2 forward pass, written once against Backend (CPU reference and WebGPU alike).
 * Per layer: x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x)); x += Wdown · (silu(Wgate·h) * Wup·h)
 * with h = norm(x), then logits = Wout · norm(x). Attention sees, in one split-KV pass, every
 * `options.context` cache in full plus the sequence's own cache causally; `options.remotes` (other
 * hosts' partial attention) are merged in by log-sum-exp, which is exact. `options.observeQuery` taps
 * each layer's q (phase 2's per-file shares need it).
 */

interface LayerWeights {
  attnNorm: Weight; // [dim]
  wq: Weight; // [nHeads*headDim, dim]
  wk: Weight; // [nKvHeads*headDim, dim]
  wv: Weight; // [nKvHeads*headDim, dim]
  bq?: Weight; // [nHeads*headDim] (qwen2)
  bk?: Weight; // [nKvHeads*headDim]
  bv?: Weight; // [nKvHeads*headDim]
  wo: Weight; // [dim, nHeads*headDim]
  ffnNorm: Weight; // [dim]
  gate: Weight; // [ffnDim, dim]
  up: Weight; // [ffnDim, dim]
  down: Weight; // [dim, ffnDim]
}

interface ModelWeights {
  embed: Weight; // [vocab, dim]
  layers: LayerWeights[];
  outNorm: Weight; // [dim]
  output: Weight; // [vocab, dim] (the embedding table when tied)
}

/** Activations for one row count, allocated once and reused by every forward of that many rows. */
interface Scratch {
  rows: number;
  x: Act; // [rows, dim] residual stream
  xb: Act; // [rows, dim] normed input of a block
  q: Act; // [rows, nHeads*headDim]
  k: Act; // [rows, kvWidth]
  v: Act; // [rows, kvWidth]
  att: Act; // [rows, nHeads*headDim] attention output (local part when remotes are merged)
  lse: Act; // [rows, nHeads] local log-sum-exp (merged with the remotes')
  merged: Act; // [rows, nHeads*headDim] after merging remotes
  remoteOut: Act[]; // per remote [rows, nHeads*headDim]
  remoteLse: Act[]; // per remote [rows, nHeads]
  contextLse: Act; // [rows, nHeads] one context cache's lse (observeContextLse)
  proj: Act; // [rows, dim] attention or FFN output projection
  gate: Act; // [rows, ffnDim]
  up: Act; // [rows, ffnDim]
  hb: Act; // [rows, ffnDim]
  last: Act; // [1, dim] the last row before the classifier
  lastNorm: Act; // [1, dim]
  logitsLast: Act; // [1, vocab]
  logitsAll?: Act; // [rows, vocab], made on first use
}

/** Rows [row, row + rows) of a forward, whose KV goes to `cache`. */
interface Segment {
  readonly cache: KvCache;
  readonly row: number;
  readonly rows: number;
}

/** One remote host's partial attention for the current rows. */
type RemotePart = Awaited<ReturnType<RemoteAttention['attend']>>;

/** Every segment's rows must fit its cache before anything is written. */
function checkCapacity(segments: readonly Segment[]): void {
  for (const seg of segments) {
    if (seg.cache.length + seg.rows > seg.cache.capacity) {
      throw new EngineError(`KV cache full: ${seg.cache.length} + ${seg.rows} tokens exceed its capacity of ${seg.cache.capacity}`);
    }
  }
}

/** How many row counts keep their scratch (decode's 1 is always kept). */
const MAX_SCRATCH_SETS = 3;

export class Transformer {
  private readonly scratch = new Map<number, Scratch>();
  private readonly shape: AttnShape;
  private readonly kvWidth: number;

  private constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly weights: ModelWeights,
  ) {
    this.shape = { nHeads: config.nHeads, nKvHeads: config.nKvHeads, headDim: config.headDim };
    this.kvWidth = config.nKvHeads * config.headDim;
  }

  /** Uploads every weight once. */
  static async create(model: LoadedModel, backend: Backend): Promise<Transformer> {
    const c = model.config;
    const store = model.weights;
    const upload = async (name: string): Promise<Weight> => {
      const info = store.tensors.get(name);
      if (!info) throw new EngineError(`model has no tensor ${name}`, model.name);
      if (backend.uploadWeightFrom && store.readInto) return backend.uploadWeightFrom(info, (dst) => store.readInto!(name, dst));
      return backend.uploadWeight(info, await store.read(name));
    };
    const optional = async (name: string): Promise<Weight | undefined> =>
      store.tensors.has(name) ? upload(name) : undefined;

    const embed = await upload('token_embd.weight');
    const layers: LayerWeights[] = [];
    for (let i = 0; i < c.nLayers; i++) {
      const p = `blk.${i}.`;
      const layer: LayerWeights = {
        attnNorm: await upload(p + 'attn_norm.weight'),
        wq: await upload(p + 'attn_q.weight'),
        wk: await upload(p + 'attn_k.weight'),
        wv: await upload(p + 'attn_v.weight'),
        wo: await upload(p + 'attn_output.weight'),
        ffnNorm: await upload(p + 'ffn_norm.weight'),
        gate: await upload(p + 'ffn_gate.weight'),
        up: await upload(p + 'ffn_up.weight'),
        down: await upload(p + 'ffn_down.weight'),
      };
      if (c.qkvBias) {
        layer.bq = await upload(p + 'attn_q.bias');
        layer.bk = await upload(p + 'attn_k.bias');
        layer.bv = await upload(p + 'attn_v.bias');
      }
      layers.push(layer);
    }
    const outNorm = await upload('output_norm.weight');
    // Tied models have no output matrix; a file that stores one anyway is read as stored.
    const output = (await optional('output.weight')) ?? embed;
    return new Transformer(c, backend, { embed, layers, outNorm, output });
  }

  /** An empty KV cache for one sequence on this transformer's backend. */
  newCache(capacity: number): KvCache {
    const layers = [];
    for (let i = 0; i < this.config.nLayers; i++) {
      layers.push({ k: this.backend.createKv(capacity, this.kvWidth), v: this.backend.createKv(capacity, this.kvWidth) });
    }
    return { layers, capacity, length: 0 };
  }

  releaseCache(cache: KvCache): void {
    for (const l of cache.layers) {
      this.backend.release(l.k);
      this.backend.release(l.v);
    }
  }

  /**
   * Runs `ids` (at `positions`) through the model, appending their KV to `cache` at cache.length.
   * Returns the logits ('last': [1, vocab]; 'all': [rows, vocab]) or null for 'none'. The returned
   * Act is scratch: valid until the next forward with the same number of rows.
   */
  async forward(ids: Int32Array, positions: Int32Array, cache: KvCache, options: ForwardOptions): Promise<Act | null> {
    const n = ids.length;
    if (n === 0) throw new EngineError('forward: no tokens');
    if (positions.length !== n) throw new EngineError(`forward: ${n} ids but ${positions.length} positions`);
    return this.run(ids, positions, [{ cache, row: 0, rows: n }], options);
  }

  /**
   * Star Attention phase 1 with several blocks per dispatch: the rows of every sequence run as one
   * forward (one matmul per weight for all of them). Each sequence sees `context` in full and its
   * own rows causally but nothing of the other sequences (a block-diagonal mask), and appends its
   * KV to its own cache, exactly as one forward per sequence would (up to float summation order).
   */
  async forwardBatch(seqs: readonly BatchSequence[], options: BatchForwardOptions = {}): Promise<void> {
    if (seqs.length === 0) throw new EngineError('forwardBatch: no sequences');
    const segments: Segment[] = [];
    let rows = 0;
    for (const [i, q] of seqs.entries()) {
      if (q.ids.length === 0) throw new EngineError(`forwardBatch: sequence ${i} has no tokens`);
      if (q.positions.length !== q.ids.length) throw new EngineError(`forwardBatch: sequence ${i} has ${q.ids.length} ids but ${q.positions.length} positions`);
      if (seqs.findIndex((o) => o.cache === q.cache) !== i) throw new EngineError(`forwardBatch: sequence ${i} shares its cache with another`);
      segments.push({ cache: q.cache, row: rows, rows: q.ids.length });
      rows += q.ids.length;
    }
    const ids = new Int32Array(rows);
    const positions = new Int32Array(rows);
    for (const [i, q] of seqs.entries()) {
      ids.set(q.ids, segments[i]!.row);
      positions.set(q.positions, segments[i]!.row);
    }
    await this.run(ids, positions, segments, { context: options.context, signal: options.signal, logits: 'none' });
  }

  /** The forward of `segments` (consecutive row ranges, one cache each); one segment is a plain forward. */
  private async run(ids: Int32Array, positions: Int32Array, segments: readonly Segment[], options: ForwardOptions): Promise<Act | null> {
    checkCapacity(segments);
    throwIfAborted(options.signal);
    const s = this.scratchFor(ids.length, options.remotes?.length ?? 0);
    const starts = segments.map((seg) => seg.cache.length);

    this.backend.embed(this.weights.embed, ids, s.x);
    for (let l = 0; l < this.config.nLayers; l++) {
      await this.attentionBlock(l, s, positions, segments, starts, options);
      this.ffnBlock(l, s);
      if (options.signal) await this.yieldForAbort(options.signal);
    }
    segments.forEach((seg, i) => { seg.cache.length = starts[i]! + seg.rows; });
    return this.logits(s, options.logits);
  }

  /** x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x)), the new K/V appended to each segment's cache. */
  private async attentionBlock(
    l: number, s: Scratch, positions: Int32Array, segments: readonly Segment[], starts: readonly number[], options: ForwardOptions,
  ): Promise<void> {
    const c = this.config;
    const b = this.backend;
    const w = this.weights.layers[l]!;
    const context = options.context ?? [];
    const remotes = options.remotes ?? [];
    b.rmsNorm(s.x, w.attnNorm, c.rmsEps, s.xb);
    b.matmul(s.xb, w.wq, s.q, w.bq);
    b.matmul(s.xb, w.wk, s.k, w.bk);
    b.matmul(s.xb, w.wv, s.v, w.bv);
    b.rope(s.q, positions, c.headDim, c.rope);
    b.rope(s.k, positions, c.headDim, c.rope);
    // Other hosts get q before the local attention is recorded, so they work while this host does.
    const remoteParts = await this.sendQuery(l, s, remotes, options.observeQuery);
    const inputs = this.attentionInputs(l, s, context, segments, starts);
    b.attention(s.q, inputs, this.shape, s.att, remoteParts ? s.lse : undefined);
    if (options.observeContextLse && context.length > 0) await this.observeContextLse(l, s, inputs.slice(0, context.length), options.observeContextLse);
    const attOut = remoteParts ? this.mergeRemotes(s, await remoteParts) : s.att;
    b.matmul(attOut, w.wo, s.proj);
    b.add(s.x, s.proj);
  }

  /**
   * Reads q back once for the query observer and the remotes (not at all when neither is there) and starts the
   * remotes' attention; returns their pending parts, or undefined without remotes.
   */
  private async sendQuery(
    l: number, s: Scratch, remotes: readonly RemoteAttention[], observeQuery: ForwardOptions['observeQuery'],
  ): Promise<Promise<RemotePart[]> | undefined> {
    if (remotes.length === 0 && !observeQuery) return undefined;
    const q = await this.backend.readAct(s.q);
    observeQuery?.(l, q, s.rows); // before the remotes, which may take q's buffer
    if (remotes.length === 0) return undefined;
    const parts = Promise.all(remotes.map((r) => r.attend(l, q, s.rows)));
    parts.catch(() => {}); // awaited by the caller; this only keeps an early rejection from counting as unhandled
    return parts;
  }

  /** Layer l's attention inputs: every context cache in full, then each segment's own cache causally (K/V stored first). */
  private attentionInputs(l: number, s: Scratch, context: readonly KvCache[], segments: readonly Segment[], starts: readonly number[]): AttnSource[] {
    const b = this.backend;
    const inputs: AttnSource[] = context.map((ctx) => ({ k: ctx.layers[l]!.k, v: ctx.layers[l]!.v, length: ctx.length }));
    segments.forEach((seg, i) => {
      const own = seg.cache.layers[l]!;
      const start = starts[i]!;
      b.storeKv(s.k, own.k, start, seg.row, seg.rows);
      b.storeKv(s.v, own.v, start, seg.row, seg.rows);
      // Row seg.row + j sits at entry start + j of its own cache and sees entries up to it.
      const input = { k: own.k, v: own.v, length: start + seg.rows, causalOffset: start - seg.row };
      inputs.push(segments.length === 1 ? input : { ...input, rows: { start: seg.row, count: seg.rows } });
    });
    return inputs;
  }

  /** The local attention (s.att, s.lse) merged with the remotes' parts by log-sum-exp, into s.merged. */
  private mergeRemotes(s: Scratch, partials: readonly RemotePart[]): Act {
    const b = this.backend;
    const parts = [{ out: s.att, lse: s.lse }];
    partials.forEach((p, i) => {
      b.writeAct(s.remoteOut[i]!, p.out);
      b.writeAct(s.remoteLse[i]!, p.lse);
      parts.push({ out: s.remoteOut[i]!, lse: s.remoteLse[i]! });
    });
    b.mergeAttention(parts, this.config.headDim, s.merged);
    return s.merged;
  }

  /** x += Wdown · (silu(Wgate·h) * Wup·h), h = norm(x) (SwiGLU). */
  private ffnBlock(l: number, s: Scratch): void {
    const c = this.config;
    const b = this.backend;
    const w = this.weights.layers[l]!;
    b.rmsNorm(s.x, w.ffnNorm, c.rmsEps, s.xb);
    b.matmul(s.xb, w.gate, s.gate);
    b.matmul(s.xb, w.up, s.up);
    b.swiglu(s.gate, s.up, s.hb);
    b.matmul(s.hb, w.down, s.proj);
    b.add(s.x, s.proj);
  }

  /** Lets a Ctrl-C handler (or any other event) abort the signal in the middle of a long CPU forward. */
  private async yieldForAbort(signal: AbortSignal): Promise<void> {
    await yieldToEventLoop();
    if (signal.aborted) {
      await this.backend.flush();
      throwIfAborted(signal);
    }
  }

  /** The classifier: nothing, every row's logits, or the last row's. */
  private async logits(s: Scratch, mode: ForwardOptions['logits']): Promise<Act | null> {
    const c = this.config;
    const b = this.backend;
    if (mode === 'none') {
      await b.flush();
      return null;
    }
    if (mode === 'all') {
      s.logitsAll ??= b.createAct(s.rows, c.vocabSize);
      b.rmsNorm(s.x, this.weights.outNorm, c.rmsEps, s.xb);
      b.matmul(s.xb, this.weights.output, s.logitsAll);
      return s.logitsAll;
    }
    let last = s.x;
    if (s.rows > 1) {
      await this.copyRow(s.x, s.rows - 1, s.last);
      last = s.last;
    }
    b.rmsNorm(last, this.weights.outNorm, c.rmsEps, s.lastNorm);
    b.matmul(s.lastNorm, this.weights.output, s.logitsLast);
    return s.logitsLast;
  }

  /** Releases the weights and scratch (caches are released by their owners). The backend stays alive. */
  dispose(): void {
    this.releaseScratch();
    const w = this.weights;
    const all = new Set<Weight>([w.embed, w.outNorm, w.output]);
    for (const l of w.layers) for (const t of Object.values(l)) if (t) all.add(t);
    for (const t of all) this.backend.release(t);
  }

  /** Drops every scratch set (e.g. before a long idle period). */
  releaseScratch(): void {
    for (const s of this.scratch.values()) this.releaseSet(s);
    this.scratch.clear();
  }

  /** Each context cache's own lse: one attention pass per cache, only when asked, so normal decoding pays nothing. */
  private async observeContextLse(
    layer: number,
    s: Scratch,
    contextInputs: readonly AttnSource[],
    observer: NonNullable<ForwardOptions['observeContextLse']>,
  ): Promise<void> {
    const perContext: Float32Array[] = [];
    for (const input of contextInputs) {
      this.backend.attention(s.q, [input], this.shape, s.merged, s.contextLse);
      perContext.push(await this.backend.readAct(s.contextLse));
    }
    observer(layer, perContext);
  }

  private async copyRow(src: Act, row: number, dst: Act): Promise<void> {
    const b = this.backend;
    if (b.copyRows) {
      b.copyRows(src, row, 1, dst, 0);
      return;
    }
    const all = await b.readAct(src);
    b.writeAct(dst, all.subarray(row * src.cols, (row + 1) * src.cols));
  }

  private scratchFor(rows: number, nRemotes: number): Scratch {
    let s = this.scratch.get(rows);
    if (!s) {
      if (this.scratch.size >= MAX_SCRATCH_SETS) {
        for (const [key, old] of this.scratch) {
          if (key === 1) continue;
          this.releaseSet(old);
          this.scratch.delete(key);
          break;
        }
      }
      s = this.allocate(rows);
      this.scratch.set(rows, s);
    } else {
      // Most recently used last, so eviction drops the oldest.
      this.scratch.delete(rows);
      this.scratch.set(rows, s);
    }
    const qWidth = this.config.nHeads * this.config.headDim;
    while (s.remoteOut.length < nRemotes) {
      s.remoteOut.push(this.backend.createAct(rows, qWidth));
      s.remoteLse.push(this.backend.createAct(rows, this.config.nHeads));
    }
    return s;
  }

  private allocate(rows: number): Scratch {
    const c = this.config;
    const b = this.backend;
    const qWidth = c.nHeads * c.headDim;
    return {
      rows,
      x: b.createAct(rows, c.dim),
      xb: b.createAct(rows, c.dim),
      q: b.createAct(rows, qWidth),
      k: b.createAct(rows, this.kvWidth),
      v: b.createAct(rows, this.kvWidth),
      att: b.createAct(rows, qWidth),
      lse: b.createAct(rows, c.nHeads),
      merged: b.createAct(rows, qWidth),
      remoteOut: [],
      remoteLse: [],
      contextLse: b.createAct(rows, c.nHeads),
      proj: b.createAct(rows, c.dim),
      gate: b.createAct(rows, c.ffnDim),
      up: b.createAct(rows, c.ffnDim),
      hb: b.createAct(rows, c.ffnDim),
      last: b.createAct(1, c.dim),
      lastNorm: b.createAct(1, c.dim),
      logitsLast: b.createAct(1, c.vocabSize),
    };
  }

  private releaseSet(s: Scratch): void {
    const acts: (Act | undefined)[] = [s.x, s.xb, s.q, s.k, s.v, s.att, s.lse, s.merged, s.proj, s.gate, s.up, s.hb,
      s.last, s.lastNorm, s.logitsLast, s.logitsAll, s.contextLse, ...s.remoteOut, ...s.remoteLse];
    for (const a of acts) if (a) this.backend.release(a);
  }
}
