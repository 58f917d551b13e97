// The CPU backend's matrix products in WebAssembly SIMD128 (src/engine/backend/wasm/ runs them).
//
// Weights stay in their stored ggml blocks (ggml-common.h; the same layouts src/engine/quant/dequantize.ts
// decodes). Activations are quantized per block to 8 bits before the products, as llama.cpp's CPU backend
// does: Q8_0-style (32 values, one f32 scale, plus the scaled sum for the types with a minimum) against the
// legacy types, Q8_K-style (256 values, one f32 scale, sums of every 16) against the K-quants. Products are
// integer (8-bit lanes widened to 16-bit products, pairwise to 32-bit: SIMD128 has no 8-bit dot product,
// and relaxed SIMD is not in Node 20's V8), sums f32. F32/F16/BF16 weights take f32 activations.
//
// No libc and no global data: every buffer is passed in, so one module instance per thread can share one memory.
// Each instance's shadow stack would start at the same address, so __stack_pointer is exported and every worker
// moves its own to a stack of its own (src/engine/backend/wasm/threadPool.ts).
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// GGML type ids (ggml.h enum ggml_type), as src/engine/quant/formats.ts.
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

// Unaligned little-endian loads (wasm is little-endian; memcpy becomes one i32.load16_u / i32.load).
static inline uint32_t rd16(const uint8_t *p) { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }

static inline float bits_f32(uint32_t b) { float f; __builtin_memcpy(&f, &b, 4); return f; }
static inline uint32_t f32_bits(float f) { uint32_t b; __builtin_memcpy(&b, &f, 4); return b; }

// IEEE half -> float: exponent rebias by a multiply (exact for normals and subnormals), inf/NaN kept.
static inline float f16_convert(uint32_t h) {
  uint32_t mag = (h & 0x7fff) << 13;
  float f = bits_f32(mag) * 0x1p112f;
  uint32_t b = f32_bits(f);
  if ((h & 0x7c00) == 0x7c00) b = 0x7f800000 | mag;
  return bits_f32(b | ((h & 0x8000) << 16));
}

// Every half's float, filled once by init(): one load per block scale instead of a dozen operations. The only global
// datum: written by the first instance before any worker starts, read-only after.
static float *f16_table;

/** `table`: 65,536 floats of scratch the caller keeps for the life of the memory. */
EXPORT(init) void init(float *table) {
  for (uint32_t h = 0; h < 65536; h++) table[h] = f16_convert(h);
  f16_table = table;
}

static inline float f16(uint32_t h) { return f16_table[h]; }

static inline float hsum_f32(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

// 16 int8 products summed pairwise into 4 int32. The 16-bit sum of two products cannot overflow: activations
// are in -127..127 and weights in -128..127, so |a*b + c*d| <= 2 * 128 * 127 < 32768.
static inline v128_t dot16(v128_t a, v128_t b) {
  v128_t lo = wasm_i16x8_extmul_low_i8x16(a, b);
  v128_t hi = wasm_i16x8_extmul_high_i8x16(a, b);
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(lo, hi));
}

static inline v128_t acc_scaled(v128_t acc, v128_t isum, float scale) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_splat(scale)));
}

/* ---- activation quantization ----
 * Q8_0 row of k values (nb = k / 32): int8 q[k], f32 d[nb], f32 s[nb] (s = d * sum of the block's q).
 * Q8_K row (nb = k / 256): int8 q[k], f32 d[nb], int16 bsums[k / 16].
 * q = round(x / d), d = max|x| / 127 per block, so every q is in -127..127.
 */

static inline float block_amax(const float *x, int len) {
  v128_t m = wasm_f32x4_splat(0);
  for (int i = 0; i < len; i += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(x + i)));
  float a = wasm_f32x4_extract_lane(m, 0), b = wasm_f32x4_extract_lane(m, 1);
  float c = wasm_f32x4_extract_lane(m, 2), e = wasm_f32x4_extract_lane(m, 3);
  a = a > b ? a : b;
  c = c > e ? c : e;
  return a > c ? a : c;
}

// Quantizes 16 values to int8 with inverse scale id; returns them and adds their sum to *sum.
static inline v128_t quant16(const float *x, float id, int *sum) {
  v128_t s = wasm_f32x4_splat(id);
  v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x), s)));
  v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 4), s)));
  v128_t c = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 8), s)));
  v128_t d = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 12), s)));
  v128_t t = wasm_i32x4_add(wasm_i32x4_add(a, b), wasm_i32x4_add(c, d));
  *sum += wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1) + wasm_i32x4_extract_lane(t, 2) + wasm_i32x4_extract_lane(t, 3);
  return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d));
}

EXPORT(act_stride_q8_0) int act_stride_q8_0(int k) { return k + 8 * (k / 32); }
EXPORT(act_stride_q8_k) int act_stride_q8_k(int k) { return k + 4 * (k / 256) + 2 * (k / 16); }

/** Rows [r0, r1) of x [.., k] f32 (row stride k) into Q8_0 rows at dst (row stride act_stride_q8_0(k)). */
EXPORT(quantize_q8_0) void quantize_q8_0(const float *x, int k, uint8_t *dst, int r0, int r1) {
  int nb = k / 32, stride = act_stride_q8_0(k);
  for (int r = r0; r < r1; r++) {
    const float *xr = x + (long)r * k;
    uint8_t *q = dst + (long)r * stride;
    float *ds = (float *)(q + k), *ss = ds + nb;
    for (int b = 0; b < nb; b++) {
      float amax = block_amax(xr + 32 * b, 32);
      float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
      int sum = 0;
      wasm_v128_store(q + 32 * b, quant16(xr + 32 * b, id, &sum));
      wasm_v128_store(q + 32 * b + 16, quant16(xr + 32 * b + 16, id, &sum));
      ds[b] = d;
      ss[b] = d * (float)sum;
    }
  }
}

/** Rows [r0, r1) of x [.., k] f32 into Q8_K rows at dst (row stride act_stride_q8_k(k)). */
EXPORT(quantize_q8_k) void quantize_q8_k(const float *x, int k, uint8_t *dst, int r0, int r1) {
  int nb = k / 256, stride = act_stride_q8_k(k);
  for (int r = r0; r < r1; r++) {
    const float *xr = x + (long)r * k;
    uint8_t *q = dst + (long)r * stride;
    float *ds = (float *)(q + k);
    int16_t *bs = (int16_t *)(ds + nb);
    for (int b = 0; b < nb; b++) {
      float amax = block_amax(xr + 256 * b, 256);
      float id = amax > 0 ? 127.0f / amax : 0.0f;
      for (int g = 0; g < 16; g++) {
        int sum = 0;
        wasm_v128_store(q + 256 * b + 16 * g, quant16(xr + 256 * b + 16 * g, id, &sum));
        bs[16 * b + g] = (int16_t)sum;
      }
      ds[b] = amax / 127.0f;
    }
  }
}

/* ---- one weight row · one activation row ---- */

static float dot_f32(const uint8_t *w, const float *x, int k) {
  const float *wf = (const float *)w;
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
  int i = 0;
  for (; i + 8 <= k; i += 8) {
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(wf + i), wasm_v128_load(x + i)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(wf + i + 4), wasm_v128_load(x + i + 4)));
  }
  float s = hsum_f32(wasm_f32x4_add(a0, a1));
  for (; i < k; i++) s += wf[i] * x[i];
  return s;
}

// 4 halves (zero-extended to 32 bits) -> 4 floats, the vector form of f16() (weights are finite; inf/NaN
// would come out as large finite values here).
static inline v128_t f16x4(v128_t h) {
  v128_t mag = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
  v128_t f = wasm_f32x4_mul(mag, wasm_f32x4_splat(0x1p112f));
  return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}

static float dot_f16(const uint8_t *w, const float *x, int k) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
  int i = 0;
  for (; i + 8 <= k; i += 8) {
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(f16x4(wasm_u32x4_load16x4(w + 2 * i)), wasm_v128_load(x + i)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(f16x4(wasm_u32x4_load16x4(w + 2 * i + 8)), wasm_v128_load(x + i + 4)));
  }
  float s = hsum_f32(wasm_f32x4_add(a0, a1));
  for (; i < k; i++) s += f16(rd16(w + 2 * i)) * x[i];
  return s;
}

static float dot_bf16(const uint8_t *w, const float *x, int k) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
  int i = 0;
  for (; i + 8 <= k; i += 8) {
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_i32x4_shl(wasm_u32x4_load16x4(w + 2 * i), 16), wasm_v128_load(x + i)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_i32x4_shl(wasm_u32x4_load16x4(w + 2 * i + 8), 16), wasm_v128_load(x + i + 4)));
  }
  float s = hsum_f32(wasm_f32x4_add(a0, a1));
  for (; i < k; i++) s += bits_f32(rd16(w + 2 * i) << 16) * x[i];
  return s;
}

// The legacy types' products take up to NR activation rows per pass over a weight row, so each block is unpacked
// once for all of them (prefill); `out` gets row r's result at out[r * outStride].
#define NR 4
// Loops over the activation rows unroll fully (nr is a constant once inlined) so the accumulators stay in locals.
#define EACH_ROW _Pragma("clang loop unroll(full)") for
#define INLINE static inline __attribute__((always_inline))

// Accumulates (lo·x[0..15] + hi·x[16..31]) * d * xd_r[b] into acc[r] for every activation row r < nr.
#define LEGACY_ROWS(lo, hi, d)                                                                   \
  EACH_ROW (int r = 0; r < nr; r++) {                                                                 \
    const uint8_t *xq = x + (long)r * xStride + 32 * b;                                          \
    const float *xd = (const float *)(x + (long)r * xStride + k);                                \
    v128_t s = wasm_i32x4_add(dot16(lo, wasm_v128_load(xq)), dot16(hi, wasm_v128_load(xq + 16))); \
    acc[r] = acc_scaled(acc[r], s, (d) * xd[b]);                                                 \
  }
// The minimum's term for the types with one: m * (xd * Σ qx) = m * xs_r[b].
#define LEGACY_MINS(m)                                                                           \
  EACH_ROW (int r = 0; r < nr; r++) mins[r] += (m) * ((const float *)(x + (long)r * xStride + k))[nb + b];
#define LEGACY_BEGIN                                                                             \
  int nb = k / 32;                                                                               \
  v128_t acc[NR];                                                                                \
  float mins[NR];                                                                                \
  EACH_ROW (int r = 0; r < NR; r++) { acc[r] = wasm_f32x4_splat(0); mins[r] = 0; }
#define LEGACY_END                                                                               \
  EACH_ROW (int r = 0; r < nr; r++) out[(long)r * outStride] = hsum_f32(acc[r]) + mins[r];

#define LEGACY_ARGS const uint8_t *w, const uint8_t *x, int xStride, int k, int nr, float *out, int outStride

// block_q8_0 { half d; int8 qs[32]; }
INLINE void dot_q8_0(LEGACY_ARGS) {
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 34 * b;
    v128_t lo = wasm_v128_load(p + 2), hi = wasm_v128_load(p + 18);
    float d = f16(rd16(p));
    LEGACY_ROWS(lo, hi, d)
  }
  LEGACY_END
}

// block_q4_0 { half d; uint8 qs[16]; }: low nibbles values 0..15, high nibbles 16..31, minus 8.
INLINE void dot_q4_0(LEGACY_ARGS) {
  const v128_t m4 = wasm_i8x16_splat(0x0f), eight = wasm_i8x16_splat(8);
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 18 * b;
    v128_t v = wasm_v128_load(p + 2);
    v128_t lo = wasm_i8x16_sub(wasm_v128_and(v, m4), eight), hi = wasm_i8x16_sub(wasm_u8x16_shr(v, 4), eight);
    float d = f16(rd16(p));
    LEGACY_ROWS(lo, hi, d)
  }
  LEGACY_END
}

// block_q4_1 { half d; half m; uint8 qs[16]; }: y = q * d + m, so x·y = d dx Σ q qx + m sx.
INLINE void dot_q4_1(LEGACY_ARGS) {
  const v128_t m4 = wasm_i8x16_splat(0x0f);
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 20 * b;
    v128_t v = wasm_v128_load(p + 4);
    v128_t lo = wasm_v128_and(v, m4), hi = wasm_u8x16_shr(v, 4);
    float d = f16(rd16(p)), m = f16(rd16(p + 2));
    LEGACY_ROWS(lo, hi, d)
    LEGACY_MINS(m)
  }
  LEGACY_END
}

// Bit j of qh as 0x10 in byte j: bytes 0..15 of *lo from bits 0..15, of *hi from bits 16..31.
INLINE void q5_high(uint32_t qh, v128_t *lo, v128_t *hi) {
  v128_t q = wasm_i32x4_splat((int32_t)qh);
  const v128_t bits = wasm_u8x16_const(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
  const v128_t zero = wasm_i8x16_splat(0), b4 = wasm_i8x16_splat(0x10);
  v128_t l = wasm_v128_and(wasm_i8x16_swizzle(q, wasm_i8x16_const(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), bits);
  v128_t h = wasm_v128_and(wasm_i8x16_swizzle(q, wasm_i8x16_const(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)), bits);
  *lo = wasm_v128_and(wasm_i8x16_ne(l, zero), b4);
  *hi = wasm_v128_and(wasm_i8x16_ne(h, zero), b4);
}

// block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: q = nibble | bit << 4, y = (q - 16) * d.
INLINE void dot_q5_0(LEGACY_ARGS) {
  const v128_t m4 = wasm_i8x16_splat(0x0f), sixteen = wasm_i8x16_splat(16);
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 22 * b;
    v128_t h0, h1;
    q5_high(rd32(p + 2), &h0, &h1);
    v128_t v = wasm_v128_load(p + 6);
    v128_t lo = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(v, m4), h0), sixteen);
    v128_t hi = wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(v, 4), h1), sixteen);
    float d = f16(rd16(p));
    LEGACY_ROWS(lo, hi, d)
  }
  LEGACY_END
}

// block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }: y = q * d + m.
INLINE void dot_q5_1(LEGACY_ARGS) {
  const v128_t m4 = wasm_i8x16_splat(0x0f);
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 24 * b;
    v128_t h0, h1;
    q5_high(rd32(p + 4), &h0, &h1);
    v128_t v = wasm_v128_load(p + 8);
    v128_t lo = wasm_v128_or(wasm_v128_and(v, m4), h0), hi = wasm_v128_or(wasm_u8x16_shr(v, 4), h1);
    float d = f16(rd16(p)), m = f16(rd16(p + 2));
    LEGACY_ROWS(lo, hi, d)
    LEGACY_MINS(m)
  }
  LEGACY_END
}

#define Q8K_D(xr, k) ((const float *)((xr) + (k)))
#define Q8K_BSUMS(xr, k) ((const int16_t *)((xr) + (k) + 4 * ((k) / 256)))

// block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: per 16 values a 4-bit scale (low) and
// min (high); value 128h + 32g + l takes bits 2g..2g+1 of qs[32h + l]. y = d sc q - dmin m.
static float dot_q2_k(const uint8_t *w, const uint8_t *xr, int k) {
  int nb = k / 256;
  const float *xd = Q8K_D(xr, k);
  const int16_t *bsums = Q8K_BSUMS(xr, k);
  const v128_t m2 = wasm_i8x16_splat(3);
  v128_t acc = wasm_f32x4_splat(0);
  float mins = 0;
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 84 * b, *sc = p, *x = xr + 256 * b;
    const int16_t *bs = bsums + 16 * b;
    int summ = 0;
    for (int j = 0; j < 16; j++) summ += (sc[j] >> 4) * bs[j];
    v128_t isum = wasm_i32x4_splat(0);
    for (int h = 0; h < 2; h++) {
      v128_t q0 = wasm_v128_load(p + 16 + 32 * h), q1 = wasm_v128_load(p + 32 + 32 * h);
      for (int g = 0; g < 4; g++) {
        int j = 8 * h + 2 * g;
        const uint8_t *xg = x + 128 * h + 32 * g;
        v128_t a = wasm_v128_and(wasm_u8x16_shr(q0, 2 * g), m2), c = wasm_v128_and(wasm_u8x16_shr(q1, 2 * g), m2);
        isum = wasm_i32x4_add(isum, wasm_i32x4_mul(dot16(a, wasm_v128_load(xg)), wasm_i32x4_splat(sc[j] & 15)));
        isum = wasm_i32x4_add(isum, wasm_i32x4_mul(dot16(c, wasm_v128_load(xg + 16)), wasm_i32x4_splat(sc[j + 1] & 15)));
      }
    }
    acc = acc_scaled(acc, isum, f16(rd16(p + 80)) * xd[b]);
    mins += f16(rd16(p + 82)) * xd[b] * (float)summ;
  }
  return hsum_f32(acc) - mins;
}

// Q3_K's 16 six-bit scales in 12 bytes: low nibbles in bytes 0-7, top bit pairs in bytes 8-11; minus 32.
static inline int scale_q3_k(const uint8_t *s, int j) {
  int low = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
  int high = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

// block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: low 2 bits as Q2_K; value i's high
// bit is bit i/32 of hmask[i % 32]; q = low - (high ? 0 : 4); y = d (scale - 32) q.
static float dot_q3_k(const uint8_t *w, const uint8_t *xr, int k) {
  int nb = k / 256;
  const float *xd = Q8K_D(xr, k);
  const v128_t m2 = wasm_i8x16_splat(3), one = wasm_i8x16_splat(1), four = wasm_i8x16_splat(4);
  v128_t acc = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 110 * b, *x = xr + 256 * b, *sc = p + 96;
    v128_t hm0 = wasm_v128_load(p), hm1 = wasm_v128_load(p + 16);
    v128_t isum = wasm_i32x4_splat(0);
    for (int h = 0; h < 2; h++) {
      v128_t q0 = wasm_v128_load(p + 32 + 32 * h), q1 = wasm_v128_load(p + 48 + 32 * h);
      for (int g = 0; g < 4; g++) {
        int m = 4 * h + g;
        const uint8_t *xg = x + 32 * m;
        v128_t a = wasm_v128_or(wasm_v128_and(wasm_u8x16_shr(q0, 2 * g), m2), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hm0, m), one), 2));
        v128_t c = wasm_v128_or(wasm_v128_and(wasm_u8x16_shr(q1, 2 * g), m2), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hm1, m), one), 2));
        a = wasm_i8x16_sub(a, four);
        c = wasm_i8x16_sub(c, four);
        isum = wasm_i32x4_add(isum, wasm_i32x4_mul(dot16(a, wasm_v128_load(xg)), wasm_i32x4_splat(scale_q3_k(sc, 2 * m))));
        isum = wasm_i32x4_add(isum, wasm_i32x4_mul(dot16(c, wasm_v128_load(xg + 16)), wasm_i32x4_splat(scale_q3_k(sc, 2 * m + 1))));
      }
    }
    acc = acc_scaled(acc, isum, f16(rd16(p + 108)) * xd[b]);
  }
  return hsum_f32(acc);
}

// get_scale_min_k4: 8 six-bit scales and 8 six-bit mins in 12 bytes.
static inline int scale_k4(const uint8_t *s, int j) {
  return j < 4 ? s[j] & 63 : (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
}
static inline int min_k4(const uint8_t *s, int j) {
  return j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: per 64 values, 32 low nibbles (sub-block
// 2c) then 32 high nibbles (2c + 1). block_q5_K adds qh[32] before qs: value 64c + l takes bit 2c of qh[l],
// 64c + 32 + l bit 2c + 1. y = d sc q - dmin m. Up to NR activation rows per pass, as the legacy types.
INLINE void dot_q45_k(LEGACY_ARGS, int five) {
  int nb = k / 256, size = five ? 176 : 144;
  const v128_t m4 = wasm_i8x16_splat(0x0f), one = wasm_i8x16_splat(1);
  v128_t acc[NR];
  float mins[NR];
  EACH_ROW (int r = 0; r < NR; r++) { acc[r] = wasm_f32x4_splat(0); mins[r] = 0; }
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + size * b, *sc = p + 4, *qs = p + (five ? 48 : 16);
    float d = f16(rd16(p)), dmin = f16(rd16(p + 2));
    // The minimums' term first, apart: in one loop with the products it kept the accumulators out of locals.
    int m[8];
    _Pragma("clang loop unroll(full)") for (int j = 0; j < 8; j++) m[j] = min_k4(sc, j);
    EACH_ROW (int r = 0; r < nr; r++) {
      const int16_t *bs = Q8K_BSUMS(x + (long)r * xStride, k) + 16 * b;
      int summ = 0;
      _Pragma("clang loop unroll(full)") for (int j = 0; j < 8; j++) summ += m[j] * (bs[2 * j] + bs[2 * j + 1]);
      mins[r] += dmin * Q8K_D(x + (long)r * xStride, k)[b] * (float)summ;
    }
    v128_t isum[NR];
    EACH_ROW (int r = 0; r < NR; r++) isum[r] = wasm_i32x4_splat(0);
    v128_t qh0 = wasm_i8x16_splat(0), qh1 = qh0;
    if (five) { qh0 = wasm_v128_load(p + 16); qh1 = wasm_v128_load(p + 32); }
    for (int c = 0; c < 4; c++) {
      v128_t v0 = wasm_v128_load(qs + 32 * c), v1 = wasm_v128_load(qs + 32 * c + 16);
      v128_t l0 = wasm_v128_and(v0, m4), l1 = wasm_v128_and(v1, m4), h0 = wasm_u8x16_shr(v0, 4), h1 = wasm_u8x16_shr(v1, 4);
      if (five) {
        l0 = wasm_v128_or(l0, wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(qh0, 2 * c), one), 4));
        l1 = wasm_v128_or(l1, wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(qh1, 2 * c), one), 4));
        h0 = wasm_v128_or(h0, wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(qh0, 2 * c + 1), one), 4));
        h1 = wasm_v128_or(h1, wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(qh1, 2 * c + 1), one), 4));
      }
      v128_t s0 = wasm_i32x4_splat(scale_k4(sc, 2 * c)), s1 = wasm_i32x4_splat(scale_k4(sc, 2 * c + 1));
      EACH_ROW (int r = 0; r < nr; r++) {
        const uint8_t *xc = x + (long)r * xStride + 256 * b + 64 * c;
        v128_t dl = wasm_i32x4_add(dot16(l0, wasm_v128_load(xc)), dot16(l1, wasm_v128_load(xc + 16)));
        v128_t dh = wasm_i32x4_add(dot16(h0, wasm_v128_load(xc + 32)), dot16(h1, wasm_v128_load(xc + 48)));
        isum[r] = wasm_i32x4_add(isum[r], wasm_i32x4_add(wasm_i32x4_mul(dl, s0), wasm_i32x4_mul(dh, s1)));
      }
    }
    EACH_ROW (int r = 0; r < nr; r++) acc[r] = acc_scaled(acc[r], isum[r], d * Q8K_D(x + (long)r * xStride, k)[b]);
  }
  EACH_ROW (int r = 0; r < nr; r++) out[(long)r * outStride] = hsum_f32(acc[r]) - mins[r];
}
INLINE void dot_q4_k(LEGACY_ARGS) { dot_q45_k(w, x, xStride, k, nr, out, outStride, 0); }
INLINE void dot_q5_k(LEGACY_ARGS) { dot_q45_k(w, x, xStride, k, nr, out, outStride, 1); }

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: per 128 values, 4 groups of 32 from
// the low/high nibbles of ql[0..63] and bit pairs of qh[0..31]; q in -32..31; one int8 scale per 16 values.
INLINE void dot_q6_k(LEGACY_ARGS) {
  int nb = k / 256;
  const v128_t m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30), off = wasm_i8x16_splat(32);
  v128_t acc[NR];
  EACH_ROW (int r = 0; r < NR; r++) acc[r] = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 210 * b;
    const int8_t *scales = (const int8_t *)(p + 192);
    v128_t isum[NR];
    EACH_ROW (int r = 0; r < NR; r++) isum[r] = wasm_i32x4_splat(0);
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
      const int8_t *sc = scales + 8 * h;
      for (int l = 0; l < 32; l += 16) {
        v128_t a = wasm_v128_load(ql + l), c = wasm_v128_load(ql + 32 + l), hb = wasm_v128_load(qh + l);
        v128_t q1 = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(a, m4), wasm_v128_and(wasm_i8x16_shl(hb, 4), m30)), off);
        v128_t q2 = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(c, m4), wasm_v128_and(wasm_i8x16_shl(hb, 2), m30)), off);
        v128_t q3 = wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(a, 4), wasm_v128_and(hb, m30)), off);
        v128_t q4 = wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(c, 4), wasm_v128_and(wasm_u8x16_shr(hb, 2), m30)), off);
        int is = l / 16;
        v128_t s1 = wasm_i32x4_splat(sc[is]), s2 = wasm_i32x4_splat(sc[is + 2]), s3 = wasm_i32x4_splat(sc[is + 4]), s4 = wasm_i32x4_splat(sc[is + 6]);
        EACH_ROW (int r = 0; r < nr; r++) {
          const uint8_t *xh = x + (long)r * xStride + 256 * b + 128 * h + l;
          v128_t t = wasm_i32x4_add(wasm_i32x4_mul(dot16(q1, wasm_v128_load(xh)), s1), wasm_i32x4_mul(dot16(q2, wasm_v128_load(xh + 32)), s2));
          t = wasm_i32x4_add(t, wasm_i32x4_add(wasm_i32x4_mul(dot16(q3, wasm_v128_load(xh + 64)), s3), wasm_i32x4_mul(dot16(q4, wasm_v128_load(xh + 96)), s4)));
          isum[r] = wasm_i32x4_add(isum[r], t);
        }
      }
    }
    float d = f16(rd16(p + 208));
    EACH_ROW (int r = 0; r < nr; r++) acc[r] = acc_scaled(acc[r], isum[r], d * Q8K_D(x + (long)r * xStride, k)[b]);
  }
  EACH_ROW (int r = 0; r < nr; r++) out[(long)r * outStride] = hsum_f32(acc[r]);
}

/* ---- matrix product, a range of weight rows ---- */

// out[r * outStride + j] = w_j · x_r for weight rows j in [r0, r1) and activation rows r < n. Weight rows
// outermost: a row is read from memory once and stays in L1 while every activation row meets it.
#define ROWS(dotfn, xtype)                                                                    \
  for (int j = r0; j < r1; j++) {                                                             \
    const uint8_t *wr = w + (long)j * rowBytes;                                               \
    for (int r = 0; r < n; r++) out[(long)r * outStride + j] = dotfn(wr, (const xtype *)(x + (long)r * xStride), k); \
  }
// The same, NR activation rows per call of a multi-row product (then the rest one at a time).
#define ROWS_N(dotfn)                                                                         \
  for (int j = r0; j < r1; j++) {                                                             \
    const uint8_t *wr = w + (long)j * rowBytes;                                               \
    int r = 0;                                                                                \
    for (; r + NR <= n; r += NR) dotfn(wr, x + (long)r * xStride, xStride, k, NR, out + (long)r * outStride + j, outStride); \
    for (; r < n; r++) dotfn(wr, x + (long)r * xStride, xStride, k, 1, out + (long)r * outStride + j, outStride); \
  }

/**
 * x: f32 rows (row stride xStride bytes) for F32/F16/BF16 weights, else the Q8_0 / Q8_K rows quantize_* wrote.
 * Returns 0, or -1 for a type this module has no product for.
 */
EXPORT(matmul_rows) int matmul_rows(int type, const uint8_t *w, int rowBytes, const uint8_t *x, int xStride, int n, int k,
                                    float *out, int outStride, int r0, int r1) {
  switch (type) {
    case T_F32: ROWS(dot_f32, float); break;
    case T_F16: ROWS(dot_f16, float); break;
    case T_BF16: ROWS(dot_bf16, float); break;
    case T_Q8_0: ROWS_N(dot_q8_0); break;
    case T_Q4_0: ROWS_N(dot_q4_0); break;
    case T_Q4_1: ROWS_N(dot_q4_1); break;
    case T_Q5_0: ROWS_N(dot_q5_0); break;
    case T_Q5_1: ROWS_N(dot_q5_1); break;
    case T_Q2_K: ROWS(dot_q2_k, uint8_t); break;
    case T_Q3_K: ROWS(dot_q3_k, uint8_t); break;
    case T_Q4_K: ROWS_N(dot_q4_k); break;
    case T_Q5_K: ROWS_N(dot_q5_k); break;
    case T_Q6_K: ROWS_N(dot_q6_k); break;
    default: return -1;
  }
  return 0;
}
