// Split-KV attention, pass 1: partial softmax attention of one query row and head over one chunk of
// one KV source. Written per (row r, head h, split s) into `part` as [m, l, acc[head_dim]]:
//   m = max scaled score in the chunk, l = sum exp(score - m), acc = sum exp(score - m) * v.
// attention_reduce.wgsl then merges every split of every source (exact: flash-decoding's rule).
// Bindings: 0 params, 1 q [n, q_cols] f32, 2 k [capacity, kv_width] f32, 3 v (same shape),
//           4 part [n, n_heads, total_splits, head_dim + 2] f32.
// GQA: head h reads KV head h * n_kv_heads / n_heads. Causal (causal = 1): row r sees entries
// j <= causal_offset + r. Only rows [row_start, row_start + row_count) see the source (the others
// write an empty split, l = 0): several independent sequences batched block-diagonally in one pass.
// A dispatch covers the n query rows from row_base (a batch's sources share split slots, each
// dispatched over its own rows only); q and part are indexed by the absolute row.
// One workgroup of 64 per (r, h, chunk), workgroups numbered chunk-fastest; entries are scored 64 at
// a time (one per thread) with an online softmax. head_dim <= 256.
// Entry per_thread: one thread per (r, h, chunk), rows fastest, no workgroup memory or barriers: for
// CPU emulators (neighbouring threads read the same K/V, so the loads are shared through the cache).
// Entry tiled: for many query rows on GPUs (phase 1 encodes whole blocks). A workgroup of 64 threads
// takes 64 consecutive query rows of one (h, chunk), one row per thread; the chunk's K and V come
// through workgroup memory in tiles of bc = min(64, 2048 / head_dim) entries, loaded once for all 64
// rows, and each thread scores a tile into registers, rescales its accumulator once per tile and
// adds the tile's V (FlashAttention's loop). No score matrix is ever written. head_dim <= 256.
// struct Params (p): generated from PARAMS.attention (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

const NEG = -3.0e38;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.n * p.n_heads * p.n_chunks) { return; }
  let c = flat % p.n_chunks;
  let rh = flat / p.n_chunks;
  let h = rh % p.n_heads;
  let r = p.row_base + rh / p.n_heads;
  let kvh = h * p.n_kv_heads / p.n_heads;
  let start = c * p.chunk;
  var end = min(start + p.chunk, p.length);
  if (p.causal == 1u) {
    end = u32(clamp(p.causal_offset + i32(r) + 1, i32(start), i32(end)));
  }
  if (r < p.row_start || r >= p.row_start + p.row_count) { end = start; }
  for (var d = t; d < p.head_dim; d += 64u) { qs[d] = q[r * p.q_cols + h * p.head_dim + d] * p.scale; }
  workgroupBarrier();
  let koff = kvh * p.head_dim;
  var m = NEG;
  var l = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var t0 = start; t0 < end; t0 += 64u) {
    let j = t0 + t;
    var s = NEG;
    if (j < end) {
      let kb = j * p.kv_width + koff;
      var dv = 0.0;
      for (var d = 0u; d < p.head_dim; d++) { dv += qs[d] * k[kb + d]; }
      s = dv;
    }
    sc[t] = s;
    workgroupBarrier();
    // Every thread scans the tile's scores itself: two barriers per tile instead of a tree reduction.
    let cnt = min(64u, end - t0);
    var tmax = NEG;
    for (var e = 0u; e < cnt; e++) { tmax = max(tmax, sc[e]); }
    let m_new = max(m, tmax);
    let alpha = exp(m - m_new);
    var psum = 0.0;
    for (var i = 0u; i < 4u; i++) { acc[i] *= alpha; }
    for (var e = 0u; e < cnt; e++) {
      let pe = exp(sc[e] - m_new);
      psum += pe;
      let vb = (t0 + e) * p.kv_width + koff;
      for (var i = 0u; i < 4u; i++) {
        let d = t + i * 64u;
        if (d < p.head_dim) { acc[i] += pe * v[vb + d]; }
      }
    }
    l = l * alpha + psum;
    m = m_new;
    workgroupBarrier();
  }
  let base = ((r * p.n_heads + h) * p.total_splits + p.split_base + c) * (p.head_dim + 2u);
  if (t == 0u) { part[base] = m; part[base + 1u] = l; }
  for (var i = 0u; i < 4u; i++) {
    let d = t + i * 64u;
    if (d < p.head_dim) { part[base + 2u + d] = acc[i]; }
  }
}

@compute @workgroup_size(64)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  if (flat >= p.n * p.n_heads * p.n_chunks) { return; }
  // Rows fastest: neighbouring threads are query rows of one head reading the same K/V entries.
  let r = p.row_base + flat % p.n;
  let hc = flat / p.n;
  let h = hc % p.n_heads;
  let c = hc / p.n_heads;
  let kvh = h * p.n_kv_heads / p.n_heads;
  let start = c * p.chunk;
  var end = min(start + p.chunk, p.length);
  if (p.causal == 1u) {
    end = u32(clamp(p.causal_offset + i32(r) + 1, i32(start), i32(end)));
  }
  if (r < p.row_start || r >= p.row_start + p.row_count) { end = start; }
  let qb = r * p.q_cols + h * p.head_dim;
  let koff = kvh * p.head_dim;
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, 256>;
  for (var j = start; j < end; j++) {
    let kb = j * p.kv_width + koff;
    var s = 0.0;
    for (var d = 0u; d < p.head_dim; d++) { s += q[qb + d] * k[kb + d]; }
    s *= p.scale;
    let m_new = max(m, s);
    let alpha = exp(m - m_new);
    let pe = exp(s - m_new);
    l = l * alpha + pe;
    for (var d = 0u; d < p.head_dim; d++) { acc[d] = acc[d] * alpha + pe * v[kb + d]; }
    m = m_new;
  }
  let base = ((r * p.n_heads + h) * p.total_splits + p.split_base + c) * (p.head_dim + 2u);
  part[base] = m;
  part[base + 1u] = l;
  for (var d = 0u; d < p.head_dim; d++) { part[base + 2u + d] = acc[d]; }
}

const KV_TILE = 2048u;  // f32 per K (and per V) tile: 8 KiB each, 16 KiB together (WebGPU's minimum limit)
var<workgroup> kt: array<f32, KV_TILE>;
var<workgroup> vt: array<f32, KV_TILE>;

@compute @workgroup_size(64)
fn tiled(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row_tiles = (p.n + 63u) / 64u;
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= row_tiles * p.n_heads * p.n_chunks) { return; }
  let c = flat % p.n_chunks;
  let rh = flat / p.n_chunks;
  let h = rh % p.n_heads;
  let row0 = p.row_base + (rh / p.n_heads) * 64u;
  let kvh = h * p.n_kv_heads / p.n_heads;
  let hd = p.head_dim;
  let koff = kvh * hd;
  let start = c * p.chunk;
  let chunk_end = min(start + p.chunk, p.length);
  // The workgroup's entry range ends where its last row that sees this source stops seeing (uniform).
  let first_valid = max(row0, p.row_start);
  let last_valid = min(min(row0 + 63u, p.row_base + p.n - 1u), p.row_start + p.row_count - 1u);
  var wg_end = chunk_end;
  if (p.causal == 1u) { wg_end = u32(clamp(p.causal_offset + i32(last_valid) + 1, i32(start), i32(chunk_end))); }
  if (p.row_count == 0u || first_valid > last_valid) { wg_end = start; }

  let r = row0 + t;
  let mine = r < p.row_base + p.n;
  var end = chunk_end;
  if (p.causal == 1u) { end = u32(clamp(p.causal_offset + i32(r) + 1, i32(start), i32(chunk_end))); }
  if (!mine || r < p.row_start || r >= p.row_start + p.row_count) { end = start; }
  var qv: array<f32, 256>;
  var acc: array<f32, 256>;
  if (mine) {
    let qb = r * p.q_cols + h * hd;
    for (var d = 0u; d < hd; d++) { qv[d] = q[qb + d] * p.scale; acc[d] = 0.0; }
  }
  var m = NEG;
  var l = 0.0;
  let bc = min(64u, KV_TILE / hd);
  var s: array<f32, 64>;
  for (var j0 = start; j0 < wg_end; j0 += bc) {
    let cnt = min(bc, wg_end - j0);
    for (var i = t; i < cnt * hd; i += 64u) {
      let g = (j0 + i / hd) * p.kv_width + koff + i % hd;
      kt[i] = k[g];
      vt[i] = v[g];
    }
    workgroupBarrier();
    // Entries this row sees in the tile: [j0, min(j0 + cnt, end)).
    let own = u32(clamp(i32(end) - i32(j0), 0, i32(cnt)));
    var tmax = NEG;
    for (var e = 0u; e < own; e++) {
      var dv = 0.0;
      for (var d = 0u; d < hd; d++) { dv += qv[d] * kt[e * hd + d]; }
      s[e] = dv;
      tmax = max(tmax, dv);
    }
    if (own > 0u) {
      let m_new = max(m, tmax);
      let alpha = exp(m - m_new);
      for (var d = 0u; d < hd; d++) { acc[d] *= alpha; }
      var psum = 0.0;
      for (var e = 0u; e < own; e++) {
        let pe = exp(s[e] - m_new);
        psum += pe;
        for (var d = 0u; d < hd; d++) { acc[d] += pe * vt[e * hd + d]; }
      }
      l = l * alpha + psum;
      m = m_new;
    }
    workgroupBarrier();
  }
  if (mine) {
    let base = ((r * p.n_heads + h) * p.total_splits + p.split_base + c) * (hd + 2u);
    part[base] = m;
    part[base + 1u] = l;
    for (var d = 0u; d < hd; d++) { part[base + 2u + d] = acc[d]; }
  }
}
