// Vector math the kernels share (no libm: the modules link no libc).
#ifndef STAR_SIMD_MATH_H
#define STAR_SIMD_MATH_H
#include <wasm_simd128.h>

// exp on 4 lanes: 2^n · p(r), x = n ln2 + r, |r| <= ln2 / 2, p the degree-6 Taylor polynomial (relative error
// below 2^-22 there). Inputs above 88 are clamped to it; below -87 the result is 0 (the exact one is under 1e-38,
// nothing against a softmax sum that holds exp(0) = 1), never a value whose products with the V rows would be
// subnormal: x86 computes on subnormals a hundred times slower, and wasm cannot flush them.
static inline v128_t exp_f32x4(v128_t x) {
  v128_t keep = wasm_f32x4_ge(x, wasm_f32x4_splat(-87.0f));
  x = wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(-87.0f)), wasm_f32x4_splat(88.0f));
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693145751953125f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(1.42860682030941723e-6f)));
  v128_t p = wasm_f32x4_splat(1.0f / 720);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_and(wasm_f32x4_mul(p, scale), keep);
}

static inline float exp_f32(float x) { return wasm_f32x4_extract_lane(exp_f32x4(wasm_f32x4_splat(x)), 0); }

// a * b + c on 4 lanes: in the relaxed-SIMD build f32x4.relaxed_madd, one fused multiply-add where the CPU has one
// (x86 with FMA3, ARM), else a multiply and an add, as the SIMD128 build always does. The attention's dot products
// and V sums are these and nothing else, so they take half the instructions where it fuses. Results then differ
// between the builds by f32 rounding (the fused one rounds once); within a build every path uses this one.
static inline v128_t madd(v128_t a, v128_t b, v128_t c) {
#ifdef __wasm_relaxed_simd__
  return wasm_f32x4_relaxed_madd(a, b, c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

static inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

#endif
