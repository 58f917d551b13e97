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

// Bytes per quantized activation: 8-bit where relaxed SIMD's 8-bit dot product meets them, else 16-bit (see below).
#ifdef __wasm_relaxed_simd__
#define QB 1
#else
#define QB 2
#endif

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

/* ---- activation quantization ----
 * Q8_0 row of k values (nb = k / 32): q[k], f32 d[nb], f32 s[nb] (s = d * sum of the block's q).
 * Q8_K row (nb = k / 256): q[k], f32 d[nb], int16 bsums[k / 16].
 * q = round(x / d), d = max|x| / 127 per block, so every q is in -127..127: 8-bit values, stored in qb bytes each
 * (act_bytes_per_value). In the relaxed-SIMD build they are 8-bit, for i16x8.relaxed_dot_i8x16_i7x16_s (one
 * pmaddubsw on x86: 16 multiply-adds) against weights below 128, which every weight type but Q8_0 can be made
 * (unsigned quants, an offset term for the signed ones). Otherwise, and for Q8_0, they are held in 16 bits for
 * i32x4.dot_i16x8_s (one pmaddwd: 8): a weight block is widened to 16 bits once and meets up to NR activation rows;
 * SIMD128's own 8-bit route (two extmuls, an add and an extadd per 16 values) costs V8 about three times the
 * instructions per activation row, and Q8_0 with its signs moved onto 8-bit activations measured 30% slower than
 * this (both measured, see the README).
 */

/** Bytes per quantized activation in the products of weight type `type` (see above). */
EXPORT(act_bytes_per_value) int act_bytes_per_value(int type) { return type == T_Q8_0 ? 2 : QB; }

static inline float block_amax(const float *x, int len) {
  v128_t m = wasm_f32x4_splat(0);
  for (int i = 0; i < len; i += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(x + i)));
  float a = wasm_f32x4_extract_lane(m, 0), b = wasm_f32x4_extract_lane(m, 1);
  float c = wasm_f32x4_extract_lane(m, 2), e = wasm_f32x4_extract_lane(m, 3);
  a = a > b ? a : b;
  c = c > e ? c : e;
  return a > c ? a : c;
}

// Quantizes 4 values with inverse scale s into 32-bit lanes; adds them to *sum.
static inline v128_t quant4(const float *x, v128_t s, v128_t *sum) {
  v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x), s)));
  *sum = wasm_i32x4_add(*sum, a);
  return a;
}

// Quantizes 16 values with inverse scale s to q, qb bytes each; adds them to *sum.
static inline void quant16(const float *x, v128_t s, v128_t *sum, uint8_t *q, int qb) {
  v128_t a = wasm_i16x8_narrow_i32x4(quant4(x, s, sum), quant4(x + 4, s, sum));
  v128_t b = wasm_i16x8_narrow_i32x4(quant4(x + 8, s, sum), quant4(x + 12, s, sum));
  if (qb == 1) {
    wasm_v128_store(q, wasm_i8x16_narrow_i16x8(a, b));
  } else {
    wasm_v128_store(q, a);
    wasm_v128_store(q + 16, b);
  }
}

static inline int hsum_i32(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

EXPORT(act_stride_q8_0) int act_stride_q8_0(int k, int qb) { return qb * k + 8 * (k / 32); }
EXPORT(act_stride_q8_k) int act_stride_q8_k(int k) { return QB * k + 4 * (k / 256) + 2 * (k / 16); }

// Behind the n Q8_0 rows, each group of 4 rows (NR) has its scales side by side per block, [group][block]{d[4], s[4]}:
// the 4-row products load them as two vectors instead of gathering 8 scalars per block.
static inline const float *q8_0_groups(const uint8_t *x, int n, int k, int qb) {
  return (const float *)(x + ((n * act_stride_q8_0(k, qb) + 15) & ~15));
}

/** Bytes quantize_q8_0 writes for n rows of k values, qb bytes each. */
EXPORT(act_bytes_q8_0) int act_bytes_q8_0(int n, int k, int qb) {
  return ((n * act_stride_q8_0(k, qb) + 15) & ~15) + (n / 4) * (k / 32) * 32;
}

/** The n rows of x [n, k] f32 (row stride k) into Q8_0 rows at dst (row stride act_stride_q8_0(k, qb)), then the group scales. */
EXPORT(quantize_q8_0) void quantize_q8_0(const float *x, int k, uint8_t *dst, int n, int qb) {
  int nb = k / 32, stride = act_stride_q8_0(k, qb);
  float *groups = (float *)q8_0_groups(dst, n, k, qb);
  for (int r = 0; r < n; r++) {
    const float *xr = x + (long)r * k;
    uint8_t *q = dst + (long)r * stride;
    float *ds = (float *)(q + qb * k), *ss = ds + nb;
    float *gs = groups + (long)(r / 4) * nb * 8 + (r % 4);
    for (int b = 0; b < nb; b++) {
      const float *xb = xr + 32 * b;
      float amax = block_amax(xb, 32);
      float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
      v128_t s = wasm_f32x4_splat(id), sum = wasm_i32x4_splat(0);
      quant16(xb, s, &sum, q + qb * 32 * b, qb);
      quant16(xb + 16, s, &sum, q + qb * (32 * b + 16), qb);
      ds[b] = d;
      ss[b] = d * (float)hsum_i32(sum);
      if (r < n - n % 4) { gs[8 * b] = d; gs[8 * b + 4] = ss[b]; }
    }
  }
}

/** Rows [r0, r1) of x [.., k] f32 into Q8_K rows at dst (row stride act_stride_q8_k(k)). */
EXPORT(quantize_q8_k) void quantize_q8_k(const float *x, int k, uint8_t *dst, int r0, int r1) {
  int nb = k / 256, stride = act_stride_q8_k(k);
  for (int r = r0; r < r1; r++) {
    const float *xr = x + (long)r * k;
    uint8_t *q = dst + (long)r * stride;
    float *ds = (float *)(q + QB * k);
    int16_t *bs = (int16_t *)(ds + nb);
    for (int b = 0; b < nb; b++) {
      float amax = block_amax(xr + 256 * b, 256);
      v128_t s = wasm_f32x4_splat(amax > 0 ? 127.0f / amax : 0.0f);
      for (int g = 0; g < 16; g++) {
        v128_t sum = wasm_i32x4_splat(0);
        const float *xg = xr + 256 * b + 16 * g;
        quant16(xg, s, &sum, q + QB * (256 * b + 16 * g), QB);
        bs[16 * b + g] = (int16_t)hsum_i32(sum);
      }
      ds[b] = amax / 127.0f;
    }
  }
}

/* ---- one weight row · one activation row (float weights) ---- */

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

/* ---- one weight row · up to NR activation rows (quantized weights) ----
 * Each weight block is unpacked and widened to 16-bit lanes once (K-quants: multiplied by their sub-block scales
 * there too, so a super-block is one integer sum) and meets every activation row of the pass; `out` gets row r's
 * result at out[r * outStride].
 */
#define NR 4
// Loops over the activation rows unroll fully (nr is a constant once inlined) so the accumulators stay in locals.
#define EACH_ROW _Pragma("clang loop unroll(full)") for
#define UNROLL _Pragma("clang loop unroll(full)") for
#define INLINE static inline __attribute__((always_inline))

// 8 products of 16-bit lanes summed pairwise into 4 int32 lanes. Widened weights times scale stay within
// +-4096 (Q6_K: 32 * 128) and activations within +-127, so a pair is below 2^21 and a super-block's sum of 256
// below 2^27.
// (16-bit activations: the SIMD128 build, and Q8_0 in both.)
INLINE v128_t dot8(v128_t w, const uint8_t *x) { return wasm_i32x4_dot_i16x8(w, wasm_v128_load(x)); }
INLINE v128_t lo16s(v128_t v) { return wasm_i16x8_extend_low_i8x16(v); }
INLINE v128_t hi16s(v128_t v) { return wasm_i16x8_extend_high_i8x16(v); }
INLINE v128_t lo16u(v128_t v) { return wasm_u16x8_extend_low_u8x16(v); }
INLINE v128_t hi16u(v128_t v) { return wasm_u16x8_extend_high_u8x16(v); }

// Σ over 32 values: w[0..3] hold values 0-7, 8-15, 16-23, 24-31 in 16-bit lanes, xq the 32 activations.
INLINE v128_t dot32(const v128_t *w, const uint8_t *xq) {
  return wasm_i32x4_add(wasm_i32x4_add(dot8(w[0], xq), dot8(w[1], xq + 16)), wasm_i32x4_add(dot8(w[2], xq + 32), dot8(w[3], xq + 48)));
}

#define ACT(r) (x + (long)(r) * xStride)
#define Q8_0_D(r) ((const float *)(ACT(r) + QB * k))
#define Q8K_D(r) ((const float *)(ACT(r) + QB * k))
#define Q8K_BSUMS(r) ((const int16_t *)(ACT(r) + QB * k + 4 * (k / 256)))

// Row sums: lane r of the result is the sum of the lanes of s_r (exact: integers).
INLINE v128_t reduce4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}
// Keeps each row's loads beside its products: clang otherwise hoists every row's activation loads to the top of
// the block, and V8, with 16 vector registers, spills them.
#define ROW_BARRIER __asm__ volatile("" ::: "memory")
// p, as far as the compiler knows computed here, so loads through it stay here: Q4_K's rows' activation loads were
// still all hoisted to the top of a sub-block past ROW_BARRIER, and spilled (2-4% faster with this there; the other
// types measured the same or slower with it).
__attribute__((unused)) static inline __attribute__((always_inline)) const uint8_t *opaque(const uint8_t *p) { __asm__("" : "+r"(p)); return p; }
#define MAKE4(f) wasm_f32x4_make(f(0), f(1), f(2), f(3))

// The f32 side. With NR rows one vector holds every row's result (lane r), so a block costs one conversion and
// one multiply-add for all rows, and few registers stay live (V8 gives SIMD128 16 of them; the 4-row kernels
// spilled when each row kept its own accumulators). A single row (decode, tails) takes the same steps on a scalar:
// each block's integer sum is exact whatever lanes it was gathered in, so a row's result is the same bits in a
// 4-row pass or alone, and in the relaxed-SIMD build (which gathers the lanes differently) or not.
#define ACC_BEGIN v128_t acc4 = wasm_f32x4_splat(0); float acc1 = 0;
// + Σ lanes of s[r] * d * XD(r) for every row: s[] integer sums, XD(r) the activation scale of row r.
#define ACC_ADD(s, d, XD)                                                                       \
  if (nr == NR) acc4 = wasm_f32x4_add(acc4, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(reduce4(s[0], s[1], s[2], s[3])), \
                                                        wasm_f32x4_mul(wasm_f32x4_splat(d), MAKE4(XD)))); \
  else acc1 += (float)hsum_i32(s[0]) * ((d) * XD(0));
// The same with the rows' scales as one vector (XD4, for NR rows).
#define ACC_ADD4(s, d, XD4, XD)                                                                 \
  if (nr == NR) acc4 = wasm_f32x4_add(acc4, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(reduce4(s[0], s[1], s[2], s[3])), \
                                                        wasm_f32x4_mul(wasm_f32x4_splat(d), XD4))); \
  else acc1 += (float)hsum_i32(s[0]) * ((d) * XD(0));
// + m * XS(r) for every row.
#define ACC_TERM(m, XS)                                                                         \
  if (nr == NR) acc4 = wasm_f32x4_add(acc4, wasm_f32x4_mul(wasm_f32x4_splat(m), MAKE4(XS)));  \
  else acc1 += (m) * XS(0);
#define ACC_TERM4(m, XS4, XS)                                                                   \
  if (nr == NR) acc4 = wasm_f32x4_add(acc4, wasm_f32x4_mul(wasm_f32x4_splat(m), XS4));           \
  else acc1 += (m) * XS(0);
#define ACC_END                                                                                 \
  if (nr == NR) {                                                                               \
    out[0] = wasm_f32x4_extract_lane(acc4, 0);                                                  \
    out[outStride] = wasm_f32x4_extract_lane(acc4, 1);                                          \
    out[2L * outStride] = wasm_f32x4_extract_lane(acc4, 2);                                     \
    out[3L * outStride] = wasm_f32x4_extract_lane(acc4, 3);                                     \
  } else out[0] = acc1;

// Activation scales of row r, block b: Q8_0's d and s = d Σ q, Q8_K's d.
#define XD0(r) Q8_0_D(r)[b]
#define XS0(r) Q8_0_D(r)[nb + b]
#define XDK(r) Q8K_D(r)[b]

// Block b of a legacy type, d its scale; DOT(xq): the block's integer sum against the activations at xq.
#define LEGACY_ROWS(DOT, d)                                                                     \
  {                                                                                             \
    v128_t s[NR];                                                                               \
    EACH_ROW (int r = 0; r < NR; r++) s[r] = wasm_i32x4_splat(0);                               \
    EACH_ROW (int r = 0; r < nr; r++) { s[r] = DOT(ACT(r) + QB * 32 * b); ROW_BARRIER; }        \
    ACC_ADD4(s, d, wasm_v128_load(tab + 8 * b), XD0)                                            \
  }
// Signed weights widened to 16 bits in wv[4].
#define LEGACY_WDOT(xq) dot32(wv, xq)
#if QB == 1
// 16 products of 8-bit activations at x and 7-bit weights w, pairwise into 16-bit lanes (one pmaddubsw on x86;
// with weights below 128 every engine's relaxed result is the exact one).
INLINE v128_t rdot16(v128_t w, const uint8_t *x) { return wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load(x), w); }
// Unsigned weights below 32 as bytes (values 0-15 in lo, 16-31 in hi): two pairs of products stay within
// 2 * 2 * 31 * 127 in 16 bits.
#define LEGACY_RDOT(xq) udot32(wlo, whi, xq) // (defined below, before the first use)
#define LEGACY_U8(lo, hi, d)                                                                    \
  {                                                                                             \
    v128_t wlo = (lo), whi = (hi);                                                              \
    LEGACY_ROWS(LEGACY_RDOT, d)                                                                 \
  }
#else
// The same widened to 16 bits.
#define LEGACY_U8(lo, hi, d)                                                                    \
  {                                                                                             \
    v128_t wlo = (lo), whi = (hi);                                                              \
    v128_t wv[4] = { lo16u(wlo), hi16u(wlo), lo16u(whi), hi16u(whi) };                          \
    LEGACY_ROWS(LEGACY_WDOT, d)                                                                 \
  }
#endif
// A constant term per weight block: m * Σ x = m * (xd * Σ qx) = m * xs_r[b] (the minimum of Q4_1/Q5_1, and the
// offset of Q4_0/Q5_0, whose stored values are unsigned: q - 8 = q + (-8)).
#define LEGACY_MINS(m) ACC_TERM4(m, wasm_v128_load(tab + 8 * b + 4), XS0)
#define LEGACY_BEGIN                                                                            \
  int nb = k / 32;                                                                              \
  ACC_BEGIN
#define LEGACY_END ACC_END

// tab: the rows' group scales (Q8_0 activations, nr = NR; see q8_0_groups), else unused.
#define DOT_ARGS const uint8_t *w, const uint8_t *x, int xStride, int k, int nr, float *out, int outStride, const float *tab

// Shifts of byte lanes whose result is then masked to bits that stay inside each byte: done as 16-bit shifts, which
// V8 emits as one instruction (its 8-bit shifts add a mask of their own, built anew at every use).
INLINE v128_t shr_bytes(v128_t v, int n) { return wasm_u16x8_shr(v, n); }
INLINE v128_t shl_bytes(v128_t v, int n) { return wasm_i16x8_shl(v, n); }

// 32 unsigned 4-bit values: low nibbles (values 0..15), high nibbles (16..31).
#define NIBBLES_LO(v) wasm_v128_and(v, wasm_i8x16_splat(0x0f))
#define NIBBLES_HI(v) wasm_v128_and(shr_bytes(v, 4), wasm_i8x16_splat(0x0f))

// block_q8_0 { half d; int8 qs[32]; }: signed, so its activations are 16-bit in both builds (act_bytes_per_value).
#pragma push_macro("QB")
#undef QB
#define QB 2
INLINE void dot_q8_0(DOT_ARGS) {
  LEGACY_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 34 * b;
    v128_t lo = wasm_v128_load(p + 2), hi = wasm_v128_load(p + 18);
    v128_t wv[4] = { lo16s(lo), hi16s(lo), lo16s(hi), hi16s(hi) };
    float d = f16(rd16(p));
    LEGACY_ROWS(LEGACY_WDOT, d)
  }
  LEGACY_END
}
// One activation row against 4 weight rows, as LEGACY_UNSIGNED's gemv4 (no constant term).
INLINE void gemv4_q8_0(const uint8_t *w, int rowBytes, const uint8_t *x, int k, float *out) {
  int nb = k / 32;
  const float *xd = (const float *)(x + QB * k);
  v128_t acc = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    v128_t s[4];
    float d[4];
    UNROLL (int j = 0; j < 4; j++) {
      const uint8_t *p = w + (long)j * rowBytes + 34 * b;
      v128_t lo = wasm_v128_load(p + 2), hi = wasm_v128_load(p + 18);
      v128_t wv[4] = { lo16s(lo), hi16s(lo), lo16s(hi), hi16s(hi) };
      d[j] = f16(rd16(p));
      s[j] = dot32(wv, x + QB * 32 * b);
      ROW_BARRIER;
    }
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(reduce4(s[0], s[1], s[2], s[3])),
                                             wasm_f32x4_mul(wasm_f32x4_make(d[0], d[1], d[2], d[3]), wasm_f32x4_splat(xd[b]))));
  }
  wasm_v128_store(out, acc);
}
#pragma pop_macro("QB")

// One weight row's integer sum of a block of 32 unsigned weights (lo: values 0-15, hi: 16-31, as bytes) against the
// activations at xq, for the 1 x 4 products (gemv4_*), which widen each block once for one activation row.
INLINE v128_t udot32(v128_t lo, v128_t hi, const uint8_t *xq) {
#if QB == 1
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(rdot16(lo, xq), rdot16(hi, xq + 16)));
#else
  v128_t wv[4] = { lo16u(lo), hi16u(lo), lo16u(hi), hi16u(hi) };
  return dot32(wv, xq);
#endif
}

// The unsigned legacy types from one block decoder, DECODE(p, lo, hi, d, m): the block at p as 32 unsigned values
// (lo, hi), its scale d and its constant term m (y = q d + m; Q4_0 / Q5_0 store q + 8 / q + 16, so m = -8d / -16d).
// dot_<name>: one weight row against up to NR activation rows. gemv4_<name>: one activation row against 4 weight
// rows (decode, and the rows a 4-row pass leaves): their block sums transposed into one vector (lane j = weight row
// j) and scaled by one vector, the f32 steps of the 1-row path in the same order, so a row's result is the same bits.
#define LEGACY_UNSIGNED(name, bytes, DECODE)                                                    \
  INLINE void dot_##name(DOT_ARGS) {                                                            \
    LEGACY_BEGIN                                                                                \
    for (int b = 0; b < nb; b++) {                                                              \
      const uint8_t *p = w + (bytes) * b;                                                       \
      v128_t lo, hi;                                                                            \
      float d, m;                                                                               \
      DECODE(p, lo, hi, d, m)                                                                   \
      LEGACY_U8(lo, hi, d)                                                                      \
      LEGACY_MINS(m)                                                                            \
    }                                                                                           \
    LEGACY_END                                                                                  \
  }                                                                                             \
  INLINE void gemv4_##name(const uint8_t *w, int rowBytes, const uint8_t *x, int k, float *out) { \
    int nb = k / 32;                                                                            \
    const float *xd = (const float *)(x + QB * k), *xs = xd + nb;                               \
    v128_t acc = wasm_f32x4_splat(0);                                                           \
    for (int b = 0; b < nb; b++) {                                                              \
      v128_t s[4];                                                                              \
      float d[4], m[4];                                                                         \
      UNROLL (int j = 0; j < 4; j++) {                                                          \
        const uint8_t *p = w + (long)j * rowBytes + (bytes) * b;                                \
        v128_t lo, hi;                                                                          \
        DECODE(p, lo, hi, d[j], m[j])                                                           \
        s[j] = udot32(lo, hi, x + QB * 32 * b);                                                 \
        ROW_BARRIER;                                                                            \
      }                                                                                         \
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(reduce4(s[0], s[1], s[2], s[3])), \
                                               wasm_f32x4_mul(wasm_f32x4_make(d[0], d[1], d[2], d[3]), wasm_f32x4_splat(xd[b])))); \
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_make(m[0], m[1], m[2], m[3]), wasm_f32x4_splat(xs[b]))); \
    }                                                                                           \
    wasm_v128_store(out, acc);                                                                  \
  }

// block_q4_0 { half d; uint8 qs[16]; }: low nibbles values 0..15, high nibbles 16..31, y = (q - 8) d.
#define DECODE_Q4_0(p, lo, hi, d, m)                                                            \
  { v128_t v = wasm_v128_load(p + 2); lo = NIBBLES_LO(v); hi = NIBBLES_HI(v); d = f16(rd16(p)); m = -8 * d; }
LEGACY_UNSIGNED(q4_0, 18, DECODE_Q4_0)

// block_q4_1 { half d; half m; uint8 qs[16]; }: y = q * d + m, so x·y = d dx Σ q qx + m sx.
#define DECODE_Q4_1(p, lo, hi, d, m)                                                            \
  { v128_t v = wasm_v128_load(p + 4); lo = NIBBLES_LO(v); hi = NIBBLES_HI(v); d = f16(rd16(p)); m = f16(rd16(p + 2)); }
LEGACY_UNSIGNED(q4_1, 20, DECODE_Q4_1)

// Bit j of qh as 0x10 in byte j: bytes 0..15 of *lo from bits 0..15, of *hi from bits 16..31.
INLINE void q5_high(uint32_t qh, v128_t *lo, v128_t *hi) {
  v128_t q = wasm_i32x4_splat((int32_t)qh);
  const v128_t bits = wasm_u8x16_const(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
  const v128_t b4 = wasm_i8x16_splat(0x10);
  v128_t l = wasm_v128_and(wasm_i8x16_swizzle(q, wasm_i8x16_const(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), bits);
  v128_t h = wasm_v128_and(wasm_i8x16_swizzle(q, wasm_i8x16_const(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)), bits);
  // A set bit leaves its lane equal to `bits` (one compare in V8, where != 0 takes three).
  *lo = wasm_v128_and(wasm_i8x16_eq(l, bits), b4);
  *hi = wasm_v128_and(wasm_i8x16_eq(h, bits), b4);
}

// 5-bit unsigned values of a Q5_0/Q5_1 block (nibbles at qs, high bits qh): values 0..15 in *lo, 16..31 in *hi.
INLINE void fives(const uint8_t *qs, uint32_t qh, v128_t *lo, v128_t *hi) {
  v128_t h0, h1;
  q5_high(qh, &h0, &h1);
  v128_t v = wasm_v128_load(qs);
  *lo = wasm_v128_or(NIBBLES_LO(v), h0);
  *hi = wasm_v128_or(NIBBLES_HI(v), h1);
}

// block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: q = nibble | bit << 4, y = (q - 16) * d.
#define DECODE_Q5_0(p, lo, hi, d, m) { fives(p + 6, rd32(p + 2), &lo, &hi); d = f16(rd16(p)); m = -16 * d; }
LEGACY_UNSIGNED(q5_0, 22, DECODE_Q5_0)

// block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }: y = q * d + m.
#define DECODE_Q5_1(p, lo, hi, d, m) { fives(p + 8, rd32(p + 4), &lo, &hi); d = f16(rd16(p)); m = f16(rd16(p + 2)); }
LEGACY_UNSIGNED(q5_1, 24, DECODE_Q5_1)

// The K-quants: per super-block of 256, isum[r] gathers Σ (scale q) qx as integers, then one f32 step.
#define KQ_BEGIN                                                                                \
  int nb = k / 256;                                                                             \
  (void)tab;                                                                                    \
  ACC_BEGIN
#define KQ_ISUM                                                                                 \
  v128_t isum[NR];                                                                              \
  EACH_ROW (int r = 0; r < NR; r++) isum[r] = wasm_i32x4_splat(0);
// 16 unsigned weights v (bytes below 64) times an integer scale against the activations from value offset `at` of
// block b, into every row's isum. Unsigned, so relaxed SIMD's 8-bit product is exact for them; the signed types
// (Q3_K, Q6_K) store q + offset and take the offset back with KQ_OFFSET.
#if QB == 1
// 8-bit products pairwise into 16 bits (within 2 * 63 * 127), then times the scale pairwise into 32.
#define KQ_U16V(v, scale, at)                                                                   \
  {                                                                                             \
    v128_t wu = (v), sv = (scale);                                              \
    EACH_ROW (int r = 0; r < nr; r++) {                                                         \
      isum[r] = wasm_i32x4_add(isum[r], wasm_i32x4_dot_i16x8(rdot16(wu, ACT(r) + 256 * b + (at)), sv)); \
      ROW_BARRIER;                                                                              \
    }                                                                                           \
  }
// 32 unsigned weights below 32 that share one scale (a Q4_K / Q5_K sub-block): both halves' 8-bit products summed in
// 16 bits (within 4 * 31 * 127) before the one scaling multiply.
#define KQ_U32(v0, v1, scale, at)                                                               \
  {                                                                                             \
    v128_t w0 = (v0), w1 = (v1), sv = (scale);                                  \
    EACH_ROW (int r = 0; r < nr; r++) {                                                         \
      const uint8_t *xv = opaque(ACT(r) + 256 * b + (at));                                      \
      isum[r] = wasm_i32x4_add(isum[r], wasm_i32x4_dot_i16x8(wasm_i16x8_add(rdot16(w0, xv), rdot16(w1, xv + 16)), sv)); \
      ROW_BARRIER;                                                                              \
    }                                                                                           \
  }
#else
// Widened to 16 bits and scaled there (within 63 * 128), then 16-bit products pairwise into 32.
#define KQ_U16V(v, scale, at)                                                                   \
  {                                                                                             \
    v128_t wu = (v), sv = (scale);                                              \
    v128_t wa = wasm_i16x8_mul(lo16u(wu), sv), wb = wasm_i16x8_mul(hi16u(wu), sv);              \
    EACH_ROW (int r = 0; r < nr; r++) {                                                         \
      const uint8_t *xv = ACT(r) + QB * (256 * b + (at));                                       \
      isum[r] = wasm_i32x4_add(isum[r], wasm_i32x4_add(dot8(wa, xv), dot8(wb, xv + 16)));   \
      ROW_BARRIER;                                                                              \
    }                                                                                           \
  }
#define KQ_U32(v0, v1, scale, at) KQ_U16V(v0, scale, at) KQ_U16V(v1, scale, (at) + 16)
#endif
#define KQ_U16(v, scale, at) KQ_U16V(v, wasm_i16x8_splat(scale), at)
// - off * Σ_j scale_j bsum_r[j] into every row's isum: s0, s1 the 16 scales (of values 16j..16j+15) in 16-bit lanes.
#define KQ_OFFSET(off, s0, s1)                                                                  \
  EACH_ROW (int r = 0; r < nr; r++) {                                                           \
    const uint8_t *bs = (const uint8_t *)(Q8K_BSUMS(r) + 16 * b);                               \
    v128_t t = wasm_i32x4_add(wasm_i32x4_dot_i16x8(s0, wasm_v128_load(bs)), wasm_i32x4_dot_i16x8(s1, wasm_v128_load(bs + 16))); \
    isum[r] = wasm_i32x4_sub(isum[r], wasm_i32x4_mul(t, wasm_i32x4_splat(off)));               \
  }
#define KQ_SCALE(d) ACC_ADD(isum, d, XDK)
// - dmin * xd_r * Σ_j m_j bsum_r[j] for every row: ma, mb the mins against bsums 0-7 and 8-15 of block b.
#define KQ_MINS(ma, mb, dmin)                                                                   \
  {                                                                                             \
    v128_t ms[NR];                                                                              \
    EACH_ROW (int r = 0; r < NR; r++) ms[r] = wasm_i32x4_splat(0);                              \
    EACH_ROW (int r = 0; r < nr; r++) {                                                         \
      const uint8_t *bs = (const uint8_t *)(Q8K_BSUMS(r) + 16 * b);                             \
      ms[r] = wasm_i32x4_add(wasm_i32x4_dot_i16x8(ma, wasm_v128_load(bs)), wasm_i32x4_dot_i16x8(mb, wasm_v128_load(bs + 16))); \
    }                                                                                           \
    ACC_ADD(ms, -(dmin), XDK)                                                                   \
  }
#define KQ_END ACC_END

// block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: per 16 values a 4-bit scale (low) and
// min (high); value 128h + 32g + l takes bits 2g..2g+1 of qs[32h + l]. y = d sc q - dmin m.
INLINE void dot_q2_k(DOT_ARGS) {
  const v128_t m2 = wasm_i8x16_splat(3);
  KQ_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 84 * b, *sc = p;
    float d = f16(rd16(p + 80)), dmin = f16(rd16(p + 82));
    // The minimums' term: Σ_j m_j bsum_j per row, two dot products against the 16 mins.
    v128_t mins = NIBBLES_HI(wasm_v128_load(sc));
    KQ_MINS(lo16u(mins), hi16u(mins), dmin)
    KQ_ISUM
    for (int h = 0; h < 2; h++) {
      v128_t q0 = wasm_v128_load(p + 16 + 32 * h), q1 = wasm_v128_load(p + 32 + 32 * h);
      for (int g = 0; g < 4; g++) {
        int j = 8 * h + 2 * g;
        v128_t a = wasm_v128_and(shr_bytes(q0, 2 * g), m2), c = wasm_v128_and(shr_bytes(q1, 2 * g), m2);
        KQ_U16(a, sc[j] & 15, 128 * h + 32 * g)
        KQ_U16(c, sc[j + 1] & 15, 128 * h + 32 * g + 16)
      }
    }
    KQ_SCALE(d)
  }
  KQ_END
}

// Q3_K's 16 six-bit scales in 12 bytes: low nibbles in bytes 0-7, top bit pairs in bytes 8-11; minus 32.
static inline int scale_q3_k(const uint8_t *s, int j) {
  int low = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
  int high = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

// block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: low 2 bits as Q2_K; value i's high
// bit is bit i/32 of hmask[i % 32]; q = low - (high ? 0 : 4) = (low | high << 2) - 4; y = d (scale - 32) q.
INLINE void dot_q3_k(DOT_ARGS) {
  const v128_t m2 = wasm_i8x16_splat(3), one = wasm_i8x16_splat(1);
  KQ_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 110 * b;
    v128_t hm0 = wasm_v128_load(p), hm1 = wasm_v128_load(p + 16);
    int16_t sc[16] __attribute__((aligned(16)));
    UNROLL (int j = 0; j < 16; j++) sc[j] = (int16_t)scale_q3_k(p + 96, j);
    KQ_ISUM
    KQ_OFFSET(4, wasm_v128_load(sc), wasm_v128_load(sc + 8))
    for (int h = 0; h < 2; h++) {
      v128_t q0 = wasm_v128_load(p + 32 + 32 * h), q1 = wasm_v128_load(p + 48 + 32 * h);
      for (int g = 0; g < 4; g++) {
        int m = 4 * h + g;
        v128_t a = wasm_v128_or(wasm_v128_and(shr_bytes(q0, 2 * g), m2), shl_bytes(wasm_v128_and(shr_bytes(hm0, m), one), 2));
        v128_t c = wasm_v128_or(wasm_v128_and(shr_bytes(q1, 2 * g), m2), shl_bytes(wasm_v128_and(shr_bytes(hm1, m), one), 2));
        KQ_U16(a, sc[2 * m], 32 * m)
        KQ_U16(c, sc[2 * m + 1], 32 * m + 16)
      }
    }
    KQ_SCALE(f16(rd16(p + 108)))
  }
  KQ_END
}

// get_scale_min_k4 for all 8 of a block's six-bit scales (bytes 0-7 of the result) and mins (8-15) from their 12 bytes at
// once: ggml's utmp rearrangement.
static inline v128_t scales_mins_k4(const uint8_t *s) {
  uint32_t u0 = rd32(s), u1 = rd32(s + 4), u2 = rd32(s + 8);
  uint32_t sc_hi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
  uint32_t mn_hi = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4);
  return wasm_i32x4_make(u0 & 0x3f3f3f3f, sc_hi, u1 & 0x3f3f3f3f, mn_hi);
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: per 64 values, 32 low nibbles (sub-block
// 2c) then 32 high nibbles (2c + 1). block_q5_K adds qh[32] before qs: value 64c + l takes bit 2c of qh[l],
// 64c + 32 + l bit 2c + 1. y = d sc q - dmin m.
INLINE void dot_q45_k(DOT_ARGS, int five) {
  int size = five ? 176 : 144;
  KQ_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + size * b, *sc = p + 4, *qs = p + (five ? 48 : 16);
    float d = f16(rd16(p)), dmin = f16(rd16(p + 2));
    // The minimums' term: Σ_j m_j (bsum_2j + bsum_2j+1) per row as two dot products against the mins, each
    // repeated for its pair of 16-value sums.
    v128_t sm = scales_mins_k4(sc), m8 = hi16u(sm);
    KQ_MINS(wasm_i16x8_shuffle(m8, m8, 0, 0, 1, 1, 2, 2, 3, 3), wasm_i16x8_shuffle(m8, m8, 4, 4, 5, 5, 6, 6, 7, 7), dmin)
    KQ_ISUM
    const v128_t bit4 = wasm_i8x16_splat(0x10);
    v128_t qh[2] = { wasm_i8x16_splat(0), wasm_i8x16_splat(0) };
    if (five) { qh[0] = wasm_v128_load(p + 16); qh[1] = wasm_v128_load(p + 32); }
    // One sub-block of 32 at a time, 16 values at a time: few vectors live (see ACC_BEGIN).
    for (int c = 0; c < 4; c++) {
      UNROLL (int half = 0; half < 2; half++) {
        const int j = 2 * c + half;
        v128_t scale = wasm_i8x16_swizzle(sm, wasm_i16x8_splat(0xff00 | j)); // byte j in every 16-bit lane (index 255: 0)
        v128_t q[2];
        UNROLL (int i = 0; i < 2; i++) {
          v128_t v = wasm_v128_load(qs + 32 * c + 16 * i);
          q[i] = half ? NIBBLES_HI(v) : NIBBLES_LO(v);
          if (five) {
            int bit = 2 * c + half; // value 64c + 32 half + l takes bit 2c + half of qh[l]
            q[i] = wasm_v128_or(q[i], wasm_v128_and(bit <= 4 ? shl_bytes(qh[i], 4 - bit) : shr_bytes(qh[i], bit - 4), bit4));
          }
        }
        KQ_U32(q[0], q[1], scale, 64 * c + 32 * half)
      }
    }
    KQ_SCALE(d)
  }
  KQ_END
}
INLINE void dot_q4_k(DOT_ARGS) { dot_q45_k(w, x, xStride, k, nr, out, outStride, tab, 0); }
INLINE void dot_q5_k(DOT_ARGS) { dot_q45_k(w, x, xStride, k, nr, out, outStride, tab, 1); }

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: per 128 values, 4 groups of 32 from
// the low/high nibbles of ql[0..63] and bit pairs of qh[0..31]; q = u - 32, u in 0..63; one int8 scale per 16 values
// (scale j for values 16j..16j+15).
INLINE void dot_q6_k(DOT_ARGS) {
  const v128_t m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30);
  KQ_BEGIN
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = w + 210 * b;
    const int8_t *scales = (const int8_t *)(p + 192);
    KQ_ISUM
    v128_t sv = wasm_v128_load(scales), s16[2] = { lo16s(sv), hi16s(sv) };
    KQ_OFFSET(32, s16[0], s16[1])
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
      for (int l = 0; l < 32; l += 16) {
        v128_t a = wasm_v128_load(ql + l), c = wasm_v128_load(ql + 32 + l), hb = wasm_v128_load(qh + l);
        int is = l / 16;
        // Scale j of this half (0-7) in every 16-bit lane: one swizzle of the widened scales.
#define Q6_SCALE(j) wasm_i8x16_swizzle(s16[h], wasm_i16x8_splat((2 * (j)) | (2 * (j) + 1) << 8))
        // Each group of 16 decoded, scaled and met by every row before the next (few vectors live).
        KQ_U16V(wasm_v128_or(wasm_v128_and(a, m4), wasm_v128_and(shl_bytes(hb, 4), m30)), Q6_SCALE(is), 128 * h + l)
        KQ_U16V(wasm_v128_or(wasm_v128_and(c, m4), wasm_v128_and(shl_bytes(hb, 2), m30)), Q6_SCALE(is + 2), 128 * h + l + 32)
        KQ_U16V(wasm_v128_or(NIBBLES_HI(a), wasm_v128_and(hb, m30)), Q6_SCALE(is + 4), 128 * h + l + 64)
        KQ_U16V(wasm_v128_or(NIBBLES_HI(c), wasm_v128_and(shr_bytes(hb, 2), m30)), Q6_SCALE(is + 6), 128 * h + l + 96)
#undef Q6_SCALE
      }
    }
    KQ_SCALE(f16(rd16(p + 208)))
  }
  KQ_END
}

/* ---- matrix product, a range of weight rows ---- */

// out[r * outStride + j] = w_j · x_r for weight rows j in [r0, r1) and activation rows r < n. Float weights: weight rows
// outermost: a row is read from memory once and stays in L1 while every activation row meets it.
#define ROWS(dotfn, xtype)                                                                    \
  for (int j = r0; j < r1; j++) {                                                             \
    const uint8_t *wr = w + (long)j * rowBytes;                                               \
    for (int r = 0; r < n; r++) out[(long)r * outStride + j] = dotfn(wr, (const xtype *)(x + (long)r * xStride), k); \
  }
// Quantized weights: the weight rows in slices of about WEIGHT_SLICE bytes (in L2 while every activation row meets
// them), and within a slice NR activation rows at a time outermost (in L1 while the slice's rows stream), then the
// rest one at a time. Activation groups outermost over the whole matrix were 25% faster at 0.5B's 4,864-wide rows,
// and slower at 1.5B's, whose 7-11 MB matrices then came from memory once per group.
#define WEIGHT_SLICE (256 * 1024)
// Where 4 activation rows do not fit in L1 themselves (rows past ~4K values), a slice is one weight row: it stays
// in L1 instead, and every activation row streams past it (the order of the float products).
#define ACT_L1 32768
#define ROWS_N(dotfn) ROWS_NG(dotfn, 0, gemv4_none)
static inline void gemv4_none(const uint8_t *w, int rowBytes, const uint8_t *x, int k, float *out) { (void)w, (void)rowBytes, (void)x, (void)k, (void)out; }
// GEMV4: whether the type has a 1 x 4 product, gemv4fn (else gemv4_none, never called): the rows a 4-row pass leaves
// (and a decode's one row) meet 4 weight rows at a time. Without 4-row passes (n < NR) a slice is sized for L2 alone.
#define ROWS_NG(dotfn, GEMV4, gemv4fn)                                                        \
  for (int j0 = r0, js = n >= NR && (long)NR * xStride > ACT_L1 ? 1 : rowBytes < WEIGHT_SLICE ? WEIGHT_SLICE / rowBytes : 1; j0 < r1; j0 += js) { \
    int j1 = j0 + js < r1 ? j0 + js : r1, r = 0;                                              \
    for (; r + NR <= n; r += NR) {                                                            \
      const float *tab = groups + (long)(r / NR) * (k / 32) * 8;                              \
      for (int j = j0; j < j1; j++) dotfn(w + (long)j * rowBytes, ACT(r), xStride, k, NR, out + (long)r * outStride + j, outStride, tab); \
    }                                                                                         \
    for (; r < n; r++) {                                                                      \
      int j = j0;                                                                             \
      if (GEMV4) for (; j + 4 <= j1; j += 4) gemv4fn(w + (long)j * rowBytes, rowBytes, ACT(r), k, out + (long)r * outStride + j); \
      for (; j < j1; j++) dotfn(w + (long)j * rowBytes, ACT(r), xStride, k, 1, out + (long)r * outStride + j, outStride, 0); \
    }                                                                                         \
  }

/**
 * x: f32 rows (row stride xStride bytes) for F32/F16/BF16 weights, else the Q8_0 / Q8_K rows quantize_* wrote.
 * Returns 0, or -1 for a type this module has no product for.
 */
EXPORT(matmul_rows) int matmul_rows(int type, const uint8_t *w, int rowBytes, const uint8_t *x, int xStride, int n, int k,
                                    float *out, int outStride, int r0, int r1) {
  const float *groups = q8_0_groups(x, n, k, act_bytes_per_value(type)); // read by the legacy types' products only
  switch (type) {
    case T_F32: ROWS(dot_f32, float); break;
    case T_F16: ROWS(dot_f16, float); break;
    case T_BF16: ROWS(dot_bf16, float); break;
    case T_Q8_0: ROWS_NG(dot_q8_0, 1, gemv4_q8_0); break;
    case T_Q4_0: ROWS_NG(dot_q4_0, 1, gemv4_q4_0); break;
    case T_Q4_1: ROWS_NG(dot_q4_1, 1, gemv4_q4_1); break;
    case T_Q5_0: ROWS_NG(dot_q5_0, 1, gemv4_q5_0); break;
    case T_Q5_1: ROWS_NG(dot_q5_1, 1, gemv4_q5_1); break;
    case T_Q2_K: ROWS_N(dot_q2_k); break;
    case T_Q3_K: ROWS_N(dot_q3_k); break;
    case T_Q4_K: ROWS_N(dot_q4_k); break;
    case T_Q5_K: ROWS_N(dot_q5_k); break;
    case T_Q6_K: ROWS_N(dot_q6_k); break;
    default: return -1;
  }
  return 0;
}
