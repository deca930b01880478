/* CSR row/column selection (see csr_select.h). Columns go through a map from each old column
 * to the list of its new positions (itself CSR-shaped), so repeated columns work. */
#include "csr_select.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t *ptr; /* ncols + 1 */
  int64_t *pos; /* new positions of each old column, ascending */
  int monotone; /* cols strictly increasing: order within rows is kept */
} colmap;

static vl_status build_map(const vl_csr *a, const int64_t *cols, int64_t n, colmap *m,
                           vl_error *err) {
  m->ptr = calloc((size_t)a->ncols + 1, sizeof(int64_t));
  m->pos = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!m->ptr || !m->pos) return vl_fail(err, VL_ERR_NOMEM, "csr_select: out of memory");
  m->monotone = 1;
  for (int64_t j = 0; j < n; j++) {
    if (cols[j] < 0 || cols[j] >= a->ncols)
      return vl_fail(err, VL_ERR_INDEX, "csr_select: column %lld out of range 1..%lld",
                     (long long)cols[j] + 1, (long long)a->ncols);
    if (j > 0 && cols[j] <= cols[j - 1]) m->monotone = 0;
    m->ptr[cols[j] + 1]++;
  }
  for (int64_t c = 0; c < a->ncols; c++) m->ptr[c + 1] += m->ptr[c];
  int64_t *fill = malloc(sizeof(int64_t) * (size_t)(a->ncols > 0 ? a->ncols : 1));
  if (!fill) return vl_fail(err, VL_ERR_NOMEM, "csr_select: out of memory");
  memcpy(fill, m->ptr, sizeof(int64_t) * (size_t)a->ncols);
  for (int64_t j = 0; j < n; j++) m->pos[fill[cols[j]]++] = j;
  free(fill);
  return VL_OK;
}

/* Sorts the entries [lo, hi) of the output by column (insertion sort: rows are short). */
static void sort_row(int64_t *idx, char *val, size_t vs, int64_t lo, int64_t hi) {
  char tmp[16];
  for (int64_t i = lo + 1; i < hi; i++) {
    int64_t key = idx[i];
    memcpy(tmp, val + (size_t)i * vs, vs);
    int64_t j = i - 1;
    while (j >= lo && idx[j] > key) {
      idx[j + 1] = idx[j];
      memcpy(val + (size_t)(j + 1) * vs, val + (size_t)j * vs, vs);
      j--;
    }
    idx[j + 1] = key;
    memcpy(val + (size_t)(j + 1) * vs, tmp, vs);
  }
}

vl_status vl_csr_select(const vl_csr *a, const int64_t *rows, int64_t nrows_out,
                        const int64_t *cols, int64_t ncols_out, int64_t *out_indptr,
                        int64_t *out_indices, void *out_values, vl_error *err) {
  if (!rows) nrows_out = a->nrows;
  for (int64_t i = 0; rows && i < nrows_out; i++)
    if (rows[i] < 0 || rows[i] >= a->nrows)
      return vl_fail(err, VL_ERR_INDEX, "csr_select: row %lld out of range 1..%lld",
                     (long long)rows[i] + 1, (long long)a->nrows);
  colmap m = {NULL, NULL, 1};
  vl_status st = VL_OK;
  if (cols) st = build_map(a, cols, ncols_out, &m, err);
  size_t vs = a->dtype == VL_F64 ? 8 : 4;
  const char *av = a->values;
  char *ov = out_values;
  int64_t k = 0;
  if (!st) out_indptr[0] = 0;
  for (int64_t i = 0; !st && i < nrows_out; i++) {
    int64_t r = rows ? rows[i] : i;
    int64_t start = k;
    for (int64_t p = a->indptr[r]; p < a->indptr[r + 1]; p++) {
      int64_t c = a->indices[p];
      if (!cols) {
        if (out_indices) {
          out_indices[k] = c;
          memcpy(ov + (size_t)k * vs, av + (size_t)p * vs, vs);
        }
        k++;
        continue;
      }
      for (int64_t q = m.ptr[c]; q < m.ptr[c + 1]; q++) {
        if (out_indices) {
          out_indices[k] = m.pos[q];
          memcpy(ov + (size_t)k * vs, av + (size_t)p * vs, vs);
        }
        k++;
      }
    }
    if (out_indices && cols && !m.monotone) sort_row(out_indices, ov, vs, start, k);
    out_indptr[i + 1] = k;
  }
  free(m.ptr);
  free(m.pos);
  return st;
}
