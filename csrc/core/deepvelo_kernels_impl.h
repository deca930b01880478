/* The type-generic bodies of deepvelo_kernels.c, included once per float type with DV_T (the
 * element type) and DV_FN(name) (name with the type's suffix) defined. Not a public header. */

/* sum_g (b[g] - a[g]) w[g] in 8 independent lanes (vectorisable without reassociation) */
DV_CLONES static double DV_FN(dot_diff)(const DV_T *b, const DV_T *a, const DV_T *w, int64_t n) {
  DV_T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t g = 0;
  for (; g + 8 <= n; g += 8)
    for (int l = 0; l < 8; l++) lane[l] += (b[g + l] - a[g + l]) * w[g + l];
  DV_T s = 0;
  for (; g < n; g++) s += (b[g] - a[g]) * w[g];
  for (int l = 0; l < 8; l++) s += lane[l];
  return (double)s;
}

/* The dots of four candidate rows b0..b3 at once (the loads of a and w shared), 8 lanes each. */
DV_CLONES static void DV_FN(dot_diff4)(const DV_T *b0, const DV_T *b1, const DV_T *b2,
                                       const DV_T *b3, const DV_T *a, const DV_T *w, int64_t n,
                                       double out[4]) {
  DV_T l0[8] = {0}, l1[8] = {0}, l2[8] = {0}, l3[8] = {0};
  int64_t g = 0;
  for (; g + 8 <= n; g += 8)
    for (int l = 0; l < 8; l++) {
      DV_T ag = a[g + l], wg = w[g + l];
      l0[l] += (b0[g + l] - ag) * wg;
      l1[l] += (b1[g + l] - ag) * wg;
      l2[l] += (b2[g + l] - ag) * wg;
      l3[l] += (b3[g + l] - ag) * wg;
    }
  DV_T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (; g < n; g++) {
    s0 += (b0[g] - a[g]) * w[g];
    s1 += (b1[g] - a[g]) * w[g];
    s2 += (b2[g] - a[g]) * w[g];
    s3 += (b3[g] - a[g]) * w[g];
  }
  for (int l = 0; l < 8; l++) s0 += l0[l], s1 += l1[l], s2 += l2[l], s3 += l3[l];
  out[0] = (double)s0, out[1] = (double)s1, out[2] = (double)s2, out[3] = (double)s3;
}

/* acc[g] += b[g] - a[g] */
DV_CLONES static void DV_FN(add_diff)(DV_T *restrict acc, const DV_T *b, const DV_T *a, int64_t n) {
  for (int64_t g = 0; g < n; g++) acc[g] += b[g] - a[g];
}

/* Candidate sums of rows [lo, hi): see cand_job in deepvelo_kernels.c. */
static void DV_FN(cand_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const cand_job *j = arg;
  const int64_t d = j->d;
  DV_T *scratch = j->scratch ? (DV_T *)j->scratch + (int64_t)chunk * d : NULL;
  for (int64_t i = lo; i < hi; i++) {
    const DV_T *vi = (const DV_T *)j->v + i * j->sv;
    const DV_T *ci = (const DV_T *)j->cur + i * j->scur;
    DV_T *p = (DV_T *)j->plus + i * d;
    DV_T *m = j->minus ? (DV_T *)j->minus + i * d : scratch;
    memset(p, 0, (size_t)d * sizeof(DV_T));
    memset(m, 0, (size_t)d * sizeof(DV_T));
    int64_t np = 0, nm = 0;
    const int64_t *row = j->idx + i * j->k;
    const DV_T *cand = (const DV_T *)j->cand;
    double dots[4];
    for (int64_t c = 0; c < j->k; c++) {
      const DV_T *cj = cand + row[c] * j->scand;
      if (c % 4 == 0 && c + 4 <= j->k)
        DV_FN(dot_diff4)(cj, cand + row[c + 1] * j->scand, cand + row[c + 2] * j->scand,
                         cand + row[c + 3] * j->scand, ci, vi, j->n_cos, dots);
      double dot = c < j->k - j->k % 4 ? dots[c % 4] : DV_FN(dot_diff)(cj, ci, vi, j->n_cos);
      if (dot > 0) {
        DV_FN(add_diff)(p, cj, ci, d);
        np++;
      } else if (dot < 0) {
        DV_FN(add_diff)(m, cj, ci, d);
        nm++;
      }
    }
    const DV_T dp = (DV_T)np + (DV_T)1e-9, dm = (DV_T)nm + (DV_T)1e-9;
    if (j->minus) {
      for (int64_t g = 0; g < d; g++) {
        p[g] /= dp;
        m[g] /= dm;
      }
    } else {
      double sp = 0, sm = 0;
      for (int64_t g = 0; g < d; g++) {
        DV_T ep = p[g] / dp, em = m[g] / dm;
        double a = (double)(vi[g] - ep), b = (double)(vi[g] + em);
        sp += a * a;
        sm += b * b;
        p[g] = ep - em;
      }
      j->row_sq[2 * i] = sp;
      j->row_sq[2 * i + 1] = sm;
    }
    if (j->counts) {
      j->counts[2 * i] = np;
      j->counts[2 * i + 1] = nm;
    }
  }
}

static void DV_FN(mle_back_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const mle_back_job *j = arg;
  const DV_T alpha = (DV_T)j->alpha;
  (void)chunk;
  for (int64_t i = lo; i < hi; i++) {
    const DV_T *v = (const DV_T *)j->v + i * j->sv;
    const DV_T *e = (const DV_T *)j->e + i * j->se;
    DV_T *o = (DV_T *)j->out + i * j->d;
    for (int64_t g = 0; g < j->d; g++) o[g] = alpha * (2 * v[g] - e[g]);
  }
}

/* Pass 1 of the direction statistics over rows for columns [0, w) of this range: counts and
 * sums of x and y over the masks, one array per statistic (contiguous in the column, so the
 * branch-free loop vectorises). */
DV_CLONES static void DV_FN(dir_pass1)(const dir_job *j, int64_t lo, int64_t w, double *A) {
  double *cu = A, *xu = A + w, *yu = A + 2 * w, *cs = A + 3 * w, *xs = A + 4 * w, *ys = A + 5 * w;
  for (int64_t i = 0; i < j->n; i++) {
    const DV_T *x = (const DV_T *)j->x + i * j->sx + lo;
    const DV_T *u = (const DV_T *)j->u + i * j->su + lo;
    const DV_T *s = (const DV_T *)j->s + i * j->ss + lo;
    for (int64_t c = 0; c < w; c++) {
      bool mu = u[c] > 0, ms = s[c] > 0;
      double xc = (double)x[c];
      cu[c] += mu ? 1.0 : 0.0;
      xu[c] += mu ? xc : 0.0;
      yu[c] += mu ? (double)u[c] : 0.0;
      cs[c] += ms ? 1.0 : 0.0;
      xs[c] += ms ? xc : 0.0;
      ys[c] += ms ? (double)s[c] : 0.0;
    }
  }
}

/* Pass 2: the centred sums per mask t: [6 + 5t ..] = sum a^2, sum yc^2, sum a yc, sum a, sum yc,
 * with the means already in A[1, 2] (u) and A[4, 5] (s). */
DV_CLONES static void DV_FN(dir_pass2)(const dir_job *j, int64_t lo, int64_t w, double *A) {
  const double *mxu = A + w, *myu = A + 2 * w, *mxs = A + 4 * w, *mys = A + 5 * w;
  double *q = A + 6 * w;
  for (int64_t i = 0; i < j->n; i++) {
    const DV_T *x = (const DV_T *)j->x + i * j->sx + lo;
    const DV_T *u = (const DV_T *)j->u + i * j->su + lo;
    const DV_T *s = (const DV_T *)j->s + i * j->ss + lo;
    for (int64_t c = 0; c < w; c++) {
      bool mu = u[c] > 0, ms = s[c] > 0;
      double xc = (double)x[c];
      double ax = mu ? xc - mxu[c] : 0.0, ay = mu ? (double)u[c] - myu[c] : 0.0;
      double bx = ms ? xc - mxs[c] : 0.0, by = ms ? (double)s[c] - mys[c] : 0.0;
      q[c] += ax * ax;
      q[w + c] += ay * ay;
      q[2 * w + c] += ax * ay;
      q[3 * w + c] += ax;
      q[4 * w + c] += ay;
      q[5 * w + c] += bx * bx;
      q[6 * w + c] += by * by;
      q[7 * w + c] += bx * by;
      q[8 * w + c] += bx;
      q[9 * w + c] += by;
    }
  }
}

/* Direction statistics of the columns [lo, hi) (see dir_job): pass 1, the means, pass 2,
 * then the per-gene correlation and gradient terms. */
static void DV_FN(dir_forward_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const dir_job *j = arg;
  (void)chunk;
  const int64_t w = hi - lo;
  double *A = j->scratch + lo * 16; /* 16 arrays of w doubles, this range's own slice */
  memset(A, 0, (size_t)w * 16 * sizeof(double));
  DV_FN(dir_pass1)(j, lo, w, A);
  for (int t = 0; t < 2; t++)
    for (int64_t c = 0; c < w; c++) {
      double cnt = A[3 * t * w + c] + 1e-9;
      A[(3 * t + 1) * w + c] /= cnt; /* mean of x over the mask */
      A[(3 * t + 2) * w + c] /= cnt; /* mean of y over the mask */
    }
  DV_FN(dir_pass2)(j, lo, w, A);
  for (int64_t c = 0; c < w; c++) {
    int64_t g = lo + c;
    for (int t = 0; t < 2; t++) {
      double q[5];
      for (int k = 0; k < 5; k++) q[k] = A[(6 + 5 * t + k) * w + c];
      double cnt = A[3 * t * w + c] + 1e-9, mux = A[(3 * t + 1) * w + c];
      double muy = A[(3 * t + 2) * w + c];
      double na = sqrt(q[0]), ny = sqrt(q[1]);
      double inv_ny = 1.0 / (ny + 1e-9), inv_d = 1.0 / (na + 1e-9);
      double sn = q[2] * inv_ny; /* sum a yn */
      double r = sn * inv_d;
      double *st = j->stats + (g * 2 + t) * VL_DV_NSTAT;
      double Aa = 0, B = 0, K = 0;
      if (na > 0) {
        Aa = inv_d;
        B = sn * inv_d * inv_d / na;
        K = (q[4] * inv_ny * Aa - B * q[3]) / cnt; /* (sum_k dr/da_k) / count */
      }
      st[0] = mux, st[1] = muy, st[2] = inv_ny, st[3] = Aa, st[4] = B, st[5] = K, st[6] = r;
      st[7] = A[3 * t * w + c];
      j->r[g * 2 + t] = r;
    }
  }
}

/* The gradient rows for columns [lo, lo + w) from per-column coefficients P (10 arrays of w:
 * per mask mux, muy, w A inv_ny, w B, w K): grad = P2 (y - muy) - P3 (x - mux) - P4 summed
 * over the masks that hold. */
DV_CLONES static void DV_FN(dir_back_rows)(const dir_job *j, int64_t lo, int64_t w,
                                           const double *P) {
  const double *mxu = P, *myu = P + w, *pu = P + 2 * w, *qu = P + 3 * w, *ku = P + 4 * w;
  const double *mxs = P + 5 * w, *mys = P + 6 * w, *ps = P + 7 * w, *qs = P + 8 * w,
               *ks = P + 9 * w;
  for (int64_t i = 0; i < j->n; i++) {
    const DV_T *x = (const DV_T *)j->x + i * j->sx + lo;
    const DV_T *u = (const DV_T *)j->u + i * j->su + lo;
    const DV_T *s = (const DV_T *)j->s + i * j->ss + lo;
    DV_T *o = (DV_T *)j->grad + i * j->sg + lo;
    for (int64_t c = 0; c < w; c++) {
      double xc = (double)x[c];
      double gu = pu[c] * ((double)u[c] - myu[c]) - qu[c] * (xc - mxu[c]) - ku[c];
      double gs = ps[c] * ((double)s[c] - mys[c]) - qs[c] * (xc - mxs[c]) - ks[c];
      double g = (u[c] > 0 ? gu : 0.0) + (s[c] > 0 ? gs : 0.0);
      o[c] = j->accumulate ? (DV_T)((double)o[c] + g) : (DV_T)g;
    }
  }
}

static void DV_FN(dir_backward_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const dir_job *j = arg;
  (void)chunk;
  const int64_t w = hi - lo;
  double *P = j->scratch + lo * 10; /* this range's slice of 10 arrays */
  for (int64_t c = 0; c < w; c++) {
    for (int t = 0; t < 2; t++) {
      const double *st = j->stats + ((lo + c) * 2 + t) * VL_DV_NSTAT;
      double wt = j->w[(lo + c) * 2 + t];
      P[(5 * t) * w + c] = st[0];
      P[(5 * t + 1) * w + c] = st[1];
      P[(5 * t + 2) * w + c] = wt * st[3] * st[2];
      P[(5 * t + 3) * w + c] = wt * st[4];
      P[(5 * t + 4) * w + c] = wt * st[5];
    }
  }
  DV_FN(dir_back_rows)(j, lo, w, P);
}

/* The dropout keep mask of row i of h (kG entries) from the generator's stream, as
 * vl_dropout_forward draws it for the whole (contiguous) h. */
static void DV_FN(keep_row)(const head_job *j, int64_t i, uint8_t *keep) {
  const int64_t per = sizeof(DV_T) == 4 ? 4 : 2;
  const int64_t first = i * j->kG, last = first + j->kG;
  uint32_t w[4];
  for (int64_t e = first; e < last;) {
    const int64_t b = e / per;
    vl_philox_at(j->gen, j->base + (uint64_t)b, w);
    for (; e < last && e / per == b; e++) {
      int64_t lane = e % per;
      bool k;
      if (per == 4) k = (float)((double)(w[lane] >> 8) * 0x1p-24) >= (float)j->p;
      else k = vl_u01_f64(w[2 * lane], w[2 * lane + 1]) >= j->p;
      keep[e - first] = k;
    }
  }
}

static void DV_FN(head_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const head_job *j = arg;
  (void)chunk;
  const int64_t G = j->G;
  for (int64_t i = lo; i < hi; i++) {
    const DV_T *h = (const DV_T *)j->h + i * j->sh;
    const DV_T *u = (const DV_T *)j->u + i * j->su;
    const DV_T *s = (const DV_T *)j->s + i * j->ss;
    DV_T *o = (DV_T *)j->out + i * j->so;
    const DV_T *beta = h, *gamma = h + G;
    if (j->keep) {
      uint8_t *k = j->keep + i * j->kG;
      DV_FN(keep_row)(j, i, k);
      const DV_T sc = (DV_T)(1.0 / (1.0 - j->p));
      if (!j->pred_unspliced) {
        for (int64_t g = 0; g < G; g++) {
          DV_T b = beta[g] * (k[g] ? sc : (DV_T)0), c = gamma[g] * (k[G + g] ? sc : (DV_T)0);
          o[g] = b * u[g] + c * s[g];
        }
      } else {
        const DV_T *alpha = h + 2 * G;
        for (int64_t g = 0; g < G; g++) {
          DV_T b = beta[g] * (k[g] ? sc : (DV_T)0), c = gamma[g] * (k[G + g] ? sc : (DV_T)0);
          DV_T a = alpha[g] * (k[2 * G + g] ? sc : (DV_T)0);
          DV_T bu = b * u[g];
          o[g] = bu - c * s[g];
          o[G + g] = a - bu;
        }
      }
      continue;
    }
    if (!j->pred_unspliced) {
      for (int64_t g = 0; g < G; g++) o[g] = beta[g] * u[g] + gamma[g] * s[g];
    } else {
      const DV_T *alpha = h + 2 * G;
      for (int64_t g = 0; g < G; g++) {
        DV_T bu = beta[g] * u[g];
        o[g] = bu - gamma[g] * s[g];
        o[G + g] = alpha[g] - bu;
      }
    }
  }
}

static void DV_FN(head_back_range)(int64_t lo, int64_t hi, int chunk, void *arg) {
  const head_job *j = arg;
  (void)chunk;
  const int64_t G = j->G;
  for (int64_t i = lo; i < hi; i++) {
    const DV_T *go = (const DV_T *)j->h + i * j->sh; /* the output gradient */
    const DV_T *u = (const DV_T *)j->u + i * j->su;
    const DV_T *s = (const DV_T *)j->s + i * j->ss;
    DV_T *gh = (DV_T *)j->out + i * j->so;
    if (!j->pred_unspliced) {
      for (int64_t g = 0; g < G; g++) {
        gh[g] = go[g] * u[g];
        gh[G + g] = go[g] * s[g];
      }
    } else {
      for (int64_t g = 0; g < G; g++) {
        DV_T g1 = go[g], g2 = go[G + g];
        gh[g] = (g1 - g2) * u[g];
        gh[G + g] = -g1 * s[g];
        gh[2 * G + g] = g2;
      }
    }
    if (j->keep) { /* through the dropout: the rows of keep follow those of grad_h */
      const uint8_t *k = j->keep + i * j->kG;
      const DV_T sc = (DV_T)(1.0 / (1.0 - j->p));
      for (int64_t c = 0; c < j->kG; c++) gh[c] = gh[c] * (k[c] ? sc : (DV_T)0);
    }
  }
}
