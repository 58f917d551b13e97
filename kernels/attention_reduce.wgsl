// Split-KV attention, pass 2: merges the partials of attention.wgsl over all splits of all sources:
//   M = max m_s, L = sum l_s exp(m_s - M), out = sum acc_s exp(m_s - M) / L, lse = M + ln L.
// A row/head that saw no entry gets out = 0 and lse = -inf.
// Bindings: 0 params, 1 part [n, n_heads, total_splits, head_dim + 2], 2 out [n, out_cols],
//           3 lse [n, lse_cols] (a dummy when write_lse = 0). main: one workgroup of 64 per (row, head);
//           per_thread: one thread per (row, head) (CPU emulators).
// struct Params (p): generated from PARAMS.attentionReduce (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;

const NEG = -3.0e38;

// -inf is not a WGSL constant; a private variable keeps the bitcast at run time.
var<private> ninf_bits: u32 = 0xff800000u;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.n * p.n_heads) { return; }
  let r = flat / p.n_heads;
  let h = flat % p.n_heads;
  let stride = p.head_dim + 2u;
  let base = flat * p.total_splits * stride;
  var mx = NEG;
  for (var s = 0u; s < p.total_splits; s++) {
    if (part[base + s * stride + 1u] > 0.0) { mx = max(mx, part[base + s * stride]); }
  }
  var sum = 0.0;
  for (var s = 0u; s < p.total_splits; s++) {
    let l = part[base + s * stride + 1u];
    if (l > 0.0) { sum += l * exp(part[base + s * stride] - mx); }
  }
  let ob = r * p.out_cols + h * p.head_dim;
  for (var d = t; d < p.head_dim; d += 64u) {
    var o = 0.0;
    for (var s = 0u; s < p.total_splits; s++) {
      let l = part[base + s * stride + 1u];
      if (l > 0.0) { o += part[base + s * stride + 2u + d] * exp(part[base + s * stride] - mx); }
    }
    out_[ob + d] = select(0.0, o / sum, sum > 0.0);
  }
  if (t == 0u && p.write_lse == 1u) {
    lse[r * p.lse_cols + h] = select(bitcast<f32>(ninf_bits), mx + log(sum), sum > 0.0);
  }
}

@compute @workgroup_size(64)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  if (flat >= p.n * p.n_heads) { return; }
  let r = flat / p.n_heads;
  let h = flat % p.n_heads;
  let stride = p.head_dim + 2u;
  let base = flat * p.total_splits * stride;
  var mx = NEG;
  for (var s = 0u; s < p.total_splits; s++) {
    if (part[base + s * stride + 1u] > 0.0) { mx = max(mx, part[base + s * stride]); }
  }
  var sum = 0.0;
  let ob = r * p.out_cols + h * p.head_dim;
  for (var d = 0u; d < p.head_dim; d++) { out_[ob + d] = 0.0; }
  for (var s = 0u; s < p.total_splits; s++) {
    let l = part[base + s * stride + 1u];
    if (l > 0.0) {
      let wgt = exp(part[base + s * stride] - mx);
      sum += l * wgt;
      for (var d = 0u; d < p.head_dim; d++) { out_[ob + d] += part[base + s * stride + 2u + d] * wgt; }
    }
  }
  for (var d = 0u; d < p.head_dim; d++) { out_[ob + d] = select(0.0, out_[ob + d] / sum, sum > 0.0); }
  if (p.write_lse == 1u) {
    lse[r * p.lse_cols + h] = select(bitcast<f32>(ninf_bits), mx + log(sum), sum > 0.0);
  }
}
