// Peak probes for `star-ask bench kernels` (src/engine/backend/wasm/wasmBackend.ts measurePeak): the rate of the
// quantized products' instruction (i32x4.dot_i16x8_s, 8 multiply-adds; in the relaxed build
// i16x8.relaxed_dot_i8x16_i7x16_s, 16), on registers, and of one pass reading memory,
// so each product can be given as a fraction of what this engine and machine can do at all.
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/** Ops (2 per multiply-add) of one peak_dot step: the products' instruction in this build. */
EXPORT(peak_dot_ops) int peak_dot_ops(void) {
#ifdef __wasm_relaxed_simd__
  return 32;
#else
  return 16;
#endif
}

#ifdef __wasm_relaxed_simd__
/** The relaxed build's products' instruction, i16x8.relaxed_dot_i8x16_i7x16_s (16 multiply-adds), the same way. */
EXPORT(peak_dot) int peak_dot(int iters) {
  v128_t w = wasm_i8x16_splat(1);
  v128_t a[12];
  for (int j = 0; j < 12; j++) a[j] = wasm_i8x16_splat(j + 1);
  for (int i = 0; i < iters; i++) {
    _Pragma("clang loop unroll(full)") for (int j = 0; j < 12; j++) a[j] = wasm_i16x8_relaxed_dot_i8x16_i7x16(a[j], w);
  }
  v128_t s = a[0];
  for (int j = 1; j < 12; j++) s = wasm_i32x4_add(s, a[j]);
  return wasm_i32x4_extract_lane(s, 0) ^ wasm_i32x4_extract_lane(s, 3);
}
#else
/** iters * 12 dot products in 12 independent chains (enough to cover the instruction's latency). Returns a checksum. */
EXPORT(peak_dot) int peak_dot(int iters) {
  v128_t w = wasm_i16x8_splat(1);
  v128_t a0 = wasm_i32x4_splat(1), a1 = wasm_i32x4_splat(2), a2 = wasm_i32x4_splat(3), a3 = wasm_i32x4_splat(4);
  v128_t a4 = wasm_i32x4_splat(5), a5 = wasm_i32x4_splat(6), a6 = wasm_i32x4_splat(7), a7 = wasm_i32x4_splat(8);
  v128_t a8 = wasm_i32x4_splat(9), a9 = wasm_i32x4_splat(10), a10 = wasm_i32x4_splat(11), a11 = wasm_i32x4_splat(12);
  for (int i = 0; i < iters; i++) {
    a0 = wasm_i32x4_dot_i16x8(a0, w); a1 = wasm_i32x4_dot_i16x8(a1, w); a2 = wasm_i32x4_dot_i16x8(a2, w);
    a3 = wasm_i32x4_dot_i16x8(a3, w); a4 = wasm_i32x4_dot_i16x8(a4, w); a5 = wasm_i32x4_dot_i16x8(a5, w);
    a6 = wasm_i32x4_dot_i16x8(a6, w); a7 = wasm_i32x4_dot_i16x8(a7, w); a8 = wasm_i32x4_dot_i16x8(a8, w);
    a9 = wasm_i32x4_dot_i16x8(a9, w); a10 = wasm_i32x4_dot_i16x8(a10, w); a11 = wasm_i32x4_dot_i16x8(a11, w);
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3)), wasm_i32x4_add(wasm_i32x4_add(a4, a5), wasm_i32x4_add(a6, a7)));
  s = wasm_i32x4_add(s, wasm_i32x4_add(wasm_i32x4_add(a8, a9), wasm_i32x4_add(a10, a11)));
  return wasm_i32x4_extract_lane(s, 0) ^ wasm_i32x4_extract_lane(s, 3);
}
#endif

/** Reads `bytes` (a multiple of 64) at p once, 4 vectors at a time. Returns a checksum. */
EXPORT(peak_read) int peak_read(const uint8_t *p, int bytes) {
  v128_t s0 = wasm_i32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (int i = 0; i < bytes; i += 64) {
    s0 = wasm_i32x4_add(s0, wasm_v128_load(p + i));
    s1 = wasm_i32x4_add(s1, wasm_v128_load(p + i + 16));
    s2 = wasm_i32x4_add(s2, wasm_v128_load(p + i + 32));
    s3 = wasm_i32x4_add(s3, wasm_v128_load(p + i + 48));
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3));
  return wasm_i32x4_extract_lane(s, 0) ^ wasm_i32x4_extract_lane(s, 3);
}
