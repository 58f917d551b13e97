// Shared by the weight-times-activation kernels (gemv.wgsl, gemv_subgroup.wgsl, matmul.wgsl), prepended after
// the dequant library: out[r, row_start + j] = dot(x[r, :], W[j, :]) (+ bias[row_start + j]).
// Bindings: 0 params, 1 w = one row-part of W (device layout, WTYPE, rows of row_bytes bytes),
//           2 x [n, k] f32, 3 out [n, out_cols] f32, 4 bias (u32 words of an F32/F16/BF16 vector, or a dummy).
// bias_kind: 0 none, 1 F32, 2 F16, 3 BF16. FTYPE is replaced at pipeline creation: f32, or f16 (products in
// f16, sums in f32) on devices with shader-f16 when the backend was asked for f16.
// struct Params (p): generated from PARAMS.matmul (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<u32>;

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

// Values [c, c+4) of x's row r; past k they read as 0.
fn xv4(r: u32, c: u32) -> vec4<f32> {
  let b = r * p.k + c;
  if (c + 3u < p.k) { return vec4<f32>(x[b], x[b + 1u], x[b + 2u], x[b + 3u]); }
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) { if (c + i < p.k) { v[i] = x[b + i]; } }
  return v;
}

// GEMV kernels (gemv.wgsl, gemv_subgroup.wgsl): at most MAXN rows of x per dispatch for the cooperative ones.
const MAXN = 8u;

// One thread's partial sums of weight row j for the n <= MAXN rows of x: groups of 4 values from lane * 4, striding
// by 256 (64 threads per row); zeros past part_rows.
fn gemv_partials(j: u32, lane: u32) -> array<f32, MAXN> {
  var acc: array<f32, MAXN>;
  if (j < p.part_rows) {
    let rb = j * p.row_bytes;
    for (var c = lane * 4u; c < p.k; c += 256u) {
      let wv = dq4_WTYPE(rb, c, p.k);
      for (var r = 0u; r < p.n; r++) { acc[r] += dot4_ft(wv, xv4(r, c)); }
    }
  }
  return acc;
}
