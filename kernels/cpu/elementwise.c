// The CPU backend's RMSNorm in WebAssembly SIMD128 (src/engine/backend/wasm/wasmBackend.ts copies the activations in
// and out: one pass, so the copy costs about what the op does; the gain is the vector arithmetic). f32 throughout.
// SwiGLU stays in the JS reference: an f32 version here (polynomial exp) flipped a near-tie top-1 of the 0.5B
// real-shape file against llama.cpp (test/real-shape-model.test.ts).
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
