/* The Gram matrix of packed f32 data by an AVX-512 kernel (see gram_f32.h). */
#include "gram_f32.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VL_GRAM_X86 1
#endif

enum { W = VL_GRAM_PANEL, TILE = VL_GRAM_TILE }; /* a tile: TILE Gram rows x W Gram columns */

bool vl_gram_f32_available(void) {
#ifdef VL_GRAM_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f"); /* libgcc also checks the OS saves zmm (XCR0) */
#else
  return false;
#endif
}

int64_t vl_gram_f32_packed_size(int64_t rows, int64_t g) {
  return (g + W - 1) / W * rows * W;
}

#ifdef VL_GRAM_X86
/* acc (TILE x W doubles) += the sum over the rows of a[r, 0..TILE) x b[r, 0..W), where row r
 * of a and b starts at a + r lda and b + r W: per slice of VL_GRAM_SLICE rows sixteen f32
 * registers (TILE rows x two halves of W), each value broadcast from a once, then widened and
 * added to acc in double. */
__attribute__((target("avx512f"))) static void tile_sum(const float *a, int64_t lda,
                                                        const float *b, int64_t rows,
                                                        double *acc) {
  for (int64_t s = 0; s < rows; s += VL_GRAM_SLICE) {
    const int64_t e = s + VL_GRAM_SLICE < rows ? s + VL_GRAM_SLICE : rows;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00;
    for (int64_t r = s; r < e; r++) {
      const float *ar = a + r * lda, *br = b + r * W;
      const __m512 b0 = _mm512_loadu_ps(br), b1 = _mm512_loadu_ps(br + 16);
      __m512 x;
#define VL_GRAM_ROW(t)                    \
  x = _mm512_set1_ps(ar[t]);              \
  c##t##0 = _mm512_fmadd_ps(x, b0, c##t##0); \
  c##t##1 = _mm512_fmadd_ps(x, b1, c##t##1);
      VL_GRAM_ROW(0)
      VL_GRAM_ROW(1)
      VL_GRAM_ROW(2)
      VL_GRAM_ROW(3)
      VL_GRAM_ROW(4)
      VL_GRAM_ROW(5)
      VL_GRAM_ROW(6)
      VL_GRAM_ROW(7)
#undef VL_GRAM_ROW
    }
    const __m512 sums[TILE][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                                  {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    for (int t = 0; t < TILE; t++)
      for (int h = 0; h < 2; h++) {
        double *o = acc + t * W + h * 16;
        const __m512 v = sums[t][h];
        const __m256 lo = _mm512_castps512_ps256(v),
                     hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        _mm512_storeu_pd(o, _mm512_add_pd(_mm512_loadu_pd(o), _mm512_cvtps_pd(lo)));
        _mm512_storeu_pd(o + 8, _mm512_add_pd(_mm512_loadu_pd(o + 8), _mm512_cvtps_pd(hi)));
      }
  }
}
#endif

void vl_gram_f32_tile(const float *a, int64_t lda, const float *b, int64_t rows, double *acc) {
#ifdef VL_GRAM_X86
  memset(acc, 0, sizeof(double) * TILE * W);
  tile_sum(a, lda, b, rows, acc);
#else
  (void)a;
  (void)lda;
  (void)b;
  (void)rows;
  memset(acc, 0, sizeof(double) * TILE * W);
#endif
}

typedef struct {
  const float *P;
  int64_t rows, g, panels;
  double *G;
  bool assign;
} gram_job;

/* one panel of Gram columns [j0, j0 + W) (the largest first): its tiles of rows i <= j */
static void panel_columns(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)lo;
  (void)hi;
#ifdef VL_GRAM_X86
  gram_job *j = arg;
  const int64_t jp = j->panels - 1 - chunk, j0 = jp * W, g = j->g, rows = j->rows;
  const int64_t iend = j0 + W < g ? j0 + W : g;
  const float *b = j->P + jp * rows * W;
  double acc[TILE * W];
  for (int64_t i0 = 0; i0 < iend; i0 += TILE) {
    memset(acc, 0, sizeof acc);
    tile_sum(j->P + ((i0 / W) * rows) * W + i0 % W, W, b, rows, acc);
    for (int64_t t = 0; t < TILE && i0 + t < iend; t++) {
      const int64_t i = i0 + t, c0 = i > j0 ? i - j0 : 0, c1 = g - j0 < W ? g - j0 : W;
      double *gi = j->G + i * g + j0;
      const double *at = acc + t * W;
      if (j->assign)
        for (int64_t c = c0; c < c1; c++) gi[c] = at[c];
      else
        for (int64_t c = c0; c < c1; c++) gi[c] += at[c];
    }
  }
#else
  (void)chunk;
  (void)arg;
#endif
}

vl_status vl_gram_f32_add(vl_ctx *ctx, const float *P, int64_t rows, int64_t g, double *G,
                          bool assign) {
  if (rows <= 0 || g <= 0) return VL_OK;
  gram_job j = {P, rows, g, (g + W - 1) / W, G, assign};
  return vl_parallel_blocks(ctx, j.panels, 1, panel_columns, &j);
}
