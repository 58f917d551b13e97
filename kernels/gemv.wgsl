// Decode matmul: out[r, row_start + j] = dot(x[r, :], W[j, :]) (+ bias); main: n <= 8, per_thread: any n.
// Bindings: 0 params, 1 w = one row-part of W (device layout, WTYPE, rows of row_bytes bytes),
//           2 x [n, k] f32, 3 out [n, out_cols] f32, 4 bias (u32 words of an F32/F16/BF16 vector, or a dummy).
// Each dequantized group of 4 weights is reused for all n rows of x. bias_kind: 0 none, 1 F32, 2 F16, 3 BF16.
// FTYPE is replaced at pipeline creation: f32, or f16 (products in f16, sums in f32) on devices with
// shader-f16 when the backend was asked for f16.
// Two entry points (the host picks one per adapter):
//   main: a workgroup of 256 computes 4 weight rows, 64 threads per row striding over groups of 4
//         values, then a tree reduction (coalesced reads; for real GPUs);
//   per_thread: one thread per weight row, no workgroup memory or barriers (for CPU emulators like
//         SwiftShader, where a barrier costs far more than the lost coalescing; used there for prefill too).
struct Params { n: u32, k: u32, out_cols: u32, row_start: u32, part_rows: u32, row_bytes: u32, bias_kind: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<u32>;

const MAXN = 8u;
var<workgroup> red: array<array<f32, 256>, MAXN>;

fn bias_at(j: u32) -> f32 {
  let kind = p.bias_kind;
  if (kind == 1u) { return bitcast<f32>(bias[j]); }
  if (kind == 0u) { return 0.0; }
  let h = (bias[j >> 1u] >> ((j & 1u) * 16u)) & 0xffffu;
  if (kind == 2u) { return unpack2x16float(h).x; }
  return bitcast<f32>(h << 16u);
}

fn dot4_ft(a: vec4<f32>, b: vec4<f32>) -> f32 {
  return f32(dot(vec4<FTYPE>(a), vec4<FTYPE>(b)));
}

fn xv4(r: u32, c: u32) -> vec4<f32> {
  let b = r * p.k + c;
  if (c + 3u < p.k) { return vec4<f32>(x[b], x[b + 1u], x[b + 2u], x[b + 3u]); }
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) { if (c + i < p.k) { v[i] = x[b + i]; } }
  return v;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = t & 63u;
  let j = (wid.x + wid.y * nwg.x) * 4u + (t >> 6u);
  var acc: array<f32, MAXN>;
  if (j < p.part_rows) {
    let rb = j * p.row_bytes;
    for (var c = lane * 4u; c < p.k; c += 256u) {
      let wv = dq4_WTYPE(rb, c, p.k);
      for (var r = 0u; r < p.n; r++) { acc[r] += dot4_ft(wv, xv4(r, c)); }
    }
  }
  for (var r = 0u; r < p.n; r++) { red[r][t] = acc[r]; }
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < p.n; r++) { red[r][t] += red[r][t + s]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && j < p.part_rows) {
    let col = p.row_start + j;
    let b = bias_at(col);
    for (var r = 0u; r < p.n; r++) { out_[r * p.out_cols + col] = red[r][t] + b; }
  }
}

@compute @workgroup_size(64)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.part_rows) { return; }
  let rb = j * p.row_bytes;
  let col = p.row_start + j;
  let b = bias_at(col);
  // Any n: blocks of MAXN rows of x, the weight row re-read (from cache) per block.
  for (var r0 = 0u; r0 < p.n; r0 += MAXN) {
    let nb = min(MAXN, p.n - r0);
    var acc: array<f32, MAXN>;
    for (var r = 0u; r < MAXN; r++) { acc[r] = 0.0; } // explicit: SwiftShader keeps a loop-body var's old value
    for (var c = 0u; c < p.k; c += 4u) {
      let wv = dq4_WTYPE(rb, c, p.k);
      for (var r = 0u; r < nb; r++) { acc[r] += dot4_ft(wv, xv4(r0 + r, c)); }
    }
    for (var r = 0u; r < nb; r++) { out_[(r0 + r) * p.out_cols + col] = acc[r] + b; }
  }
}
