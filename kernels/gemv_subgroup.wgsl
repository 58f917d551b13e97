// Decode matmul for n <= 8 rows of x on adapters with the `subgroups` feature (bindings, Params, bias_at, xv4,
// gemv_partials: matmul_common.wgsl). As gemv.wgsl's main (a workgroup of 256 computes 4 weight rows, 64 threads per
// row), but each row's 64 partial sums are reduced by subgroupAdd, then the 64 / subgroup_size subgroup sums
// of a row are added from workgroup memory: one barrier instead of gemv.wgsl's seven.
// Assumes subgroups are runs of consecutive local_invocation_index (true of every 1D-workgroup driver we know)
// and a power-of-two subgroup_size <= 64, which the host checks (adapter.info.subgroupMaxSize) before use.
// Workgroup grid: 2D-flattened groups of 4 weight rows.
var<workgroup> part: array<array<f32, 64>, MAXN>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_lane: u32) {
  let lane = t & 63u;
  let j = (wid.x + wid.y * nwg.x) * 4u + (t >> 6u);
  let acc = gemv_partials(j, lane);
  // Every invocation reaches the subgroupAdd (uniform control flow): rows past part_rows add zeros.
  for (var r = 0u; r < p.n; r++) {
    let s = subgroupAdd(acc[r]);
    if (sg_lane == 0u) { part[r][t / sg_size] = s; }
  }
  workgroupBarrier();
  if (lane == 0u && j < p.part_rows) {
    let per_row = 64u / sg_size;
    let first = (t >> 6u) * per_row;
    let col = p.row_start + j;
    let b = bias_at(col);
    for (var r = 0u; r < p.n; r++) {
      var sum = 0.0;
      for (var i = 0u; i < per_row; i++) { sum += part[r][first + i]; }
      out_[r * p.out_cols + col] = sum + b;
    }
  }
}
