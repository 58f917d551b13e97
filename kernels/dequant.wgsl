// Dequantization library, prepended to every kernel that reads weights (embed, rmsnorm, gemv, matmul).
// It reads the module-scope binding `w: array<u32>` declared by the including kernel.
//
// dq4_T(row_byte, col, cols) -> vec4<f32>: the 4 values [col, col+4) of the weight row that starts at
// byte `row_byte` of `w` (col % 4 == 0; values at or past `cols` read as 0 for the float types).
// The including kernel calls dq4_WTYPE, and WTYPE is replaced with the tensor type at pipeline creation.
//
// Storage layout (src/engine/backend/webgpu/weights.ts writes it):
//   F32, F16, BF16: the stored little-endian values, rows back to back (F16/BF16 rows may start 2-aligned).
//   Q8_0: ggml block_q8_0 padded to 36 bytes: [f16 d, 2 pad bytes, 32 x int8]              (9 words)
//   Q4_0: ggml block_q4_0 padded to 20 bytes: [f16 d, 2 pad bytes, 16 bytes of nibbles]     (5 words)
//   Q4_K: ggml block_q4_K as is (144 bytes): [f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles]
//   Q6_K: ggml block_q6_K padded to 212 bytes: [128 ql, 64 qh, 16 x int8 scales, f16 d, 2 pad]
// The padding keeps every block word-aligned so no value straddles a u32.

fn byte_at(off: u32) -> u32 {
  return (w[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

fn half_at(off: u32) -> u32 {
  return (w[off >> 2u] >> ((off & 2u) * 8u)) & 0xffffu;
}

fn f16_bits(h: u32) -> f32 {
  return unpack2x16float(h).x;
}

fn bytes4(word: u32) -> vec4<u32> {
  return vec4<u32>(word & 0xffu, (word >> 8u) & 0xffu, (word >> 16u) & 0xffu, word >> 24u);
}

fn sbytes4(word: u32) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(bitcast<i32>(word << 24u) >> 24u, bitcast<i32>(word << 16u) >> 24u,
                             bitcast<i32>(word << 8u) >> 24u, bitcast<i32>(word) >> 24u));
}

fn dq4_F32(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + col;
  var r = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    if (col + i < cols) { r[i] = bitcast<f32>(w[base + i]); }
  }
  return r;
}

fn dq4_F16(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    if (col + i < cols) { r[i] = f16_bits(half_at(row_byte + (col + i) * 2u)); }
  }
  return r;
}

fn dq4_BF16(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    if (col + i < cols) { r[i] = bitcast<f32>(half_at(row_byte + (col + i) * 2u) << 16u); }
  }
  return r;
}

fn dq4_Q8_0(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + (col >> 5u) * 9u;
  let d = f16_bits(w[base] & 0xffffu);
  return d * sbytes4(w[base + 1u + ((col & 31u) >> 2u)]);
}

fn dq4_Q4_0(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + (col >> 5u) * 5u;
  let d = f16_bits(w[base] & 0xffffu);
  let j = col & 31u;
  let word = w[base + 1u + ((j & 15u) >> 2u)];
  let shift = select(0u, 4u, j >= 16u);
  let q = (bytes4(word) >> vec4<u32>(shift)) & vec4<u32>(15u);
  return d * (vec4<f32>(q) - 8.0);
}

// ggml get_scale_min_k4: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at `off`.
fn scale_min_k4(off: u32, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(byte_at(off + j) & 63u), f32(byte_at(off + j + 4u) & 63u));
  }
  let sc = (byte_at(off + j + 4u) & 15u) | ((byte_at(off + j - 4u) >> 6u) << 4u);
  let mn = (byte_at(off + j + 4u) >> 4u) | ((byte_at(off + j) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(mn));
}

fn dq4_Q4_K(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let block = row_byte + (col >> 8u) * 144u;
  let dm = unpack2x16float(w[block >> 2u]);
  let j = col & 255u;
  let chunk = j >> 6u;          // 64-value chunk: 32 bytes of nibbles, low then high
  let hi = (j & 63u) >= 32u;
  let sm = scale_min_k4(block + 4u, chunk * 2u + select(0u, 1u, hi));
  let word = w[(block + 16u + chunk * 32u + (j & 31u)) >> 2u];
  let q = (bytes4(word) >> vec4<u32>(select(0u, 4u, hi))) & vec4<u32>(15u);
  return dm.x * sm.x * vec4<f32>(q) - vec4<f32>(dm.y * sm.y);
}

fn dq4_Q6_K(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let block = row_byte + (col >> 8u) * 212u;
  let d = f16_bits(half_at(block + 208u));
  let j = col & 255u;
  let half = j >> 7u;
  let quarter = (j & 127u) >> 5u;
  let l = j & 31u;
  let ql = w[(block + half * 64u + select(0u, 32u, (quarter & 1u) == 1u) + l) >> 2u];
  let qh = w[(block + 128u + half * 32u + l) >> 2u];
  let low = (bytes4(ql) >> vec4<u32>(select(0u, 4u, quarter >= 2u))) & vec4<u32>(15u);
  let high = (bytes4(qh) >> vec4<u32>(quarter * 2u)) & vec4<u32>(3u);
  let q = vec4<i32>(low | (high << vec4<u32>(4u))) - vec4<i32>(32);
  let sb = byte_at(block + 192u + half * 8u + (l >> 4u) + quarter * 2u);
  let sc = f32(bitcast<i32>(sb << 24u) >> 24u);
  return d * sc * vec4<f32>(q);
}
