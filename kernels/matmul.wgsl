// Prefill matmul for many rows of x (bindings, Params, bias_at: matmul_common.wgsl), register-tiled.
// A workgroup of 256 computes a 64 x 64 tile of out (64 rows of x by 64 weight rows); each thread holds a
// 4 x 4 block of it in registers. k is stepped by 32: per step each thread dequantizes two groups of 4 weights
// (dq4_WTYPE: quantized blocks are decoded in the tile load, never in a separate pass) and loads two groups of 4
// x values, stored k-major (xs[kk][row / 4] is a vec4 of 4 rows) so the inner loop reads one vec4 of x and one
// of W per k and does 16 multiply-adds. Workgroup memory: 2 x 32 x 64 FTYPE = 16 KiB for f32 (WebGPU's minimum
// limit), 8 KiB for f16. FTYPE is the tiles' and products' type; sums stay f32.
// Workgroup grid: x = ceil(part_rows / 64) weight-row tiles, y = ceil(n / 64) x-row tiles.
const TILE = 64u;
const TK = 32u;
var<workgroup> xs: array<array<vec4<FTYPE>, 16>, TK>;
var<workgroup> ws: array<array<vec4<FTYPE>, 16>, TK>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let j0 = wid.x * TILE;
  let r0 = wid.y * TILE;
  let lr = t >> 3u;          // load rows lr and lr + 32 of the tile
  let lc = (t & 7u) * 4u;    // load columns [lc, lc + 4) of the k step
  let ty = t >> 4u;          // out rows r0 + 4 ty .. + 3
  let tx = t & 15u;          // out columns (weight rows) j0 + 4 tx .. + 3
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.k; k0 += TK) {
    let c = k0 + lc;
    for (var h = 0u; h < 2u; h++) {
      let row = lr + h * 32u;
      var wv = vec4<f32>(0.0);
      if (j0 + row < p.part_rows && c < p.k) { wv = dq4_WTYPE((j0 + row) * p.row_bytes, c, p.k); }
      var xv = vec4<f32>(0.0);
      if (r0 + row < p.n && c < p.k) { xv = xv4(r0 + row, c); }
      for (var i = 0u; i < 4u; i++) {
        ws[lc + i][row >> 2u][row & 3u] = FTYPE(wv[i]);
        xs[lc + i][row >> 2u][row & 3u] = FTYPE(xv[i]);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = xs[kk][ty];
      let b = ws[kk][tx];
      acc[0] += vec4<f32>(a.x * b);
      acc[1] += vec4<f32>(a.y * b);
      acc[2] += vec4<f32>(a.z * b);
      acc[3] += vec4<f32>(a.w * b);
    }
    workgroupBarrier();
  }
  let jb = j0 + tx * 4u;
  var bv = vec4<f32>(0.0);
  for (var jj = 0u; jj < 4u; jj++) { if (jb + jj < p.part_rows) { bv[jj] = bias_at(p.row_start + jb + jj); } }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + ty * 4u + i;
    if (r >= p.n) { break; }
    let o = acc[i] + bv;
    let base = r * p.out_cols + p.row_start + jb;
    for (var jj = 0u; jj < 4u; jj++) { if (jb + jj < p.part_rows) { out_[base + jj] = o[jj]; } }
  }
}
