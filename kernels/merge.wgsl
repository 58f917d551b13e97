// Folds one partial attention (out_b, lse_b) into an accumulator (out_a, lse_a), exactly:
//   lse = ln(exp(lse_a) + exp(lse_b)), out = exp(lse_a - lse) out_a + exp(lse_b - lse) out_b.
// An lse below -1e30 (i.e. -inf) means "saw nothing" and gets weight 0; both empty leaves out = 0, lse = -inf.
// Bindings: 0 params, 1 out_a [rows, out_cols] rw, 2 lse_a [rows, lse_cols] rw, 3 out_b r, 4 lse_b r.
// One workgroup of 64 per (row, head).
// struct Params (p): generated from PARAMS.merge (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse_a: array<f32>;
@group(0) @binding(3) var<storage, read> out_b: array<f32>;
@group(0) @binding(4) var<storage, read> lse_b: array<f32>;

// -inf is not a WGSL constant; a private variable keeps the bitcast at run time.
var<private> ninf_bits: u32 = 0xff800000u;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.rows * p.n_heads) { return; }
  let r = flat / p.n_heads;
  let h = flat % p.n_heads;
  let la = lse_a[r * p.lse_cols + h];
  let lb = lse_b[r * p.b_lse_cols + h];
  storageBarrier();
  let ea = la > -1.0e30;
  let eb = lb > -1.0e30;
  var mx = 0.0;
  if (ea && eb) { mx = max(la, lb); } else if (ea) { mx = la; } else { mx = lb; }
  let wa = select(0.0, exp(la - mx), ea);
  let wb = select(0.0, exp(lb - mx), eb);
  let sum = wa + wb;
  let total = mx + log(sum);
  let oa = r * p.out_cols + h * p.head_dim;
  let obb = r * p.b_out_cols + h * p.head_dim;
  for (var d = t; d < p.head_dim; d += 64u) {
    var o = 0.0;
    if (sum > 0.0) { o = (wa * out_a[oa + d] + wb * out_b[obb + d]) / sum; }
    out_a[oa + d] = o;
  }
  if (t == 0u) { lse_a[r * p.lse_cols + h] = select(bitcast<f32>(ninf_bits), total, sum > 0.0); }
}
