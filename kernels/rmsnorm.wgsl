// RMSNorm per row: out[r, c] = x[r, c] / sqrt(mean(x[r, :]^2) + eps) * weight[c].
// Bindings: 0 params, 1 w = the weight vector (device layout, WTYPE), 2 x [rows, cols] f32, 3 out [rows, cols].
// Entry main: one workgroup of 256 per row; per_thread: one thread per row (for CPU emulators).
// x and out are distinct buffers (the host copies x aside when they alias).
// struct Params (p): generated from PARAMS.rmsnorm (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var ss = 0.0;
  for (var c = t; c < p.cols; c += 256u) { let v = x[base + c]; ss += v * v; }
  red[t] = ss;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
  for (var c4 = t * 4u; c4 < p.cols; c4 += 1024u) {
    let wv = dq4_WTYPE(0u, c4, p.cols);
    for (var i = 0u; i < 4u; i++) {
      let c = c4 + i;
      if (c < p.cols) { out_[base + c] = x[base + c] * scale * wv[i]; }
    }
  }
}

// One thread per row, no barriers (CPU emulators such as SwiftShader, where workgroups are costly).
@compute @workgroup_size(64)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var ss = 0.0;
  for (var c = 0u; c < p.cols; c++) { let v = x[base + c]; ss += v * v; }
  let scale = 1.0 / sqrt(ss / f32(p.cols) + p.eps);
  for (var c4 = 0u; c4 < p.cols; c4 += 4u) {
    let wv = dq4_WTYPE(0u, c4, p.cols);
    for (var i = 0u; i < 4u; i++) {
      let c = c4 + i;
      if (c < p.cols) { out_[base + c] = x[base + c] * scale * wv[i]; }
    }
  }
}
