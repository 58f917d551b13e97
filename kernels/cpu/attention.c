// The CPU backend's softmax attention in WebAssembly SIMD128 (src/engine/backend/wasm/wasmBackend.ts runs it).
//
// One work item is one (query row, head): an online softmax over every source's visible keys, a tile of keys at a
// time (scores of the tile, one rescale of the running sum and output per tile, not per key), q·k and the weighted
// V sum vectorized over headDim. Items are numbered head-major (item = h * rows + r), so the contiguous range a
// thread takes reads few KV heads and they stay in cache. f32 throughout; the log of the sum is left to the caller
// (it writes the running max and sum), so the module needs no log.
//
// No globals, no libc: several instances (threads) share one memory (see matmul.c).
#include <stdint.h>
#include <wasm_simd128.h>
#include "simd_math.h"

#define EXPORT(name) __attribute__((export_name(#name)))

/** Keys scored per tile: the rescale of the running output is paid once per tile. */
#define TILE 64
/** Widest head the stack accumulator holds. */
#define MAX_HEAD_DIM 512

// One KV source, as the caller writes it (int32 fields): addresses of K and V (rows of `width` floats), entries
// [0, length) valid; causal != 0: query row r sees entries j <= offset + r; rowCount >= 0: only query rows
// [rowStart, rowStart + rowCount) see it.
typedef struct {
  int32_t k, v, width, length, causal, offset, rowStart, rowCount;
} Source;

// The job: q rows (row stride qStride floats), sources, shape, out rows (stride outStride floats), and per
// (row, head) the running max and sum at ml[2 * (r * nHeads + h)].
typedef struct {
  int32_t q, qStride, sources, nSources, nHeads, nKvHeads, headDim, out, outStride, ml, rows;
} Job;

static inline float dot(const float *a, const float *b, int n) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = madd(wasm_v128_load(a + i), wasm_v128_load(b + i), s0);
    s1 = madd(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4), s1);
  }
  if (i + 4 <= n) { s0 = madd(wasm_v128_load(a + i), wasm_v128_load(b + i), s0); i += 4; }
  float s = hsum(wasm_f32x4_add(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Lane k of the result: the sum of the lanes of a, b, c, d (k = 0..3), each added as dot()'s hsum adds them
// ((x0 + x1) + (x2 + x3)), so 4 scores at once are the bits of 4 dot() calls.
static inline v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 2, 6), wasm_i32x4_shuffle(a, b, 1, 5, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 2, 6), wasm_i32x4_shuffle(c, d, 1, 5, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// q · k_j for 4 keys k_j = K + j * width (n a multiple of 8), q's vectors loaded once for all 4: the sums of dot().
static inline v128_t dot4(const float *q, const float *K, int width, int n) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
  const float *k0 = K, *k1 = K + width, *k2 = K + 2L * width, *k3 = K + 3L * width;
  for (int i = 0; i < n; i += 8) {
    v128_t q0 = wasm_v128_load(q + i), q1 = wasm_v128_load(q + i + 4);
    a0 = madd(q0, wasm_v128_load(k0 + i), a0);
    a1 = madd(q1, wasm_v128_load(k0 + i + 4), a1);
    b0 = madd(q0, wasm_v128_load(k1 + i), b0);
    b1 = madd(q1, wasm_v128_load(k1 + i + 4), b1);
    c0 = madd(q0, wasm_v128_load(k2 + i), c0);
    c1 = madd(q1, wasm_v128_load(k2 + i + 4), c1);
    d0 = madd(q0, wasm_v128_load(k3 + i), d0);
    d1 = madd(q1, wasm_v128_load(k3 + i + 4), d1);
  }
  return hsum4(wasm_f32x4_add(a0, a1), wasm_f32x4_add(b0, b1), wasm_f32x4_add(c0, c1), wasm_f32x4_add(d0, d1));
}

// acc = acc * c + Σ_j p[j] v_j over the t rows v_j = V + j * width and n values: 16 values of acc stay in registers
// while every row of the tile passes (then 4, then 1), in the order of one row at a time (acc * c first, then each
// p[j] v_j in turn), so the bits do not depend on the blocking.
static inline void scale_add_tile(float *acc, float c, const float *p, const float *V, int width, int t, int n) {
  const v128_t cv = wasm_f32x4_splat(c);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t a0 = wasm_f32x4_mul(wasm_v128_load(acc + i), cv), a1 = wasm_f32x4_mul(wasm_v128_load(acc + i + 4), cv);
    v128_t a2 = wasm_f32x4_mul(wasm_v128_load(acc + i + 8), cv), a3 = wasm_f32x4_mul(wasm_v128_load(acc + i + 12), cv);
    for (int j = 0; j < t; j++) {
      const float *v = V + (long)j * width + i;
      v128_t pv = wasm_f32x4_splat(p[j]);
      a0 = madd(pv, wasm_v128_load(v), a0);
      a1 = madd(pv, wasm_v128_load(v + 4), a1);
      a2 = madd(pv, wasm_v128_load(v + 8), a2);
      a3 = madd(pv, wasm_v128_load(v + 12), a3);
    }
    wasm_v128_store(acc + i, a0);
    wasm_v128_store(acc + i + 4, a1);
    wasm_v128_store(acc + i + 8, a2);
    wasm_v128_store(acc + i + 12, a3);
  }
  for (; i + 4 <= n; i += 4) {
    v128_t a = wasm_f32x4_mul(wasm_v128_load(acc + i), cv);
    for (int j = 0; j < t; j++) a = madd(wasm_f32x4_splat(p[j]), wasm_v128_load(V + (long)j * width + i), a);
    wasm_v128_store(acc + i, a);
  }
  for (; i < n; i++) {
    float a = acc[i] * c;
    for (int j = 0; j < t; j++) a += p[j] * V[(long)j * width + i];
    acc[i] = a;
  }
}

/** Entries of `s` query row r sees (row restriction, then the causal mask), as the JS reference's visibleEntries. */
static inline int visible(const Source *s, int r) {
  if (s->rowCount >= 0 && (r < s->rowStart || r >= s->rowStart + s->rowCount)) return 0;
  if (!s->causal) return s->length;
  int n = s->offset + r + 1;
  return n < 0 ? 0 : n > s->length ? s->length : n;
}

/** Items [i0, i1) of the job at `job` (item = h * rows + r). Returns -1 if headDim exceeds MAX_HEAD_DIM. */
EXPORT(attention_items) int attention_items(const Job *job, int i0, int i1) {
  const int hd = job->headDim, rows = job->rows, nHeads = job->nHeads, group = nHeads / job->nKvHeads;
  if (hd > MAX_HEAD_DIM) return -1;
  const float scale = 1.0f / __builtin_sqrtf((float)hd);
  const Source *sources = (const Source *)(uintptr_t)job->sources;
  float acc[MAX_HEAD_DIM] __attribute__((aligned(16)));
  float s[TILE] __attribute__((aligned(16)));
  for (int item = i0; item < i1; item++) {
    const int h = item / rows, r = item % rows, kvOff = (h / group) * hd;
    const float *q = (const float *)(uintptr_t)job->q + (long)r * job->qStride + h * hd;
    float m = -__builtin_inff(), l = 0;
    for (int d = 0; d < hd; d++) acc[d] = 0;
    for (int si = 0; si < job->nSources; si++) {
      const Source *src = sources + si;
      const int n = visible(src, r), width = src->width;
      const float *K = (const float *)(uintptr_t)src->k + kvOff, *V = (const float *)(uintptr_t)src->v + kvOff;
      for (int j0 = 0; j0 < n; j0 += TILE) {
        const int t = n - j0 < TILE ? n - j0 : TILE;
        float tm = -__builtin_inff();
        int j = 0;
        if (hd % 8 == 0) {
          v128_t tmv = wasm_f32x4_splat(-__builtin_inff());
          for (; j + 4 <= t; j += 4) {
            v128_t sc = wasm_f32x4_mul(dot4(q, K + (long)(j0 + j) * width, width, hd), wasm_f32x4_splat(scale));
            wasm_v128_store(s + j, sc);
            tmv = wasm_f32x4_pmax(tmv, sc);
          }
          float t0 = wasm_f32x4_extract_lane(tmv, 0), t1 = wasm_f32x4_extract_lane(tmv, 1);
          float t2 = wasm_f32x4_extract_lane(tmv, 2), t3 = wasm_f32x4_extract_lane(tmv, 3);
          t0 = t1 > t0 ? t1 : t0; t2 = t3 > t2 ? t3 : t2; tm = t2 > t0 ? t2 : t0;
        }
        for (; j < t; j++) {
          float v = dot(q, K + (long)(j0 + j) * width, hd) * scale;
          s[j] = v;
          tm = v > tm ? v : tm;
        }
        // A new maximum rescales what was summed so far; the first tile has nothing to rescale (m = -inf).
        float c = 1.0f;
        if (tm > m) {
          c = m == -__builtin_inff() ? 0.0f : exp_f32(m - tm);
          m = tm;
        }
        j = 0;
        v128_t mv = wasm_f32x4_splat(m), ls = wasm_f32x4_splat(0);
        for (; j + 4 <= t; j += 4) {
          v128_t p = exp_f32x4(wasm_f32x4_sub(wasm_v128_load(s + j), mv));
          wasm_v128_store(s + j, p);
          ls = wasm_f32x4_add(ls, p);
        }
        float tl = hsum(ls);
        for (; j < t; j++) { s[j] = exp_f32(s[j] - m); tl += s[j]; }
        l = l * c + tl;
        scale_add_tile(acc, c, s, V + (long)j0 * width, width, t, hd);
      }
    }
    float *o = (float *)(uintptr_t)job->out + (long)r * job->outStride + h * hd;
    float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int d = 0; d < hd; d++) o[d] = acc[d] * inv;
    float *ml = (float *)(uintptr_t)job->ml + 2 * ((long)r * nHeads + h);
    ml[0] = m;
    ml[1] = l;
  }
  return 0;
}
