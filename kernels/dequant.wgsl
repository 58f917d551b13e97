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
//   Q4_1: ggml block_q4_1 as is (20 bytes): [f16 d, f16 m, 16 bytes of nibbles]            (5 words)
//   Q5_0: ggml block_q5_0 padded to 24 bytes: [f16 d, 2 pad, u32 qh, 16 bytes of nibbles]   (6 words)
//   Q5_1: ggml block_q5_1 as is (24 bytes): [f16 d, f16 m, u32 qh, 16 bytes of nibbles]     (6 words)
//   Q2_K: ggml block_q2_K as is (84 bytes): [16 scale|min bytes, 64 bytes of 2-bit quants, f16 d, f16 dmin]
//   Q3_K: ggml block_q3_K padded to 112 bytes: [32 hmask, 64 bytes of 2-bit quants, 12 bytes scales, f16 d, 2 pad]
//   Q4_K: ggml block_q4_K as is (144 bytes): [f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles]
//   Q5_K: ggml block_q5_K as is (176 bytes): [f16 d, f16 dmin, 12 bytes scales, 32 bytes qh, 128 bytes nibbles]
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

fn dq4_Q4_1(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + (col >> 5u) * 5u;
  let dm = unpack2x16float(w[base]);
  let j = col & 31u;
  let word = w[base + 1u + ((j & 15u) >> 2u)];
  let q = (bytes4(word) >> vec4<u32>(select(0u, 4u, j >= 16u))) & vec4<u32>(15u);
  return dm.x * vec4<f32>(q) + vec4<f32>(dm.y);
}

// Q5_0/Q5_1 codes 0..31 of values [j, j+4) of the 6-word block at word `base`: the nibble (values 0-15 low,
// 16-31 high, in the words after qh) and bit j of qh (word base + 1) as bit 4.
fn q5_codes(base: u32, j: u32) -> vec4<f32> {
  let word = w[base + 2u + ((j & 15u) >> 2u)];
  let low = (bytes4(word) >> vec4<u32>(select(0u, 4u, j >= 16u))) & vec4<u32>(15u);
  let high = (vec4<u32>(w[base + 1u]) >> (vec4<u32>(j) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
  return vec4<f32>(low | (high << vec4<u32>(4u)));
}

fn dq4_Q5_0(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + (col >> 5u) * 6u;
  let d = f16_bits(w[base] & 0xffffu);
  return d * (q5_codes(base, col & 31u) - 16.0);
}

fn dq4_Q5_1(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let base = (row_byte >> 2u) + (col >> 5u) * 6u;
  let dm = unpack2x16float(w[base]);
  return dm.x * q5_codes(base, col & 31u) + vec4<f32>(dm.y);
}

// Q2_K/Q3_K 2-bit codes of values [j, j+4) of a super-block whose quant bytes start at byte `qs`:
// per 128 values 32 bytes, value 32g + l in bits 2g..2g+1 of byte l.
fn q2_codes(qs: u32, j: u32) -> vec4<u32> {
  let word = w[(qs + (j >> 7u) * 32u + (j & 31u)) >> 2u];
  return (bytes4(word) >> vec4<u32>(((j & 127u) >> 5u) * 2u)) & vec4<u32>(3u);
}

fn dq4_Q2_K(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let block = row_byte + (col >> 8u) * 84u;
  let j = col & 255u;
  let dm = unpack2x16float(w[(block + 80u) >> 2u]);
  let sc = byte_at(block + (j >> 4u));
  let q = vec4<f32>(q2_codes(block + 16u, j));
  return dm.x * f32(sc & 15u) * q - vec4<f32>(dm.y * f32(sc >> 4u));
}

fn dq4_Q3_K(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let block = row_byte + (col >> 8u) * 112u;
  let j = col & 255u;
  let d = f16_bits(half_at(block + 108u));
  // 6-bit scale k: low nibble from byte k (k < 8) or the high nibble of byte k - 8; top 2 bits from byte 8 + k % 4.
  let k = j >> 4u;
  let sc = block + 96u;
  let low = (byte_at(sc + (k & 7u)) >> select(4u, 0u, k < 8u)) & 15u;
  let high = (byte_at(sc + 8u + (k & 3u)) >> ((k >> 2u) * 2u)) & 3u;
  let s = f32(i32(low | (high << 4u)) - 32);
  // The third bit of value j is bit j / 32 of hmask[j % 32]; clear means the code is 4 lower.
  let h = (bytes4(w[(block + (j & 31u)) >> 2u]) >> vec4<u32>(j >> 5u)) & vec4<u32>(1u);
  let q = vec4<f32>(q2_codes(block + 32u, j)) - 4.0 + 4.0 * vec4<f32>(h);
  return d * s * q;
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

fn dq4_Q5_K(row_byte: u32, col: u32, cols: u32) -> vec4<f32> {
  let block = row_byte + (col >> 8u) * 176u;
  let dm = unpack2x16float(w[block >> 2u]);
  let j = col & 255u;
  let chunk = j >> 6u;          // 64-value chunk: 32 bytes of nibbles, low then high; qh bits 2*chunk, 2*chunk + 1
  let sub = chunk * 2u + select(0u, 1u, (j & 63u) >= 32u);
  let sm = scale_min_k4(block + 4u, sub);
  let word = w[(block + 48u + chunk * 32u + (j & 31u)) >> 2u];
  let low = (bytes4(word) >> vec4<u32>(select(0u, 4u, (j & 63u) >= 32u))) & vec4<u32>(15u);
  let high = (bytes4(w[(block + 16u + (j & 31u)) >> 2u]) >> vec4<u32>(sub)) & vec4<u32>(1u);
  let q = vec4<f32>(low | (high << vec4<u32>(4u)));
  return dm.x * sm.x * q - vec4<f32>(dm.y * sm.y);
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
