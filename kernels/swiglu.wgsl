// SwiGLU on f32 activations of `len` values, one thread per value: out = silu(gate) * up.
// Bindings: 0 params, 1 gate, 2 up, 3 out (distinct: the host copies an input aside when it aliases out).
// struct Params (p): generated from PARAMS.swiglu (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.len) { return; }
  let g = gate[i];
  out_[i] = g / (1.0 + exp(-g)) * up[i];
}
