/* Neighbour lists from a distance graph and their recursive expansion (see neighbor_lists.h). */
#include "neighbor_lists.h"

#include <stdlib.h>
#include <string.h>

int64_t vl_min_row_count(const vl_csr *d) {
  if (d->nrows == 0) return 0;
  int64_t m = INT64_MAX;
  for (int64_t i = 0; i < d->nrows; i++) {
    int64_t c = d->indptr[i + 1] - d->indptr[i];
    if (c < m) m = c;
  }
  return m;
}

static double value_at(const vl_csr *d, int64_t p) {
  return d->dtype == VL_F32 ? (double)((const float *)d->values)[p]
                            : ((const double *)d->values)[p];
}

vl_status vl_neighbor_lists(const vl_csr *d, int64_t k, int64_t *out, vl_error *err) {
  if (k < 0) return vl_fail(err, VL_ERR_VALUE, "number of neighbours must be >= 0, got %lld", (long long)k);
  int64_t maxc = 0;
  for (int64_t i = 0; i < d->nrows; i++) {
    int64_t c = d->indptr[i + 1] - d->indptr[i];
    if (c > maxc) maxc = c;
  }
  char *keep = malloc((size_t)(maxc > 0 ? maxc : 1));
  if (!keep) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate neighbour lists");
  for (int64_t i = 0; i < d->nrows; i++) {
    int64_t a = d->indptr[i], c = d->indptr[i + 1] - a, w = 0;
    int64_t *row = out + i * k;
    if (c <= k) {
      for (int64_t p = 0; p < c; p++) row[w++] = d->indices[a + p];
    } else {
      /* keep the k smallest: an entry is dropped when k others are smaller (or equal and
       * earlier); c is small (tens), so the quadratic count is fine */
      for (int64_t p = 0; p < c; p++) {
        double v = value_at(d, a + p);
        int64_t before = 0;
        for (int64_t q = 0; q < c && before < k; q++) {
          double u = value_at(d, a + q);
          if (u < v || (u == v && q < p)) before++;
        }
        keep[p] = before < k;
      }
      for (int64_t p = 0; p < c; p++)
        if (keep[p]) row[w++] = d->indices[a + p];
    }
    for (; w < k; w++) row[w] = -1;
  }
  free(keep);
  return VL_OK;
}

typedef struct {
  int64_t n, k, depth;
  const int64_t *nbr;
  int64_t *counts;
  const int64_t *indptr;
  int64_t *indices;
  int failed;
} rec_job;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The sorted, unique set of row i into buf; returns its size. stamp [n] marks members with
 * the value i + 1 (each row uses its own mark, so the array never needs clearing). */
static int64_t expand(const rec_job *J, int64_t i, int64_t *buf, int64_t *stamp) {
  int64_t m = 1, mark = i + 1;
  buf[0] = i;
  stamp[i] = mark;
  int64_t start = 0;
  for (int64_t level = 0; level < J->depth; level++) {
    int64_t end = m;
    for (int64_t p = start; p < end; p++) {
      const int64_t *r = J->nbr + buf[p] * J->k;
      for (int64_t q = 0; q < J->k; q++) {
        int64_t c = r[q];
        if (c >= 0 && stamp[c] != mark) { stamp[c] = mark; buf[m++] = c; }
      }
    }
    start = end; /* only the newly reached cells expand at the next level */
  }
  qsort(buf, (size_t)m, sizeof *buf, cmp_i64);
  return m;
}

static void rec_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  rec_job *J = arg;
  int64_t *buf = malloc((size_t)J->n * sizeof *buf);
  int64_t *stamp = calloc((size_t)J->n, sizeof *stamp);
  if (!buf || !stamp) { free(buf); free(stamp); J->failed = 1; return; }
  for (int64_t i = lo; i < hi; i++) {
    int64_t m = expand(J, i, buf, stamp);
    if (J->indices) memcpy(J->indices + J->indptr[i], buf, (size_t)m * sizeof *buf);
    else J->counts[i] = m;
  }
  free(buf);
  free(stamp);
}

vl_status vl_recursive_neighbors(vl_ctx *ctx, int64_t n, int64_t k, const int64_t *nbr, int depth,
                                 int64_t *counts, const int64_t *indptr,
                                 int64_t *indices, vl_error *err) {
  if (depth < 0 || depth > 8)
    return vl_fail(err, VL_ERR_VALUE, "recursion depth must be in 0..8, got %d", depth);
  for (int64_t p = 0; p < n * k; p++)
    if (nbr[p] < -1 || nbr[p] >= n)
      return vl_fail(err, VL_ERR_INDEX, "neighbour index %lld out of range at row %lld",
                     (long long)nbr[p], (long long)(p / (k ? k : 1)));
  rec_job J = {n, k, depth, nbr, counts, indptr, indices, 0};
  vl_status st = vl_parallel_blocks(ctx, n, 4096, rec_body, &J);
  if (st != VL_OK) return vl_fail(err, st, "interrupted");
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate neighbour sets");
  return VL_OK;
}
