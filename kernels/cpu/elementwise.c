// The CPU backend's per-row ops in WebAssembly SIMD128: RMSNorm and SwiGLU (src/engine/backend/wasm/wasmBackend.ts
// copies the activations in and out: each is one pass, so the copy costs about what the op does, and the gain is
// the vector arithmetic and the polynomial exp in place of Math.exp). f32 throughout.
#include <stdint.h>
#include <wasm_simd128.h>
#include "simd_math.h"

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

/** out = silu(gate) * up = gate / (1 + exp(-gate)) * up over n values. */
EXPORT(swiglu) void swiglu(const float *gate, const float *up, float *out, int n) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t g = wasm_v128_load(gate + i);
    v128_t silu = wasm_f32x4_div(g, wasm_f32x4_add(one, exp_f32x4(wasm_f32x4_neg(g))));
    wasm_v128_store(out + i, wasm_f32x4_mul(silu, wasm_v128_load(up + i)));
  }
  for (; i < n; i++) out[i] = gate[i] / (1.0f + exp_f32(-gate[i])) * up[i];
}
