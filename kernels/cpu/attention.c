// The CPU backend's softmax attention in WebAssembly SIMD128 (src/engine/backend/wasm/wasmBackend.ts runs it).
//
// One work item is one (query row, head): an online softmax over every source's visible keys, a tile of keys at a
// time (scores of the tile, one rescale of the running sum and output per tile, not per key), q·k and the weighted
// V sum vectorized over headDim. Items are numbered head-major (item = h * rows + r), so the contiguous range a
// thread takes reads few KV heads and they stay in cache, and two rows of one head run together where they can,
// each K and V load serving both (one row alone is bound by those loads: two ran 1.8x the rate of one, and a
// 256-row prefill's attention 1.36x faster). f32 throughout; the log of the sum is left to the caller
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

// A score q · k: one vector accumulator over headDim 4 values at a time (fused multiply-adds in the relaxed build),
// its lanes summed as hsum() sums them, then any values past the last multiple of 4 one by one. Every path below
// (8 keys at once, two query rows at once, one key: a partial tile's last keys) computes each score in exactly this order, so a score's bits
// do not depend on how keys or rows were grouped, nor on the thread split.
static inline float score1(const float *q, const float *k, int n) {
  v128_t a = wasm_f32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) a = madd(wasm_v128_load(q + i), wasm_v128_load(k + i), a);
  float s = hsum(a);
  for (; i < n; i++) s += q[i] * k[i];
  return s;
}

// Lane k of the result: the sum of the lanes of a, b, c, d (k = 0..3), each added as hsum() adds them
// ((x0 + x1) + (x2 + x3)), so 4 scores at once are the bits of 4 score1() calls.
static inline v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 2, 6), wasm_i32x4_shuffle(a, b, 1, 5, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 2, 6), wasm_i32x4_shuffle(c, d, 1, 5, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

#define KEY(j) (K + (long)(j) * width)
// q · k_j for keys j = 0..7 at K (n a multiple of 4): 8 chains of multiply-adds, enough for one row to keep the
// multiply-add units busy; lo: keys 0-3, hi: 4-7.
static inline void dot8(const float *q, const float *K, int width, int n, v128_t *lo, v128_t *hi) {
  v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a, e = a, f = a, g = a, h = a;
  for (int i = 0; i < n; i += 4) {
    v128_t qv = wasm_v128_load(q + i);
    a = madd(qv, wasm_v128_load(KEY(0) + i), a);
    b = madd(qv, wasm_v128_load(KEY(1) + i), b);
    c = madd(qv, wasm_v128_load(KEY(2) + i), c);
    d = madd(qv, wasm_v128_load(KEY(3) + i), d);
    e = madd(qv, wasm_v128_load(KEY(4) + i), e);
    f = madd(qv, wasm_v128_load(KEY(5) + i), f);
    g = madd(qv, wasm_v128_load(KEY(6) + i), g);
    h = madd(qv, wasm_v128_load(KEY(7) + i), h);
  }
  *lo = hsum4(a, b, c, d);
  *hi = hsum4(e, f, g, h);
}

// Two query rows q, p against keys 0..3 (8 chains; each key's 4 loads serve both rows).
static inline void dot4x2(const float *q, const float *p, const float *K, int width, int n, v128_t *sq, v128_t *sp) {
  v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a, e = a, f = a, g = a, h = a;
  for (int i = 0; i < n; i += 4) {
    v128_t qv = wasm_v128_load(q + i), pv = wasm_v128_load(p + i);
    v128_t k0 = wasm_v128_load(KEY(0) + i), k1 = wasm_v128_load(KEY(1) + i);
    a = madd(qv, k0, a);
    e = madd(pv, k0, e);
    b = madd(qv, k1, b);
    f = madd(pv, k1, f);
    v128_t k2 = wasm_v128_load(KEY(2) + i), k3 = wasm_v128_load(KEY(3) + i);
    c = madd(qv, k2, c);
    g = madd(pv, k2, g);
    d = madd(qv, k3, d);
    h = madd(pv, k3, h);
  }
  *sq = hsum4(a, b, c, d);
  *sp = hsum4(e, f, g, h);
}
#undef KEY

// The largest lane (scores are never NaN).
static inline float hmax(v128_t v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  a = b > a ? b : a;
  c = d > c ? d : c;
  return c > a ? c : a;
}

// s[j] = scale * q · k_j for the t keys at K; returns their maximum.
static inline float tile_scores(const float *q, const float *K, int width, int hd, int t, float scale, float *s) {
  const v128_t sv = wasm_f32x4_splat(scale);
  v128_t mv = wasm_f32x4_splat(-__builtin_inff());
  int j = 0;
  if (hd % 4 == 0) {
    for (; j + 8 <= t; j += 8) {
      v128_t lo, hi;
      dot8(q, K + (long)j * width, width, hd, &lo, &hi);
      lo = wasm_f32x4_mul(lo, sv);
      hi = wasm_f32x4_mul(hi, sv);
      wasm_v128_store(s + j, lo);
      wasm_v128_store(s + j + 4, hi);
      mv = wasm_f32x4_pmax(mv, wasm_f32x4_pmax(lo, hi));
    }
  }
  float tm = hmax(mv);
  for (; j < t; j++) {
    s[j] = score1(q, K + (long)j * width, hd) * scale;
    tm = s[j] > tm ? s[j] : tm;
  }
  return tm;
}

// One query row's online-softmax state: running max m, sum l, and the unnormalized output acc[headDim].
typedef struct {
  float m, l;
  float *acc;
} Row;

// The tile's scores s[0..t) (maximum tm) into weights in place: a new maximum rescales what was summed so far (the
// first tile has nothing to rescale, m = -inf); returns that rescale factor c (acc is to become acc * c + Σ s_j v_j).
static inline float tile_softmax(Row *row, float *s, int t, float tm) {
  float c = 1.0f;
  if (tm > row->m) {
    c = row->m == -__builtin_inff() ? 0.0f : exp_f32(row->m - tm);
    row->m = tm;
  }
  int j = 0;
  v128_t mv = wasm_f32x4_splat(row->m), ls = wasm_f32x4_splat(0);
  for (; j + 4 <= t; j += 4) {
    v128_t p = exp_f32x4(wasm_f32x4_sub(wasm_v128_load(s + j), mv));
    wasm_v128_store(s + j, p);
    ls = wasm_f32x4_add(ls, p);
  }
  float tl = hsum(ls);
  for (; j < t; j++) { s[j] = exp_f32(s[j] - row->m); tl += s[j]; }
  row->l = row->l * c + tl;
  return c;
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

// The same for two rows over one tile's V rows (each V load serves both), 8 values of each row's acc in registers;
// every value of each row takes the steps scale_add_tile gives it.
static inline void scale_add_tile2(float *acc, float c, const float *p, float *bcc, float d, const float *q, const float *V,
                                   int width, int t, int n) {
  const v128_t cv = wasm_f32x4_splat(c), dv = wasm_f32x4_splat(d);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    v128_t a0 = wasm_f32x4_mul(wasm_v128_load(acc + i), cv), a1 = wasm_f32x4_mul(wasm_v128_load(acc + i + 4), cv);
    v128_t b0 = wasm_f32x4_mul(wasm_v128_load(bcc + i), dv), b1 = wasm_f32x4_mul(wasm_v128_load(bcc + i + 4), dv);
    for (int j = 0; j < t; j++) {
      const float *v = V + (long)j * width + i;
      v128_t v0 = wasm_v128_load(v), v1 = wasm_v128_load(v + 4);
      v128_t pv = wasm_f32x4_splat(p[j]), qv = wasm_f32x4_splat(q[j]);
      a0 = madd(pv, v0, a0);
      b0 = madd(qv, v0, b0);
      a1 = madd(pv, v1, a1);
      b1 = madd(qv, v1, b1);
    }
    wasm_v128_store(acc + i, a0);
    wasm_v128_store(acc + i + 4, a1);
    wasm_v128_store(bcc + i, b0);
    wasm_v128_store(bcc + i + 4, b1);
  }
  if (i < n) {
    scale_add_tile(acc + i, c, p, V + i, width, t, n - i);
    scale_add_tile(bcc + i, d, q, V + i, width, t, n - i);
  }
}

// One row's tiles of keys [from, n) (from a multiple of TILE): scores, softmax, V sum, a tile at a time.
static void row_tiles(Row *row, const float *q, const float *K, const float *V, int width, int hd, float scale, int from, int n, float *s) {
  for (int j0 = from; j0 < n; j0 += TILE) {
    const int t = n - j0 < TILE ? n - j0 : TILE;
    float tm = tile_scores(q, K + (long)j0 * width, width, hd, t, scale, s);
    float c = tile_softmax(row, s, t, tm);
    scale_add_tile(row->acc, c, s, V + (long)j0 * width, width, t, hd);
  }
}

// Two rows' whole tiles of keys [0, n) (n a multiple of TILE): the same steps for each row as row_tiles, each K and
// V load serving both rows.
static void pair_tiles(Row *ra, const float *qa, Row *rb, const float *qb, const float *K, const float *V, int width, int hd,
                       float scale, int n, float *sa, float *sb) {
  const v128_t sv = wasm_f32x4_splat(scale);
  for (int j0 = 0; j0 < n; j0 += TILE) {
    v128_t ma = wasm_f32x4_splat(-__builtin_inff()), mb = ma;
    for (int j = 0; j < TILE; j += 4) {
      v128_t x, y;
      dot4x2(qa, qb, K + (long)(j0 + j) * width, width, hd, &x, &y);
      x = wasm_f32x4_mul(x, sv);
      y = wasm_f32x4_mul(y, sv);
      wasm_v128_store(sa + j, x);
      wasm_v128_store(sb + j, y);
      ma = wasm_f32x4_pmax(ma, x);
      mb = wasm_f32x4_pmax(mb, y);
    }
    float c = tile_softmax(ra, sa, TILE, hmax(ma));
    float d = tile_softmax(rb, sb, TILE, hmax(mb));
    scale_add_tile2(ra->acc, c, sa, rb->acc, d, sb, V + (long)j0 * width, width, TILE, hd);
  }
}

/** Entries of `s` query row r sees (row restriction, then the causal mask), as the JS reference's visibleEntries. */
static inline int visible(const Source *s, int r) {
  if (s->rowCount >= 0 && (r < s->rowStart || r >= s->rowStart + s->rowCount)) return 0;
  if (!s->causal) return s->length;
  int n = s->offset + r + 1;
  return n < 0 ? 0 : n > s->length ? s->length : n;
}

/**
 * Items [i0, i1) of the job at `job` (item = h * rows + r). Returns -1 if headDim exceeds MAX_HEAD_DIM.
 * Items of one head and rows r, r + 1 run as a pair where both are in the range: their keys' whole tiles that both
 * rows see, jointly (pair_tiles), the rest of each row alone. A row's results are the same bits either way.
 */
EXPORT(attention_items) int attention_items(const Job *job, int i0, int i1) {
  const int hd = job->headDim, rows = job->rows, nHeads = job->nHeads, group = nHeads / job->nKvHeads;
  if (hd > MAX_HEAD_DIM) return -1;
  const float scale = 1.0f / __builtin_sqrtf((float)hd);
  const Source *sources = (const Source *)(uintptr_t)job->sources;
  float acc[2][MAX_HEAD_DIM] __attribute__((aligned(16)));
  float s[2][TILE] __attribute__((aligned(16)));
  for (int item = i0; item < i1;) {
    const int h = item / rows, r = item % rows, kvOff = (h / group) * hd;
    const int pair = hd % 4 == 0 && item + 1 < i1 && r + 1 < rows; // the next item: same head, row r + 1
    const int nr = pair ? 2 : 1;
    const float *q[2];
    Row st[2];
    for (int u = 0; u < nr; u++) {
      q[u] = (const float *)(uintptr_t)job->q + (long)(r + u) * job->qStride + h * hd;
      st[u].m = -__builtin_inff();
      st[u].l = 0;
      st[u].acc = acc[u];
      for (int d = 0; d < hd; d++) acc[u][d] = 0;
    }
    for (int si = 0; si < job->nSources; si++) {
      const Source *src = sources + si;
      const int width = src->width;
      const float *K = (const float *)(uintptr_t)src->k + kvOff, *V = (const float *)(uintptr_t)src->v + kvOff;
      int n[2] = { visible(src, r), pair ? visible(src, r + 1) : 0 };
      int joint = 0;
      if (pair) {
        joint = (n[0] < n[1] ? n[0] : n[1]) / TILE * TILE;
        pair_tiles(&st[0], q[0], &st[1], q[1], K, V, width, hd, scale, joint, s[0], s[1]);
      }
      for (int u = 0; u < nr; u++) row_tiles(&st[u], q[u], K, V, width, hd, scale, joint, n[u], s[u]);
    }
    for (int u = 0; u < nr; u++) {
      float *o = (float *)(uintptr_t)job->out + (long)(r + u) * job->outStride + h * hd;
      float inv = st[u].l > 0 ? 1.0f / st[u].l : 0.0f;
      for (int d = 0; d < hd; d++) o[d] = acc[u][d] * inv;
      float *ml = (float *)(uintptr_t)job->ml + 2 * ((long)(r + u) * nHeads + h);
      ml[0] = st[u].m;
      ml[1] = st[u].l;
    }
    item += nr;
  }
  return 0;
}
