/* Spectral embedding of a weighted graph, as UMAP's initialisation (umap-learn 0.5
 * spectral_layout): per connected component, the eigenvectors of the normalized Laplacian
 * L = I - D^-1/2 W D^-1/2 for its smallest eigenvalues, the trivial one (eigenvalue 0,
 * vector sqrt(degree)) left out. They are the eigenvectors of N = D^-1/2 W D^-1/2 for its
 * largest eigenvalues below the trivial 1, found by thick-restart Lanczos with full
 * reorthogonalisation and the trivial vector deflated (dense LAPACK for small components).
 * Every reduction runs over fixed blocks combined in order: results do not depend on the
 * thread count. Each vector's sign makes its entry of largest magnitude positive.
 * Indices are 0-based. */
#ifndef VELUA_SPECTRAL_H
#define VELUA_SPECTRAL_H

#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"
#include "status.h"

/* Connected components of the graph of a (square; entries <= 0 are not edges; the graph is
 * taken as undirected). labels[i] in [0, *ncomp), numbered in the order of their lowest
 * vertex (scipy's connected_components on a symmetric graph). */
vl_status vl_graph_components(const vl_csr *a, int64_t *labels, int64_t *ncomp, vl_error *err);

/* Per-component outcome of vl_spectral_components. */
enum {
  VL_SPECTRAL_OK = 0,        /* eigenvectors written */
  VL_SPECTRAL_TOO_SMALL = 1, /* fewer than 2 * dim vertices, or at most dim + 1: rows untouched */
  VL_SPECTRAL_FAILED = 2     /* no convergence within the budget: rows untouched */
};

typedef struct {
  double tol;        /* residual norm ||N y - theta y|| accepted for each Ritz pair; 1e-7 */
  int64_t max_matvec; /* products with N per component before giving up; 0: 200 + 20 sqrt(n) */
  int64_t dense_max; /* components up to this size use dense LAPACK (tiny, single-threaded); 64 */
  int64_t basis;     /* Lanczos basis size; 0: max(2 dim + 20, 48) */
  int force;         /* 0 auto, 1 dense, 2 Lanczos (tests) */
} vl_spectral_opts;

void vl_spectral_defaults(vl_spectral_opts *o);

/* For each component c of (labels, ncomp) from vl_graph_components: the dim eigenvectors
 * (unit norm over the component) of its normalized Laplacian for the smallest eigenvalues after
 * the trivial one, written to out[i * dim + t] for the rows i of c, ascending eigenvalue in t;
 * their Laplacian eigenvalues to evals[c * dim + t]. status[c] gets a VL_SPECTRAL_* code and
 * matvecs[c] (may be NULL) the number of operator products spent. Fails only for bad input
 * or lack of memory. */
vl_status vl_spectral_components(vl_ctx *ctx, const vl_csr *a, const int64_t *labels,
                                 int64_t ncomp, int64_t dim, const vl_spectral_opts *o,
                                 double *out, double *evals, int *status, int64_t *matvecs,
                                 vl_error *err);

/* Eigen-decomposition of a dense symmetric n x n matrix (row-major, only its upper triangle
 * read): all eigenvalues ascending in w, eigenvectors as the columns of z (row-major n x n,
 * z[i * n + t] is entry i of vector t). */
vl_status vl_sym_eig(const double *a, int64_t n, double *w, double *z, vl_error *err);

#endif
