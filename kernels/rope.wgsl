// RoPE in place on rows [row0, row0 + rows) of a [*, width] f32 buffer (activations or a K store).
// Each row's heads of head_dim values are rotated by angle pos * inv_freq[i] per pair:
//   ADJACENT = true: pairs (2i, 2i+1) (GGUF llama);  false: pairs (i, i + head_dim/2) (NeoX / HF).
// Bindings: 0 params, 1 data (read-write), 2 table (arena window, u32 words):
//   [0, half): inv_freq[i] as f32 bits (llama3 scaling already applied on the host, in f64),
//   [half, half + rows): i32 positions, unless const_pos_flag = 1 (K-store shift: every row by const_pos).
// One thread per pair. sin/cos are computed here (quadrant reduction with a two-constant Cody-Waite
// pi/2, exact for |angle| < ~1e5, then Taylor polynomials on [-pi/4, pi/4], error < 3e-8): the
// built-in sin/cos may be as coarse as 2^-11 (Vulkan's minimum; SwiftShader's is ~1e-4).
// struct Params (p): generated from PARAMS.rope (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read> tab: array<u32>;

const TWO_OVER_PI = 0.6366197723675814;
const PIO2_HI = 1.5703125;
const PIO2_LO = 0.0004838267948966;

// (sin a, cos a)
fn sincos(a: f32) -> vec2<f32> {
  let k = round(a * TWO_OVER_PI);
  let r = (a - k * PIO2_HI) - k * PIO2_LO;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0))));
  let q = i32(k) & 3;
  if (q == 0) { return vec2<f32>(s, c); }
  if (q == 1) { return vec2<f32>(c, -s); }
  if (q == 2) { return vec2<f32>(-s, -c); }
  return vec2<f32>(-c, s);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = p.head_dim / 2u;
  let pairs = p.width / 2u;
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.rows * pairs) { return; }
  let r = idx / pairs;
  let q = idx % pairs;
  let head = q / half;
  let i = q % half;
  var pos = p.const_pos;
  if (p.const_pos_flag == 0u) { pos = bitcast<i32>(tab[half + r]); }
  let a = f32(pos) * bitcast<f32>(tab[i]);
  let sc = sincos(a);
  let s = sc.x;
  let c = sc.y;
  let base = (p.row0 + r) * p.width + head * p.head_dim;
  var i0 = base + i;
  var i1 = base + i + half;
  if (ADJACENT) { i0 = base + 2u * i; i1 = i0 + 1u; }
  let x0 = data[i0];
  let x1 = data[i1];
  data[i0] = x0 * c - x1 * s;
  data[i1] = x0 * s + x1 * c;
}
