/* Trustworthiness of an embedding, exact (see trustworthiness.h). Rows are taken in tiles of
 * TILE: their distances to all points in X are accumulated coordinate by coordinate over
 * column blocks held in cache (a vectorisable loop over points), then each row finds its k
 * embedding neighbours with a bounded max-heap and ranks them by one pass over its distances. */
#include "trustworthiness.h"
#include "clones.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a * b + c stays two roundings in both builds of the VL_CLONES functions (no FMA) */
#pragma GCC optimize("fp-contract=off")


enum { TILE = 8, LBLOCK = 512 };

typedef struct {
  const double *X, *XT, *Y;
  int64_t n, dx, dy, k;
  int64_t *penalty; /* per row */
  int failed;       /* set (by any thread) when scratch memory could not be had */
} tw_job;

/* (d, i) < (e, j) lexicographically: ties in distance go to the lower index */
static inline int key_less(double d, int64_t i, double e, int64_t j) {
  return d < e || (d == e && i < j);
}

/* squared distances of rows r0 .. r0 + nt - 1 of X to every point, D[t * n + l] */
VL_CLONES static void tile_distances(const tw_job *j, int64_t r0, int64_t nt, double *D) {
  const int64_t n = j->n, dx = j->dx;
  for (int64_t l0 = 0; l0 < n; l0 += LBLOCK) {
    const int64_t l1 = l0 + LBLOCK < n ? l0 + LBLOCK : n;
    for (int64_t t = 0; t < nt; t++) memset(D + t * n + l0, 0, sizeof(double) * (size_t)(l1 - l0));
    for (int64_t c = 0; c < dx; c++) {
      const double *xt = j->XT + c * n;
      for (int64_t t = 0; t < nt; t++) {
        const double xi = j->X[(r0 + t) * dx + c];
        double *d = D + t * n;
        for (int64_t l = l0; l < l1; l++) {
          const double v = xi - xt[l];
          d[l] += v * v;
        }
      }
    }
  }
}

/* max-heap of (dist, index) pairs, the largest key at the root */
static void heap_sift_down(double *hd, int64_t *hi, int64_t size, int64_t p) {
  for (;;) {
    int64_t c = 2 * p + 1;
    if (c >= size) return;
    if (c + 1 < size && key_less(hd[c], hi[c], hd[c + 1], hi[c + 1])) c++;
    if (!key_less(hd[p], hi[p], hd[c], hi[c])) return;
    double td = hd[p];
    hd[p] = hd[c];
    hd[c] = td;
    int64_t ti = hi[p];
    hi[p] = hi[c];
    hi[c] = ti;
    p = c;
  }
}

static void heap_sift_up(double *hd, int64_t *hi, int64_t p) {
  while (p > 0) {
    int64_t q = (p - 1) / 2;
    if (!key_less(hd[q], hi[q], hd[p], hi[p])) return;
    double td = hd[p];
    hd[p] = hd[q];
    hd[q] = td;
    int64_t ti = hi[p];
    hi[p] = hi[q];
    hi[q] = ti;
    p = q;
  }
}

/* the penalty of row i: D holds its squared distances in X (D[i] ignored) */
static int64_t row_penalty(const tw_job *j, int64_t i, double *D, double *hd, int64_t *hix,
                           double *td, int64_t *tix, int64_t *hist) {
  const int64_t n = j->n, k = j->k, dy = j->dy;
  const double *yi = j->Y + i * dy;
  /* k nearest in Y, self excluded */
  int64_t size = 0;
  for (int64_t l = 0; l < n; l++) {
    if (l == i) continue;
    const double *yl = j->Y + l * dy;
    double s = 0;
    for (int64_t c = 0; c < dy; c++) {
      const double v = yi[c] - yl[c];
      s += v * v;
    }
    if (size < k) {
      hd[size] = s;
      hix[size] = l;
      heap_sift_up(hd, hix, size);
      size++;
    } else if (key_less(s, l, hd[0], hix[0])) {
      hd[0] = s;
      hix[0] = l;
      heap_sift_down(hd, hix, size, 0);
    }
  }
  /* their keys in X, sorted ascending (insertion sort: k is small next to n) */
  for (int64_t m = 0; m < k; m++) {
    double d = D[hix[m]];
    int64_t ix = hix[m], p = m;
    while (p > 0 && key_less(d, ix, td[p - 1], tix[p - 1])) {
      td[p] = td[p - 1];
      tix[p] = tix[p - 1];
      p--;
    }
    td[p] = d;
    tix[p] = ix;
  }
  /* hist[r] = number of points l (not i) with exactly r targets at or below (D[l], l) */
  memset(hist, 0, sizeof(int64_t) * (size_t)(k + 1));
  const double top = td[k - 1];
  for (int64_t l = 0; l < n; l++) {
    if (l == i) continue;
    const double d = D[l];
    if (d > top) continue; /* above every target: counts for none of them */
    int64_t lo = 0, hi = k; /* first target above (d, l) */
    while (lo < hi) {
      int64_t mid = (lo + hi) >> 1;
      if (key_less(d, l, td[mid], tix[mid])) hi = mid;
      else lo = mid + 1;
    }
    hist[lo]++;
  }
  /* rank of target m = 1 + #{l : (D[l], l) < target m} = 1 + sum_{r <= m} hist[r] */
  int64_t below = 0, pen = 0;
  for (int64_t m = 0; m < k; m++) {
    below += hist[m];
    const int64_t rank = below + 1;
    if (rank > k) pen += rank - k;
  }
  return pen;
}

static void tiles(int64_t lo, int64_t hi, int chunk, void *arg) {
  tw_job *j = arg;
  const int64_t n = j->n, k = j->k;
  double *D = malloc(sizeof(double) * (size_t)(TILE * n));
  double *hd = malloc(sizeof(double) * (size_t)k), *td = malloc(sizeof(double) * (size_t)k);
  int64_t *hix = malloc(sizeof(int64_t) * (size_t)k), *tix = malloc(sizeof(int64_t) * (size_t)k);
  int64_t *hist = malloc(sizeof(int64_t) * (size_t)(k + 1));
  if (!D || !hd || !td || !hix || !tix || !hist) {
    __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
  } else {
    for (int64_t tile = lo; tile < hi; tile++) {
      const int64_t r0 = tile * TILE, nt = r0 + TILE <= n ? TILE : n - r0;
      tile_distances(j, r0, nt, D);
      for (int64_t t = 0; t < nt; t++)
        j->penalty[r0 + t] = row_penalty(j, r0 + t, D + t * n, hd, hix, td, tix, hist);
    }
  }
  free(D);
  free(hd);
  free(td);
  free(hix);
  free(tix);
  free(hist);
}

vl_status vl_trustworthiness(vl_ctx *ctx, const double *X, int64_t n, int64_t dx,
                             const double *Y, int64_t dy, int64_t k, double *out,
                             vl_error *err) {
  if (k < 1 || 2 * k >= n)
    return vl_fail(err, VL_ERR_VALUE, "n_neighbors (%lld) should be less than n_samples / 2 "
                   "(%g) and positive", (long long)k, (double)n / 2);
  for (int64_t p = 0; p < n * dx; p++)
    if (!isfinite(X[p])) return vl_fail(err, VL_ERR_VALUE, "X holds a non-finite value");
  for (int64_t p = 0; p < n * dy; p++)
    if (!isfinite(Y[p])) return vl_fail(err, VL_ERR_VALUE, "Y holds a non-finite value");
  double *XT = malloc(sizeof(double) * (size_t)(n * (dx > 0 ? dx : 1)));
  int64_t *pen = malloc(sizeof(int64_t) * (size_t)n);
  if (!XT || !pen) {
    free(XT);
    free(pen);
    return vl_fail(err, VL_ERR_NOMEM, "out of memory (trustworthiness of %lld points)", (long long)n);
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < dx; c++) XT[c * n + i] = X[i * dx + c];
  tw_job j = {X, XT, Y, n, dx, dy, k, pen, 0};
  vl_parallel_for(ctx, (n + TILE - 1) / TILE, 1, tiles, &j);
  vl_status st = VL_OK;
  if (j.failed) {
    st = vl_fail(err, VL_ERR_NOMEM, "out of memory (trustworthiness of %lld points)", (long long)n);
  } else {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += pen[i];
    *out = 1.0 - (double)total * (2.0 / ((double)(n * k) * (2.0 * (double)n - 3.0 * (double)k - 1.0)));
  }
  free(XT);
  free(pen);
  return st;
}
