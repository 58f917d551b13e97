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
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
  }
  if (i + 4 <= n) { s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i))); i += 4; }
  float s = hsum(wasm_f32x4_add(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// acc = acc * c + p * v over n values.
static inline void scale_add(float *acc, float c, float p, const float *v, int n) {
  v128_t cv = wasm_f32x4_splat(c), pv = wasm_f32x4_splat(p);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(acc + i, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(acc + i), cv), wasm_f32x4_mul(pv, wasm_v128_load(v + i))));
  for (; i < n; i++) acc[i] = acc[i] * c + p * v[i];
}

static inline void add_scaled(float *acc, float p, const float *v, int n) {
  v128_t pv = wasm_f32x4_splat(p);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(acc + i, wasm_f32x4_add(wasm_v128_load(acc + i), wasm_f32x4_mul(pv, wasm_v128_load(v + i))));
  for (; i < n; i++) acc[i] += p * v[i];
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
        for (int j = 0; j < t; j++) {
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
        int j = 0;
        v128_t mv = wasm_f32x4_splat(m), ls = wasm_f32x4_splat(0);
        for (; j + 4 <= t; j += 4) {
          v128_t p = exp_f32x4(wasm_f32x4_sub(wasm_v128_load(s + j), mv));
          wasm_v128_store(s + j, p);
          ls = wasm_f32x4_add(ls, p);
        }
        float tl = hsum(ls);
        for (; j < t; j++) { s[j] = exp_f32(s[j] - m); tl += s[j]; }
        l = l * c + tl;
        const float *vr = V + (long)j0 * width;
        scale_add(acc, c, s[0], vr, hd);
        for (j = 1; j < t; j++) add_scaled(acc, s[j], vr + (long)j * width, hd);
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
