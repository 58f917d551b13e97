// Embedding lookup: out[r, :] = dequant(table row ids[r]) for the ids that fall in this weight part.
// Bindings: 0 params (uniform), 1 w = one part of the table (device layout of kernels/dequant.wgsl),
//           2 ids (i32 table in the arena window), 3 out [n, cols] f32.
// One thread per 4 values of one row; a table split into parts is looked up with one dispatch per part.
// struct Params (p): generated from PARAMS.embed (src/engine/backend/webgpu/kernelParams.ts), prepended.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out_: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let per_row = (p.cols + 3u) / 4u;
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.n * per_row) { return; }
  let r = idx / per_row;
  let c = (idx % per_row) * 4u;
  let id = ids[r] - i32(p.row_start);
  if (id < 0 || id >= i32(p.part_rows)) { return; }
  let v = dq4_WTYPE(u32(id) * p.row_bytes, c, p.cols);
  for (var i = 0u; i < 4u; i++) {
    if (c + i < p.cols) { out_[r * p.cols + c + i] = v[i]; }
  }
}
