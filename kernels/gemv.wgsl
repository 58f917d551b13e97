// Decode matmul for few rows of x (bindings, Params, bias_at, xv4, MAXN, gemv_partials: matmul_common.wgsl).
// main: n <= 8, per_thread: any n. Each dequantized group of 4 weights is reused for all n rows of x.
// Two entry points (the host picks one per adapter):
//   main: a workgroup of 256 computes 4 weight rows, 64 threads per row striding over groups of 4
//         values, then a tree reduction in workgroup memory (coalesced reads; for real GPUs without
//         subgroups; gemv_subgroup.wgsl is the same with a subgroup reduction);
//   per_thread: one thread per weight row, no workgroup memory or barriers (for CPU emulators like
//         SwiftShader, where a barrier costs far more than the lost coalescing; used there for prefill too).
// Workgroup grid: main, 2D-flattened groups of 4 weight rows; per_thread, of 64 weight rows.
var<workgroup> red: array<array<f32, 256>, MAXN>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = t & 63u;
  let j = (wid.x + wid.y * nwg.x) * 4u + (t >> 6u);
  let acc = gemv_partials(j, lane);
  for (var r = 0u; r < p.n; r++) { red[r][t] = acc[r]; }
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < p.n; r++) { red[r][t] += red[r][t + s]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && j < p.part_rows) {
    let col = p.row_start + j;
    let b = bias_at(col);
    for (var r = 0u; r < p.n; r++) { out_[r * p.out_cols + col] = red[r][t] + b; }
  }
}

@compute @workgroup_size(64)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.part_rows) { return; }
  let rb = j * p.row_bytes;
  let col = p.row_start + j;
  let b = bias_at(col);
  // Any n: blocks of MAXN rows of x, the weight row re-read (from cache) per block.
  for (var r0 = 0u; r0 < p.n; r0 += MAXN) {
    let nb = min(MAXN, p.n - r0);
    var acc: array<f32, MAXN>;
    for (var r = 0u; r < MAXN; r++) { acc[r] = 0.0; } // explicit: SwiftShader keeps a loop-body var's old value
    for (var c = 0u; c < p.k; c += 4u) {
      let wv = dq4_WTYPE(rb, c, p.k);
      for (var r = 0u; r < nb; r++) { acc[r] += dot4_ft(wv, xv4(r0 + r, c)); }
    }
    for (var r = 0u; r < nb; r++) { out_[(r0 + r) * p.out_cols + col] = acc[r] + b; }
  }
}
