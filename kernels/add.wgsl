// a += b over `len` f32 values, one thread per value. Bindings: 0 params, 1 a (read-write), 2 b.
// struct Params (p): generated from PARAMS.add (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.len) { return; }
  a[i] = a[i] + b[i];
}
