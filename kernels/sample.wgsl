// Token selection on the GPU, so a decode step reads back 4 bytes instead of the logits.
//   argmax: result[r] = index of the max of row r (first index on ties). One workgroup of 256 per row.
//     Bindings: 0 params {rows, cols}, 1 logits [rows, cols], 2 result (i32 per row).
//   top_p: samples row 0 the way CpuBackend.sampleTopP does: p_i = exp((l_i - max) / T); sorted by p
//     descending, the nucleus is the shortest prefix of mass >= top_p * Z, and the draw is the first
//     token of it whose cumulative mass exceeds uniform * (nucleus mass). No sort: the cumulative mass
//     of the prefix ending at p equals F(p) = sum of p_i >= p, so both cut points are found by binary
//     search over the bit patterns of p (ordered like the values, p >= 0). One workgroup of 256.
//     Bindings: 0 params {rows, cols, temperature, top_p, uniform}, 1 logits, 2 result, 3 probs scratch [cols].
// struct Params (p): generated from PARAMS.sample (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<i32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;

var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;
var<workgroup> shared_f: f32;
var<workgroup> shared_u: u32;

@compute @workgroup_size(256)
fn argmax(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  var best = -3.4e38;
  var bi = 0xffffffffu;
  for (var c = t; c < p.cols; c += 256u) {
    let v = logits[r * p.cols + c];
    if (v > best || bi == 0xffffffffu) { best = v; bi = c; }
  }
  rv[t] = best;
  ri[t] = bi;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) {
      let ov = rv[t + s];
      let oi = ri[t + s];
      if (oi != 0xffffffffu && (ri[t] == 0xffffffffu || ov > rv[t] || (ov == rv[t] && oi < ri[t]))) { rv[t] = ov; ri[t] = oi; }
    }
    workgroupBarrier();
  }
  if (t == 0u) { result[r] = i32(ri[0]); }
}

fn reduce_sum(t: u32, v: f32) -> f32 {
  rv[t] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { rv[t] += rv[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { shared_f = rv[0]; }
  return workgroupUniformLoad(&shared_f);
}

// Mass of every p_i whose bits are >= b.
fn mass_from(t: u32, b: u32) -> f32 {
  var s = 0.0;
  for (var c = t; c < p.cols; c += 256u) {
    let v = probs[c];
    if (bitcast<u32>(v) >= b) { s += v; }
  }
  return reduce_sum(t, s);
}

@compute @workgroup_size(256)
fn top_p(@builtin(local_invocation_index) t: u32) {
  var mx = -3.4e38;
  for (var c = t; c < p.cols; c += 256u) { mx = max(mx, logits[c]); }
  rv[t] = mx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { rv[t] = max(rv[t], rv[t + s]); }
    workgroupBarrier();
  }
  mx = rv[0];
  workgroupBarrier();
  var z = 0.0;
  for (var c = t; c < p.cols; c += 256u) {
    let e = exp((logits[c] - mx) / p.temperature);
    probs[c] = e;
    z += e;
  }
  storageBarrier();
  z = reduce_sum(t, z);
  let limit = min(p.top_p, 1.0) * z;
  // Largest b with F(b) >= limit: the smallest probability inside the nucleus.
  var lo = 0u;
  var hi = 0x7f800000u;
  for (var it = 0u; it < 32u; it++) {
    let mid = lo + (hi - lo + 1u) / 2u;
    let ok = mass_from(t, mid) >= limit;
    if (lo < hi) { if (ok) { lo = mid; } else { hi = mid - 1u; } }
  }
  let nucleus = mass_from(t, lo);
  let target_mass = p.uniform_ * nucleus;
  // Largest b with F(b) > target: the probability of the drawn token.
  var lo2 = lo;
  var hi2 = 0x7f800000u;
  for (var it = 0u; it < 32u; it++) {
    let mid = lo2 + (hi2 - lo2 + 1u) / 2u;
    let ok = mass_from(t, mid) > target_mass;
    if (lo2 < hi2) { if (ok) { lo2 = mid; } else { hi2 = mid - 1u; } }
  }
  // The lowest index holding exactly that probability.
  var first = 0xffffffffu;
  for (var c = t; c < p.cols; c += 256u) {
    if (bitcast<u32>(probs[c]) == lo2) { first = min(first, c); }
  }
  ri[t] = first;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { ri[t] = min(ri[t], ri[t + s]); }
    workgroupBarrier();
  }
  if (t == 0u) { result[0] = i32(ri[0]); }
}
