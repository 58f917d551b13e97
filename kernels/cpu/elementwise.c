// The CPU backend's RMSNorm and SwiGLU in WebAssembly SIMD128 (src/engine/backend/wasm/wasmBackend.ts copies the
// activations in and out: one pass, so the copy costs about what the op does; the gain is the vector arithmetic).
// RMSNorm in f32; SwiGLU in f64, as the JS reference (see swiglu_f32).
#include <stdint.h>
#include <wasm_simd128.h>
#include "simd_math.h" // hsum

#define EXPORT(name) __attribute__((export_name(#name)))

/** out[r] = x[r] / rms(x[r]) * w for rows r < rows of `cols` values. */
EXPORT(rms_norm_rows) void rms_norm_rows(const float *x, const float *w, float eps, float *out, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (long)r * cols;
    float *o = out + (long)r * cols;
    v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
    int i = 0;
    for (; i + 8 <= cols; i += 8) {
      v128_t a = wasm_v128_load(xr + i), b = wasm_v128_load(xr + i + 4);
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(a, a));
      s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(b, b));
    }
    float ss = hsum(wasm_f32x4_add(s0, s1));
    for (; i < cols; i++) ss += xr[i] * xr[i];
    const float scale = 1.0f / __builtin_sqrtf(ss / (float)cols + eps);
    const v128_t sv = wasm_f32x4_splat(scale);
    for (i = 0; i + 4 <= cols; i += 4) wasm_v128_store(o + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(xr + i), sv), wasm_v128_load(w + i)));
    for (; i < cols; i++) o[i] = xr[i] * scale * w[i];
  }
}

// exp on 2 f64 lanes: x = n ln2 + r, |r| <= ln2 / 2 (ln2 in two parts, so r is exact to ~2^-60), e^r by its
// Taylor series to r^13 (truncation below 5e-18 relative), times 2^n built in the exponent bits. Inputs are
// clamped to [-708, 709], where 2^n stays normal: beyond, the caller's quotient is 0 or the value itself in f32
// either way. About 1-2 ulp of f64, i.e. far below an f32 ulp: rounded to f32 the results equal those of the
// JS reference's Math.exp in double except where a value lies within ~1e-16 relative of an f32 rounding boundary.
static inline v128_t exp_f64x2(v128_t x) {
  x = wasm_f64x2_min(wasm_f64x2_max(x, wasm_f64x2_splat(-708.0)), wasm_f64x2_splat(709.0));
  v128_t n = wasm_f64x2_nearest(wasm_f64x2_mul(x, wasm_f64x2_splat(1.4426950408889634)));
  v128_t r = wasm_f64x2_sub(x, wasm_f64x2_mul(n, wasm_f64x2_splat(6.93147180369123816490e-01)));
  r = wasm_f64x2_sub(r, wasm_f64x2_mul(n, wasm_f64x2_splat(1.90821492927058770002e-10)));
  // Horner from 1/13! down (constants inline: the modules hold no data).
  v128_t p = wasm_f64x2_splat(1.0 / 6227020800.0);
#define TERM(c) p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(c))
  TERM(1.0 / 479001600); TERM(1.0 / 39916800); TERM(1.0 / 3628800); TERM(1.0 / 362880); TERM(1.0 / 40320);
  TERM(1.0 / 5040); TERM(1.0 / 720); TERM(1.0 / 120); TERM(1.0 / 24); TERM(1.0 / 6); TERM(0.5); TERM(1.0); TERM(1.0);
#undef TERM
  v128_t e = wasm_i64x2_extend_low_i32x4(wasm_i32x4_trunc_sat_f64x2_zero(n));
  return wasm_f64x2_mul(p, wasm_i64x2_shl(wasm_i64x2_add(e, wasm_i64x2_splat(1023)), 52));
}

/**
 * out[i] = g[i] / (1 + exp(-g[i])) * u[i] for i < len, in f64 as the JS reference computes it (then rounded to
 * f32), so the kernels and `cpu-ref` agree to the f32 rounding of nearly every value: an f32 version (polynomial
 * exp in f32) moved enough outputs by a few ulp to flip a near-tie top-1 of the 0.5B real-shape file.
 */
EXPORT(swiglu_f32) void swiglu_f32(const float *g, const float *u, float *out, int len) {
  int i = 0;
  for (; i + 2 <= len; i += 2) {
    v128_t gv = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(g + i));
    v128_t uv = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(u + i));
    v128_t d = wasm_f64x2_add(wasm_f64x2_splat(1.0), exp_f64x2(wasm_f64x2_neg(gv)));
    v128_t o = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_mul(wasm_f64x2_div(gv, d), uv));
    wasm_v128_store64_lane(out + i, o, 0);
  }
  for (; i < len; i++) {
    v128_t gv = wasm_f64x2_splat((double)g[i]);
    v128_t d = wasm_f64x2_add(wasm_f64x2_splat(1.0), exp_f64x2(wasm_f64x2_neg(gv)));
    out[i] = (float)(wasm_f64x2_extract_lane(wasm_f64x2_div(gv, d), 0) * (double)u[i]);
  }
}
