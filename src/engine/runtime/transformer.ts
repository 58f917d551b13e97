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

/** Per-row activations of one pass over a layer's rows, `rows` of each (`gate`, `up`, `hb`: `ffnRows`). */
interface RowActs {
  rows: number;
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
  ffnRows: number;
  gate: Act; // [ffnRows, ffnDim]
  up: Act; // [ffnRows, ffnDim]
  hb: Act; // [ffnRows, ffnDim]
}

/** Rows [row0, row0 + rows) of a forward as one pass over a layer: x is theirs in the residual stream, the rest RowActs (or views). */
interface Pass extends RowActs {
  row0: number;
  x: Act; // [rows, dim]
}

/**
 * The activations of forwards of up to `rows` rows, allocated once and reused: the residual stream whole, every
 * other per-row activation for one pass (`pass`: a chunk of rows, or every row where the backend has no views).
 */
interface Scratch {
  rows: number;
  x: Act; // [rows, dim]
  pass: RowActs;
  /** For a forward that must run a layer's rows in one pass (remotes, observers) and has more than `pass` holds: [its rows, ...]. */
  whole?: RowActs;
  last: Act; // [1, dim] the last row before the classifier
  lastNorm: Act; // [1, dim]
  logitsLast: Act; // [1, vocab]
  logitsAll?: Act; // [n, vocab] of the last forward that asked for every row's logits
  /** True while a forward runs in it (a second, concurrent one gets a set of its own). */
  busy: boolean;
}

export interface TransformerOptions {
  /**
   * Rows per pass over a layer where the backend can view rows (the `cpu` backends): a forward's activations are
   * then the residual stream [rows, dim] and one chunk's worth of the rest, where whole they were 81 KB a row at
   * 0.5B (41 MB per 512 rows, 30 MB of it the feed-forward's [rows, ffnDim]). Chunks run in row order, each its
   * attention (over the KV its own and earlier rows stored) then its feed-forward; a forward with remotes or
   * observers runs its attention whole (they take a layer's rows at once) and only its feed-forward in chunks.
   * A multiple of 4, the products' activation tile (kernels/cpu/matmul.c NR, and the reference's), so that chunked
   * and whole products sum in the same order: results are bit-identical. Infinity runs every layer whole.
   * Default ROW_CHUNK; backends without viewRows (WebGPU) always run layers whole.
   */
  readonly chunkRows?: number;
}

/** The default chunkRows: the WebAssembly products take 64 activation rows per call anyway (wasmBackend.ts). */
export const ROW_CHUNK = 64;
/** Rows of the products' activation tile that chunk boundaries must respect. */
const ROW_TILE = 4;

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

/** options.chunkRows checked, or its default for the backend. */
function chunkRowsFor(backend: Backend, options: TransformerOptions): number {
  const chunk = options.chunkRows ?? (backend.viewRows ? ROW_CHUNK : Infinity);
  if (chunk === Infinity) return chunk;
  if (!(Number.isInteger(chunk) && chunk > 0 && chunk % ROW_TILE === 0)) {
    throw new EngineError(`chunkRows ${chunk}: must be a positive multiple of ${ROW_TILE} (the products' activation tile) or Infinity`);
  }
  if (!backend.viewRows) throw new EngineError(`chunkRows ${chunk}: the ${backend.deviceName} backend cannot view rows, so it runs every layer whole`);
  return chunk;
}

/** Without viewRows: how many row counts keep their scratch set (decode's 1 is always kept). */
const MAX_SCRATCH_SETS = 3;

export class Transformer {
  /** Most recently used last. With viewRows one set serves every row count up to its own (another only once forwards overlapped). */
  private readonly scratch: Scratch[] = [];
  private readonly shape: AttnShape;
  private readonly kvWidth: number;

  private constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly weights: ModelWeights,
    private readonly chunkRows: number,
  ) {
    this.shape = { nHeads: config.nHeads, nKvHeads: config.nKvHeads, headDim: config.headDim };
    this.kvWidth = config.nKvHeads * config.headDim;
  }

  /** Uploads every weight once. */
  static async create(model: LoadedModel, backend: Backend, options: TransformerOptions = {}): Promise<Transformer> {
    const chunkRows = chunkRowsFor(backend, options);
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
    return new Transformer(c, backend, { embed, layers, outNorm, output }, chunkRows);
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
   * Act is scratch: valid until the next forward.
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
    const n = ids.length;
    const set = this.scratchFor(n);
    set.busy = true;
    try {
      const passes = this.passesFor(set, n, options);
      const starts = segments.map((seg) => seg.cache.length);
      this.backend.embed(this.weights.embed, ids, this.rowsOf(set.x, 0, n));
      for (let l = 0; l < this.config.nLayers; l++) {
        for (const p of passes) {
          await this.attentionBlock(l, p, positions.subarray(p.row0, p.row0 + p.rows), segments, starts, options);
          this.ffnBlock(l, p);
        }
        if (options.signal) await this.yieldForAbort(options.signal);
      }
      segments.forEach((seg, i) => { seg.cache.length = starts[i]! + seg.rows; });
      return await this.logits(set, passes, options.logits);
    } finally {
      set.busy = false;
    }
  }

  /** x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x)) for a pass's rows, their K/V appended to each segment's cache. */
  private async attentionBlock(
    l: number, s: Pass, positions: Int32Array, segments: readonly Segment[], starts: readonly number[], options: ForwardOptions,
  ): Promise<void> {
    const c = this.config;
    const b = this.backend;
    const w = this.weights.layers[l]!;
    const context = options.context ?? [];
    const remotes = options.remotes ?? [];
    b.rmsNorm(s.x, w.attnNorm, c.rmsEps, s.xb);
    b.matmulShared(s.xb, [{ w: w.wq, out: s.q, bias: w.bq }, { w: w.wk, out: s.k, bias: w.bk }, { w: w.wv, out: s.v, bias: w.bv }]);
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
    l: number, s: Pass, remotes: readonly RemoteAttention[], observeQuery: ForwardOptions['observeQuery'],
  ): Promise<Promise<RemotePart[]> | undefined> {
    if (remotes.length === 0 && !observeQuery) return undefined;
    const q = await this.backend.readAct(s.q);
    observeQuery?.(l, q, s.rows); // before the remotes, which may take q's buffer
    if (remotes.length === 0) return undefined;
    const parts = Promise.all(remotes.map((r) => r.attend(l, q, s.rows)));
    parts.catch(() => {}); // awaited by the caller; this only keeps an early rejection from counting as unhandled
    return parts;
  }

  /**
   * Layer l's attention inputs for a pass: every context cache in full, then the own cache of each segment the pass
   * has rows of, causally (the pass's K/V stored first; earlier passes stored the rows before it).
   */
  private attentionInputs(l: number, s: Pass, context: readonly KvCache[], segments: readonly Segment[], starts: readonly number[]): AttnSource[] {
    const b = this.backend;
    const inputs: AttnSource[] = context.map((ctx) => ({ k: ctx.layers[l]!.k, v: ctx.layers[l]!.v, length: ctx.length }));
    segments.forEach((seg, i) => {
      const from = Math.max(seg.row, s.row0), to = Math.min(seg.row + seg.rows, s.row0 + s.rows);
      if (to <= from) return;
      const own = seg.cache.layers[l]!;
      const start = starts[i]!;
      b.storeKv(s.k, own.k, start + from - seg.row, from - s.row0, to - from);
      b.storeKv(s.v, own.v, start + from - seg.row, from - s.row0, to - from);
      // Forward row seg.row + j (pass row seg.row + j - row0) sits at entry start + j of its own cache and sees entries up to it.
      const input = { k: own.k, v: own.v, length: start + to - seg.row, causalOffset: start - seg.row + s.row0 };
      inputs.push(segments.length === 1 ? input : { ...input, rows: { start: from - s.row0, count: to - from } });
    });
    return inputs;
  }

  /** The local attention (s.att, s.lse) merged with the remotes' parts by log-sum-exp, into s.merged. */
  private mergeRemotes(s: Pass, partials: readonly RemotePart[]): Act {
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

  /**
   * x += Wdown · (silu(Wgate·h) * Wup·h), h = norm(x) (SwiGLU), for a pass's rows in chunks of f.ffnRows: each
   * row's products see that row alone, so a chunk is its rows of the whole.
   */
  private ffnBlock(l: number, f: Pass): void {
    const c = this.config;
    const b = this.backend;
    const w = this.weights.layers[l]!;
    b.rmsNorm(f.x, w.ffnNorm, c.rmsEps, f.xb);
    for (let r0 = 0; r0 < f.rows; r0 += f.ffnRows) {
      const m = Math.min(f.ffnRows, f.rows - r0);
      const xb = this.rowsOf(f.xb, r0, m), proj = this.rowsOf(f.proj, r0, m);
      const gate = this.rowsOf(f.gate, 0, m), up = this.rowsOf(f.up, 0, m), hb = this.rowsOf(f.hb, 0, m);
      b.matmulShared(xb, [{ w: w.gate, out: gate }, { w: w.up, out: up }]);
      b.swiglu(gate, up, hb);
      b.matmul(hb, w.down, proj);
    }
    b.add(f.x, f.proj);
  }

  /** Lets a Ctrl-C handler (or any other event) abort the signal in the middle of a long CPU forward. */
  private async yieldForAbort(signal: AbortSignal): Promise<void> {
    await yieldToEventLoop();
    if (signal.aborted) {
      await this.backend.flush();
      throwIfAborted(signal);
    }
  }

  /** The classifier: nothing, every row's logits (pass by pass), or the last row's. */
  private async logits(set: Scratch, passes: readonly Pass[], mode: ForwardOptions['logits']): Promise<Act | null> {
    const c = this.config;
    const b = this.backend;
    const n = passes.reduce((sum, p) => sum + p.rows, 0);
    if (mode !== 'all' && set.logitsAll && b.viewRows) {
      // [rows, vocab] is the largest act there is (311 MB at 512 rows of a 152K vocabulary): not kept for nothing.
      b.release(set.logitsAll);
      set.logitsAll = undefined;
    }
    if (mode === 'none') {
      await b.flush();
      return null;
    }
    if (mode === 'all') {
      if (set.logitsAll && set.logitsAll.rows !== n && !(b.viewRows && set.logitsAll.rows > n)) {
        b.release(set.logitsAll);
        set.logitsAll = undefined;
      }
      set.logitsAll ??= b.createAct(n, c.vocabSize);
      for (const p of passes) {
        b.rmsNorm(p.x, this.weights.outNorm, c.rmsEps, p.xb);
        b.matmul(p.xb, this.weights.output, this.rowsOf(set.logitsAll, p.row0, p.rows));
      }
      return this.rowsOf(set.logitsAll, 0, n);
    }
    const x = this.rowsOf(set.x, 0, n);
    let last = x;
    if (n > 1) {
      await this.copyRow(x, n - 1, set.last);
      last = set.last;
    }
    b.rmsNorm(last, this.weights.outNorm, c.rmsEps, set.lastNorm);
    b.matmul(set.lastNorm, this.weights.output, set.logitsLast);
    return set.logitsLast;
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
    for (const s of this.scratch.splice(0)) this.releaseSet(s);
  }

  /** Each context cache's own lse: one attention pass per cache, only when asked, so normal decoding pays nothing. */
  private async observeContextLse(
    layer: number,
    s: Pass,
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

  /**
   * A free scratch set for `rows` rows, most recently used last. With viewRows: the smallest free one that holds
   * them, else a new one of `rows` rows that replaces every smaller free one. Without: the set of exactly `rows`.
   */
  private scratchFor(rows: number): Scratch {
    const views = this.backend.viewRows !== undefined;
    let found: Scratch | undefined;
    for (const s of this.scratch) {
      if (s.busy || (views ? s.rows < rows : s.rows !== rows)) continue;
      if (!found || s.rows < found.rows) found = s;
    }
    const s = found ?? this.allocate(rows);
    const at = this.scratch.indexOf(s);
    if (at >= 0) this.scratch.splice(at, 1);
    this.scratch.push(s);
    if (!found) this.trimScratch(s);
    return s;
  }

  /** Drops the free sets `kept` makes needless: with viewRows every smaller one; without, the oldest beyond MAX_SCRATCH_SETS but decode's. */
  private trimScratch(kept: Scratch): void {
    const views = this.backend.viewRows !== undefined;
    for (let i = 0; i < this.scratch.length && (views || this.scratch.length > MAX_SCRATCH_SETS);) {
      const s = this.scratch[i]!;
      const drop = s !== kept && !s.busy && (views ? s.rows <= kept.rows : s.rows !== 1);
      if (!drop) {
        i++;
        continue;
      }
      this.releaseSet(s);
      this.scratch.splice(i, 1);
    }
  }

  /**
   * The passes a forward of `rows` rows makes over each layer: chunks of set.pass's rows, or one of every row where
   * remotes or observers take a layer's rows at once (in set.pass when it holds them, else in set.whole).
   */
  private passesFor(set: Scratch, rows: number, options: ForwardOptions): Pass[] {
    const nRemotes = options.remotes?.length ?? 0;
    const onePass = nRemotes > 0 || options.observeQuery !== undefined || options.observeContextLse !== undefined;
    let acts = set.pass;
    if (onePass && rows > acts.rows) {
      if (set.whole && set.whole.rows < rows) {
        this.releaseActs(set.whole);
        set.whole = undefined;
      }
      acts = set.whole ??= this.allocateActs(rows);
    }
    const qWidth = this.config.nHeads * this.config.headDim;
    while (acts.remoteOut.length < nRemotes) {
      acts.remoteOut.push(this.backend.createAct(acts.rows, qWidth));
      acts.remoteLse.push(this.backend.createAct(acts.rows, this.config.nHeads));
    }
    const step = onePass ? rows : acts.rows;
    const passes: Pass[] = [];
    for (let row0 = 0; row0 < rows; row0 += step) {
      const m = Math.min(step, rows - row0);
      const v = (a: Act) => this.rowsOf(a, 0, m);
      const ffnRows = Math.min(acts.ffnRows, m);
      passes.push({
        rows: m, row0, x: this.rowsOf(set.x, row0, m),
        xb: v(acts.xb), q: v(acts.q), k: v(acts.k), v: v(acts.v), att: v(acts.att), lse: v(acts.lse), merged: v(acts.merged),
        remoteOut: acts.remoteOut.slice(0, nRemotes).map(v), remoteLse: acts.remoteLse.slice(0, nRemotes).map(v), contextLse: v(acts.contextLse), proj: v(acts.proj),
        ffnRows, gate: this.rowsOf(acts.gate, 0, ffnRows), up: this.rowsOf(acts.up, 0, ffnRows), hb: this.rowsOf(acts.hb, 0, ffnRows),
      });
    }
    return passes;
  }

  /** Rows [start, start + rows) of `a`: `a` itself when that is all of it, else a view (only backends with viewRows get here). */
  private rowsOf(a: Act, start: number, rows: number): Act {
    if (start === 0 && rows === a.rows) return a;
    return this.backend.viewRows!(a, start, rows);
  }

  private allocate(rows: number): Scratch {
    const c = this.config;
    const b = this.backend;
    return {
      rows,
      busy: false,
      x: b.createAct(rows, c.dim),
      pass: this.allocateActs(Math.min(this.chunkRows, rows)),
      last: b.createAct(1, c.dim),
      lastNorm: b.createAct(1, c.dim),
      logitsLast: b.createAct(1, c.vocabSize),
    };
  }

  private allocateActs(rows: number): RowActs {
    const c = this.config;
    const b = this.backend;
    const qWidth = c.nHeads * c.headDim;
    const ffnRows = Math.min(this.chunkRows, rows);
    return {
      rows,
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
      ffnRows,
      gate: b.createAct(ffnRows, c.ffnDim),
      up: b.createAct(ffnRows, c.ffnDim),
      hb: b.createAct(ffnRows, c.ffnDim),
    };
  }

  private releaseActs(a: RowActs): void {
    for (const t of [a.xb, a.q, a.k, a.v, a.att, a.lse, a.merged, a.contextLse, a.proj, a.gate, a.up, a.hb, ...a.remoteOut, ...a.remoteLse]) this.backend.release(t);
  }

  private releaseSet(s: Scratch): void {
    this.releaseActs(s.pass);
    if (s.whole) this.releaseActs(s.whole);
    for (const a of [s.x, s.last, s.lastNorm, s.logitsLast, s.logitsAll]) if (a) this.backend.release(a);
  }
}
