// Prefill matmul: out[r, row_start + j] = dot(x[r, :], W[j, :]) (+ bias) for all n rows of x.
// Bindings: 0 params, 1 w = one row-part of W (device layout, WTYPE), 2 x [n, k] f32,
//           3 out [n, out_cols] f32, 4 bias (as in gemv.wgsl; bias_kind 0 none, 1 F32, 2 F16, 3 BF16).
// Tiles of 32 x-rows by 32 weight rows, k stepped by 32: each of 256 threads dequantizes one group of 4
// weights and loads 4 x values into workgroup memory, then accumulates a 2x2 block of outputs.
// Workgroup grid: x = weight-row tiles, y = x-row tiles.
struct Params { n: u32, k: u32, out_cols: u32, row_start: u32, part_rows: u32, row_bytes: u32, bias_kind: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<u32>;

// FTYPE (f32, or f16 on devices with shader-f16 when asked for) is the tiles' and products' type; sums stay f32.
var<workgroup> xt: array<array<FTYPE, 33>, 32>;
var<workgroup> wt: array<array<FTYPE, 33>, 32>;

fn bias_at(j: u32) -> f32 {
  let kind = p.bias_kind;
  if (kind == 1u) { return bitcast<f32>(bias[j]); }
  if (kind == 0u) { return 0.0; }
  let h = (bias[j >> 1u] >> ((j & 1u) * 16u)) & 0xffffu;
  if (kind == 2u) { return unpack2x16float(h).x; }
  return bitcast<f32>(h << 16u);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let j0 = wid.x * 32u;
  let r0 = wid.y * 32u;
  let lr = t >> 3u;          // load row within the tile
  let lc = (t & 7u) * 4u;    // load column group within the tile
  let ty = (t >> 4u) * 2u;   // output x-rows ty, ty+1
  let tx = (t & 15u) * 2u;   // output weight rows tx, tx+1
  var a00 = 0.0; var a01 = 0.0; var a10 = 0.0; var a11 = 0.0;
  for (var k0 = 0u; k0 < p.k; k0 += 32u) {
    let c = k0 + lc;
    var wv = vec4<f32>(0.0);
    if (j0 + lr < p.part_rows && c < p.k) { wv = dq4_WTYPE((j0 + lr) * p.row_bytes, c, p.k); }
    var xv = vec4<f32>(0.0);
    if (r0 + lr < p.n) {
      let b = (r0 + lr) * p.k + c;
      for (var i = 0u; i < 4u; i++) { if (c + i < p.k) { xv[i] = x[b + i]; } }
    }
    for (var i = 0u; i < 4u; i++) { wt[lr][lc + i] = FTYPE(wv[i]); xt[lr][lc + i] = FTYPE(xv[i]); }
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk++) {
      let x0 = xt[ty][kk]; let x1 = xt[ty + 1u][kk];
      let w0 = wt[tx][kk]; let w1 = wt[tx + 1u][kk];
      a00 += f32(x0 * w0); a01 += f32(x0 * w1); a10 += f32(x1 * w0); a11 += f32(x1 * w1);
    }
    workgroupBarrier();
  }
  let ra = r0 + ty;
  let ja = j0 + tx;
  if (ja < p.part_rows) {
    let b = bias_at(p.row_start + ja);
    if (ra < p.n) { out_[ra * p.out_cols + p.row_start + ja] = a00 + b; }
    if (ra + 1u < p.n) { out_[(ra + 1u) * p.out_cols + p.row_start + ja] = a10 + b; }
  }
  if (ja + 1u < p.part_rows) {
    let b = bias_at(p.row_start + ja + 1u);
    if (ra < p.n) { out_[ra * p.out_cols + p.row_start + ja + 1u] = a01 + b; }
    if (ra + 1u < p.n) { out_[(ra + 1u) * p.out_cols + p.row_start + ja + 1u] = a11 + b; }
  }
}
