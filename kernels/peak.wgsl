// Device peak probes for `star-ask bench kernels` (the model never runs them): the figures every kernel's
// achieved speed is set against.
// Entry probe_fma: each thread runs `iters` rounds of 8 independent vec4 multiply-adds on registers and stores one
//   value: the time is the device's f32 FMA throughput (flops = threads * iters * 8 * 4 * 2).
// Entry probe_read: the grid's threads stride over src in vec4s, summing, and store one value each: the time is the
//   device's read bandwidth (bytes = arrayLength(src) * 16).
// Bindings: 0 params, 1 src array<vec4<f32>> (read), 2 out [threads] f32. Grid: 1D, 2D-flattened groups of 256.
// struct Params (p): generated from PARAMS.peak (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out_: array<f32>;

@compute @workgroup_size(256)
fn probe_fma(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  // Seeds from the thread index and multipliers from the uniform, so nothing folds at compile time.
  let s = f32(i & 1023u) * 1e-3;
  var v0 = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
  var v1 = v0 + 1.0; var v2 = v0 + 2.0; var v3 = v0 + 3.0;
  var v4 = v0 + 4.0; var v5 = v0 + 5.0; var v6 = v0 + 6.0; var v7 = v0 + 7.0;
  let a = vec4<f32>(p.a);
  let b = vec4<f32>(p.b);
  for (var k = 0u; k < p.iters; k++) {
    v0 = fma(v0, a, b); v1 = fma(v1, a, b); v2 = fma(v2, a, b); v3 = fma(v3, a, b);
    v4 = fma(v4, a, b); v5 = fma(v5, a, b); v6 = fma(v6, a, b); v7 = fma(v7, a, b);
  }
  let t = (v0 + v1) + (v2 + v3) + (v4 + v5) + (v6 + v7);
  out_[i] = t.x + t.y + t.z + t.w;
}

@compute @workgroup_size(256)
fn probe_read(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let threads = nwg.x * nwg.y * 256u;
  let i = gid.x + gid.y * nwg.x * 256u;
  var acc = vec4<f32>(0.0);
  for (var j = i; j < arrayLength(&src); j += threads) { acc += src[j]; }
  out_[i] = acc.x + acc.y + acc.z + acc.w;
}
