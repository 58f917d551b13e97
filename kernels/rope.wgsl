// RoPE in place on rows [row0, row0 + rows) of a [*, width] f32 buffer (activations or a K store).
// Each row's heads of head_dim values are rotated by angle pos * inv_freq[i] per pair:
//   ADJACENT = true: pairs (2i, 2i+1) (GGUF llama);  false: pairs (i, i + head_dim/2) (NeoX / HF).
// Bindings: 0 params, 1 data (read-write), 2 table (arena window, u32 words):
//   [0, half): inv_freq[i] as f32 bits (llama3 scaling already applied on the host, in f64),
//   [half, half + rows): i32 positions, unless const_pos_flag = 1 (K-store shift: every row by const_pos).
// One thread per pair. The angle is reduced to [-pi, pi] (Cody-Waite, two constants) before sin/cos,
// because GPU sin/cos are only accurate near zero.
struct Params { rows: u32, width: u32, head_dim: u32, row0: u32, const_pos_flag: u32, const_pos: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read> tab: array<u32>;

const INV_TWO_PI = 0.15915494309189535;
const TWO_PI_HI = 6.28125;
const TWO_PI_LO = 0.0019353071795864769;

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
  let k = round(a * INV_TWO_PI);
  let red = (a - k * TWO_PI_HI) - k * TWO_PI_LO;
  let c = cos(red);
  let s = sin(red);
  let base = (p.row0 + r) * p.width + head * p.head_dim;
  var i0 = base + i;
  var i1 = base + i + half;
  if (ADJACENT) { i0 = base + 2u * i; i1 = i0 + 1u; }
  let x0 = data[i0];
  let x1 = data[i1];
  data[i0] = x0 * c - x1 * s;
  data[i1] = x0 * s + x1 * c;
}
