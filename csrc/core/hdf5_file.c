/* HDF5 access (see hdf5_file.h). Every hid_t opened here is closed on every path out. */
#include "hdf5_file.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vl_h5file {
  hid_t id;
};

/* ---------- errors ---------- */

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0 && e->desc) snprintf((char *)data, 200, "%s", e->desc);
  return 0;
}

/* Records fmt plus the most specific HDF5 message, if any. */
static vl_status h5fail(vl_error *err, vl_status code, const char *fmt, ...) {
  char what[300], detail[200] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, detail);
  H5Eclear2(H5E_DEFAULT);
  if (detail[0]) return vl_fail(err, code, "%s (HDF5: %s)", what, detail);
  return vl_fail(err, code, "%s", what);
}

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------- files ---------- */

vl_status vl_h5_open(const char *path, vl_h5_mode mode, vl_h5file **out, vl_error *err) {
  *out = NULL;
  quiet();
  hid_t id;
  if (mode == VL_H5_CREATE) {
    id = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0) return h5fail(err, VL_ERR_IO, "cannot create HDF5 file '%s'", path);
  } else {
    FILE *probe = fopen(path, "rb");
    if (!probe) return vl_fail(err, VL_ERR_IO, "cannot open '%s': no such file or not readable", path);
    fclose(probe);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return vl_fail(err, VL_ERR_IO, "'%s' is not an HDF5 file (or is truncated)", path);
    }
    id = H5Fopen(path, mode == VL_H5_READWRITE ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0) return h5fail(err, VL_ERR_IO, "cannot open HDF5 file '%s'", path);
  }
  vl_h5file *f = malloc(sizeof *f);
  if (!f) {
    H5Fclose(id);
    return vl_fail(err, VL_ERR_NOMEM, "out of memory");
  }
  f->id = id;
  *out = f;
  return VL_OK;
}

vl_status vl_h5_close(vl_h5file *f, vl_error *err) {
  if (!f) return VL_OK;
  herr_t r = H5Fclose(f->id);
  free(f);
  if (r < 0) return h5fail(err, VL_ERR_IO, "closing the HDF5 file failed");
  return VL_OK;
}

/* ---------- objects ---------- */

vl_h5_kind vl_h5_kind_of(vl_h5file *f, const char *path) {
  if (strcmp(path, "/") == 0 || path[0] == '\0') return VL_H5_GROUP;
  /* check each prefix: H5Lexists fails on a missing intermediate group */
  char buf[1024];
  size_t n = strlen(path);
  if (n >= sizeof buf) return VL_H5_MISSING;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (i > 0 && buf[i - 1] != '/') {
        htri_t e = H5Lexists(f->id, buf, H5P_DEFAULT);
        if (e <= 0) {
          H5Eclear2(H5E_DEFAULT);
          return VL_H5_MISSING;
        }
      }
      buf[i] = c;
    }
  }
  hid_t o = H5Oopen(f->id, path, H5P_DEFAULT);
  if (o < 0) {
    H5Eclear2(H5E_DEFAULT);
    return VL_H5_MISSING;
  }
  H5I_type_t t = H5Iget_type(o);
  H5Oclose(o);
  return t == H5I_GROUP ? VL_H5_GROUP : t == H5I_DATASET ? VL_H5_DATASET : VL_H5_OTHER;
}

static hid_t lcpl_intermediate(void) {
  hid_t p = H5Pcreate(H5P_LINK_CREATE);
  if (p >= 0) {
    H5Pset_create_intermediate_group(p, 1);
    H5Pset_char_encoding(p, H5T_CSET_UTF8);
  }
  return p;
}

vl_status vl_h5_create_group(vl_h5file *f, const char *path, vl_error *err) {
  if (vl_h5_kind_of(f, path) == VL_H5_GROUP) return VL_OK;
  hid_t lcpl = lcpl_intermediate();
  hid_t g = H5Gcreate2(f->id, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  if (g < 0) return h5fail(err, VL_ERR_IO, "cannot create group '%s'", path);
  H5Gclose(g);
  return VL_OK;
}

typedef struct {
  vl_h5_name_fn fn;
  void *arg;
  vl_error *err;
  vl_status st;
} name_iter;

static herr_t link_cb(hid_t g, const char *name, const H5L_info_t *info, void *vp) {
  name_iter *it = vp;
  it->st = it->fn(name, it->arg, it->err);
  return it->st ? 1 : 0;
}

vl_status vl_h5_list(vl_h5file *f, const char *path, vl_h5_name_fn fn, void *arg, vl_error *err) {
  if (vl_h5_kind_of(f, path) != VL_H5_GROUP)
    return vl_fail(err, VL_ERR_VALUE, "'%s' is not a group", path);
  hid_t g = H5Gopen2(f->id, path, H5P_DEFAULT);
  if (g < 0) return h5fail(err, VL_ERR_IO, "cannot open group '%s'", path);
  name_iter it = {fn, arg, err, VL_OK};
  hsize_t idx = 0;
  herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, link_cb, &it);
  H5Gclose(g);
  if (it.st) return it.st;
  if (r < 0) return h5fail(err, VL_ERR_IO, "cannot list group '%s'", path);
  return VL_OK;
}

/* ---------- types ---------- */

static bool is_bool_enum(hid_t t) {
  if (H5Tget_class(t) != H5T_ENUM || H5Tget_nmembers(t) != 2) return false;
  hid_t base = H5Tget_super(t);
  bool ok = H5Tget_size(base) == 1;
  H5Tclose(base);
  return ok;
}

static void describe(hid_t type, hid_t space, vl_h5_info *info) {
  memset(info, 0, sizeof *info);
  info->filter_ok = 1;
  info->size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT: info->cls = VL_H5T_FLOAT; break;
    case H5T_INTEGER: info->cls = H5Tget_sign(type) == H5T_SGN_NONE ? VL_H5T_UINT : VL_H5T_INT; break;
    case H5T_STRING:
      info->cls = VL_H5T_STRING;
      info->variable_string = H5Tis_variable_str(type) > 0;
      break;
    case H5T_COMPOUND: info->cls = VL_H5T_COMPOUND; break;
    case H5T_ENUM: info->cls = is_bool_enum(type) ? VL_H5T_BOOL : VL_H5T_ENUM; break;
    case H5T_REFERENCE: info->cls = VL_H5T_REFERENCE; break;
    default: info->cls = VL_H5T_OTHER; break;
  }
  int nd = H5Sget_simple_extent_ndims(space);
  if (nd < 0) nd = 0;
  if (nd > VL_MAX_DIMS) nd = VL_MAX_DIMS;
  hsize_t dims[32];
  H5Sget_simple_extent_dims(space, dims, NULL);
  info->ndim = nd;
  for (int d = 0; d < nd; d++) info->shape[d] = (int64_t)dims[d];
}

static void check_filters(hid_t dset, vl_h5_info *info) {
  hid_t dcpl = H5Dget_create_plist(dset);
  if (dcpl < 0) return;
  int nf = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nf; i++) {
    unsigned flags;
    size_t nelem = 0;
    char name[64] = "";
    H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, sizeof name, name, NULL);
    if (id >= 0 && H5Zfilter_avail(id) <= 0) {
      info->filter_ok = 0;
      snprintf(info->filter_name, sizeof info->filter_name, "%s (id %d)", name[0] ? name : "unknown",
               (int)id);
      break;
    }
  }
  H5Pclose(dcpl);
  H5Eclear2(H5E_DEFAULT);
}

vl_status vl_h5_dataset_info(vl_h5file *f, const char *path, vl_h5_info *info, vl_error *err) {
  if (vl_h5_kind_of(f, path) != VL_H5_DATASET)
    return vl_fail(err, VL_ERR_VALUE, "'%s' is not a dataset", path);
  hid_t d = H5Dopen2(f->id, path, H5P_DEFAULT);
  if (d < 0) return h5fail(err, VL_ERR_IO, "cannot open dataset '%s'", path);
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  describe(t, s, info);
  check_filters(d, info);
  H5Tclose(t);
  H5Sclose(s);
  H5Dclose(d);
  return VL_OK;
}

static hid_t mem_type(vl_dtype dt) {
  switch (dt) {
    case VL_F32: return H5T_NATIVE_FLOAT;
    case VL_F64: return H5T_NATIVE_DOUBLE;
    case VL_I64: return H5T_NATIVE_INT64;
    default: return H5T_NATIVE_UINT8;
  }
}

/* An h5py-compatible bool type (int8 enum FALSE=0, TRUE=1); caller closes it. */
static hid_t bool_type(void) {
  hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  int8_t v = 0;
  H5Tenum_insert(t, "FALSE", &v);
  v = 1;
  H5Tenum_insert(t, "TRUE", &v);
  return t;
}

static hid_t file_type(vl_dtype dt) {
  switch (dt) {
    case VL_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case VL_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case VL_I64: return H5Tcopy(H5T_STD_I64LE);
    default: return bool_type();
  }
}

static hid_t vlen_str_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

/* Converts n int8 values (bools, enum codes) into out's dtype. */
static void from_int8(const int8_t *src, const vl_tensor *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    switch (out->dtype) {
      case VL_F32: ((float *)out->data)[i] = src[i]; break;
      case VL_F64: ((double *)out->data)[i] = src[i]; break;
      case VL_I64: ((int64_t *)out->data)[i] = src[i]; break;
      default: ((uint8_t *)out->data)[i] = src[i] != 0; break;
    }
  }
}

/* Reads object `obj` (dataset if is_dataset, else attribute) into out. */
static vl_status read_numeric(hid_t obj, bool is_dataset, const char *what, const vl_tensor *out,
                              const int64_t *rows, vl_error *err) {
  if (!vl_is_contiguous(out)) return vl_fail(err, VL_ERR_VALUE, "%s: output must be contiguous", what);
  hid_t t = is_dataset ? H5Dget_type(obj) : H5Aget_type(obj);
  hid_t s = is_dataset ? H5Dget_space(obj) : H5Aget_space(obj);
  vl_h5_info info;
  describe(t, s, &info);
  vl_status st = VL_OK;
  hid_t memspace = H5S_ALL, filespace = H5S_ALL;
  int64_t n = 1;
  if (info.cls != VL_H5T_FLOAT && info.cls != VL_H5T_INT && info.cls != VL_H5T_UINT &&
      info.cls != VL_H5T_BOOL && info.cls != VL_H5T_ENUM) {
    st = vl_fail(err, VL_ERR_DTYPE, "%s: not a numeric or boolean %s", what,
                 is_dataset ? "dataset" : "attribute");
    goto done;
  }
  if (rows) {
    if (!is_dataset || info.ndim < 1 || rows[0] < 0 || rows[1] < rows[0] || rows[1] > info.shape[0]) {
      st = vl_fail(err, VL_ERR_INDEX, "%s: rows %lld..%lld out of range", what,
                   (long long)rows[0] + 1, (long long)rows[1]);
      goto done;
    }
    info.shape[0] = rows[1] - rows[0];
  }
  for (int d = 0; d < info.ndim; d++) n *= info.shape[d];
  if (n != vl_numel(out)) {
    char b1[128], b2[128];
    st = vl_fail(err, VL_ERR_SHAPE, "%s: stored shape %s does not match the requested %s", what,
                 vl_shape_str(info.ndim, info.shape, b1, sizeof b1),
                 vl_shape_str(out->ndim, out->shape, b2, sizeof b2));
    goto done;
  }
  if (n == 0) goto done;
  if (rows) {
    hsize_t start[32] = {0}, count[32];
    for (int d = 0; d < info.ndim; d++) count[d] = (hsize_t)info.shape[d];
    start[0] = (hsize_t)rows[0];
    filespace = H5Scopy(s);
    H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, NULL, count, NULL);
    memspace = H5Screate_simple(info.ndim, count, NULL);
  }
  herr_t r;
  if (info.cls == VL_H5T_BOOL || info.cls == VL_H5T_ENUM) {
    /* enums do not convert to numbers in HDF5: read the int8 codes and convert here */
    if (info.size != 1) {
      st = vl_fail(err, VL_ERR_DTYPE, "%s: enum with %zu-byte codes is not supported", what, info.size);
      goto done;
    }
    int8_t *tmp = malloc((size_t)n);
    if (!tmp) {
      st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", what);
      goto done;
    }
    r = is_dataset ? H5Dread(obj, H5T_NATIVE_INT8, memspace, filespace, H5P_DEFAULT, tmp)
                   : H5Aread(obj, H5T_NATIVE_INT8, tmp);
    if (r >= 0) from_int8(tmp, out, n);
    free(tmp);
  } else {
    hid_t mt = mem_type(out->dtype);
    r = is_dataset ? H5Dread(obj, mt, memspace, filespace, H5P_DEFAULT, out->data)
                   : H5Aread(obj, mt, out->data);
  }
  if (r < 0) st = h5fail(err, VL_ERR_IO, "%s: read failed", what);
done:
  if (memspace != H5S_ALL) H5Sclose(memspace);
  if (filespace != H5S_ALL) H5Sclose(filespace);
  H5Tclose(t);
  H5Sclose(s);
  return st;
}

vl_status vl_h5_read(vl_h5file *f, const char *path, const vl_tensor *out, const int64_t *rows,
                     vl_error *err) {
  if (vl_h5_kind_of(f, path) != VL_H5_DATASET)
    return vl_fail(err, VL_ERR_VALUE, "'%s' is not a dataset", path);
  hid_t d = H5Dopen2(f->id, path, H5P_DEFAULT);
  if (d < 0) return h5fail(err, VL_ERR_IO, "cannot open dataset '%s'", path);
  vl_h5_info fi;
  memset(&fi, 0, sizeof fi);
  fi.filter_ok = 1;
  check_filters(d, &fi);
  vl_status st;
  if (!fi.filter_ok)
    st = vl_fail(err, VL_ERR_UNSUPPORTED, "dataset '%s' uses compression filter %s, which this "
                 "HDF5 library cannot decode", path, fi.filter_name);
  else
    st = read_numeric(d, true, path, out, rows, err);
  H5Dclose(d);
  return st;
}

static vl_status read_strings(hid_t obj, bool is_dataset, const char *what, vl_h5_string_fn fn,
                              void *arg, vl_error *err) {
  hid_t t = is_dataset ? H5Dget_type(obj) : H5Aget_type(obj);
  hid_t s = is_dataset ? H5Dget_space(obj) : H5Aget_space(obj);
  vl_h5_info info;
  describe(t, s, &info);
  vl_status st = VL_OK;
  int64_t n = 1;
  for (int d = 0; d < info.ndim; d++) n *= info.shape[d];
  if (info.cls != VL_H5T_STRING) {
    st = vl_fail(err, VL_ERR_DTYPE, "%s: not a string %s", what, is_dataset ? "dataset" : "attribute");
  } else if (n > 0 && info.variable_string) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    char **buf = calloc((size_t)n, sizeof(char *));
    herr_t r = buf ? (is_dataset ? H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                                 : H5Aread(obj, mt, buf))
                   : -1;
    if (!buf) st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", what);
    else if (r < 0) st = h5fail(err, VL_ERR_IO, "%s: read failed", what);
    else
      for (int64_t i = 0; i < n && !st; i++)
        st = fn(i, buf[i] ? buf[i] : "", buf[i] ? strlen(buf[i]) : 0, arg, err);
    if (buf && r >= 0) {
      if (is_dataset) H5Dvlen_reclaim(mt, s, H5P_DEFAULT, buf);
      else
        for (int64_t i = 0; i < n; i++) H5free_memory(buf[i]);
    }
    free(buf);
    H5Tclose(mt);
  } else if (n > 0) {
    size_t size = info.size;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, size);
    H5Tset_cset(mt, H5Tget_cset(t));
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    char *buf = malloc((size_t)n * size + 1);
    herr_t r = buf ? (is_dataset ? H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                                 : H5Aread(obj, mt, buf))
                   : -1;
    if (!buf) st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", what);
    else if (r < 0) st = h5fail(err, VL_ERR_IO, "%s: read failed", what);
    else
      for (int64_t i = 0; i < n && !st; i++) {
        const char *p = buf + (size_t)i * size;
        size_t len = 0;
        while (len < size && p[len]) len++;
        st = fn(i, p, len, arg, err);
      }
    free(buf);
    H5Tclose(mt);
  }
  H5Tclose(t);
  H5Sclose(s);
  return st;
}

vl_status vl_h5_read_strings(vl_h5file *f, const char *path, vl_h5_string_fn fn, void *arg,
                             vl_error *err) {
  if (vl_h5_kind_of(f, path) != VL_H5_DATASET)
    return vl_fail(err, VL_ERR_VALUE, "'%s' is not a dataset", path);
  hid_t d = H5Dopen2(f->id, path, H5P_DEFAULT);
  if (d < 0) return h5fail(err, VL_ERR_IO, "cannot open dataset '%s'", path);
  vl_status st = read_strings(d, true, path, fn, arg, err);
  H5Dclose(d);
  return st;
}

static hid_t make_space(int ndim, const int64_t *shape) {
  if (ndim == 0) return H5Screate(H5S_SCALAR);
  hsize_t dims[32];
  for (int d = 0; d < ndim; d++) dims[d] = (hsize_t)shape[d];
  return H5Screate_simple(ndim, dims, NULL);
}

vl_status vl_h5_write(vl_h5file *f, const char *path, const vl_tensor *t, int gzip,
                      vl_error *err) {
  if (!vl_is_contiguous(t)) return vl_fail(err, VL_ERR_VALUE, "%s: tensor must be contiguous", path);
  int64_t n = vl_numel(t);
  hid_t space = make_space(t->ndim, t->shape);
  hid_t ft = file_type(t->dtype);
  hid_t lcpl = lcpl_intermediate();
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (gzip > 0 && t->ndim > 0 && n > 0) {
    hsize_t chunk[32];
    size_t row_bytes = vl_dtype_size(t->dtype);
    for (int d = 1; d < t->ndim; d++) {
      chunk[d] = (hsize_t)t->shape[d];
      row_bytes *= (size_t)t->shape[d];
    }
    int64_t rows = (int64_t)((1 << 20) / (row_bytes ? row_bytes : 1));
    if (rows < 1) rows = 1;
    if (rows > t->shape[0]) rows = t->shape[0];
    chunk[0] = (hsize_t)rows;
    H5Pset_chunk(dcpl, t->ndim, chunk);
    H5Pset_deflate(dcpl, (unsigned)(gzip > 9 ? 9 : gzip));
  }
  vl_status st = VL_OK;
  hid_t d = H5Dcreate2(f->id, path, ft, space, lcpl, dcpl, H5P_DEFAULT);
  if (d < 0) st = h5fail(err, VL_ERR_IO, "cannot create dataset '%s'", path);
  else {
    hid_t mt = t->dtype == VL_BOOL ? ft : mem_type(t->dtype); /* the enum is native int8 */
    if (n > 0 && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
      st = h5fail(err, VL_ERR_IO, "writing dataset '%s' failed", path);
    H5Dclose(d);
  }
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Tclose(ft);
  H5Sclose(space);
  return st;
}

vl_status vl_h5_write_strings(vl_h5file *f, const char *path, const char *const *s, int64_t n,
                              bool scalar, vl_error *err) {
  int64_t shape[1] = {n};
  hid_t space = make_space(scalar ? 0 : 1, shape);
  hid_t ft = vlen_str_type();
  hid_t lcpl = lcpl_intermediate();
  vl_status st = VL_OK;
  hid_t d = H5Dcreate2(f->id, path, ft, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0) st = h5fail(err, VL_ERR_IO, "cannot create dataset '%s'", path);
  else {
    if ((scalar || n > 0) && H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0)
      st = h5fail(err, VL_ERR_IO, "writing dataset '%s' failed", path);
    H5Dclose(d);
  }
  H5Pclose(lcpl);
  H5Tclose(ft);
  H5Sclose(space);
  return st;
}

/* ---------- attributes ---------- */

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *vp) {
  name_iter *it = vp;
  it->st = it->fn(name, it->arg, it->err);
  return it->st ? 1 : 0;
}

static hid_t open_object(vl_h5file *f, const char *path, vl_error *err) {
  if (vl_h5_kind_of(f, path) == VL_H5_MISSING) {
    vl_fail(err, VL_ERR_VALUE, "no object '%s' in the file", path);
    return -1;
  }
  hid_t o = H5Oopen(f->id, path[0] ? path : "/", H5P_DEFAULT);
  if (o < 0) h5fail(err, VL_ERR_IO, "cannot open '%s'", path);
  return o;
}

vl_status vl_h5_list_attrs(vl_h5file *f, const char *path, vl_h5_name_fn fn, void *arg,
                           vl_error *err) {
  hid_t o = open_object(f, path, err);
  if (o < 0) return err ? err->code : VL_ERR_IO;
  name_iter it = {fn, arg, err, VL_OK};
  hsize_t idx = 0;
  herr_t r = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &it);
  H5Oclose(o);
  if (it.st) return it.st;
  if (r < 0) return h5fail(err, VL_ERR_IO, "cannot list the attributes of '%s'", path);
  return VL_OK;
}

static hid_t open_attr(vl_h5file *f, const char *path, const char *name, vl_error *err) {
  hid_t o = open_object(f, path, err);
  if (o < 0) return -1;
  htri_t e = H5Aexists(o, name);
  hid_t a = -1;
  if (e <= 0) {
    H5Eclear2(H5E_DEFAULT);
    vl_fail(err, VL_ERR_VALUE, "'%s' has no attribute '%s'", path, name);
  } else {
    a = H5Aopen(o, name, H5P_DEFAULT);
    if (a < 0) h5fail(err, VL_ERR_IO, "cannot open attribute '%s' of '%s'", name, path);
  }
  H5Oclose(o);
  return a;
}

vl_status vl_h5_attr_info(vl_h5file *f, const char *path, const char *name, vl_h5_info *info,
                          vl_error *err) {
  hid_t a = open_attr(f, path, name, err);
  if (a < 0) return err ? err->code : VL_ERR_IO;
  hid_t t = H5Aget_type(a), s = H5Aget_space(a);
  describe(t, s, info);
  H5Tclose(t);
  H5Sclose(s);
  H5Aclose(a);
  return VL_OK;
}

vl_status vl_h5_read_attr(vl_h5file *f, const char *path, const char *name,
                          const vl_tensor *out, vl_error *err) {
  hid_t a = open_attr(f, path, name, err);
  if (a < 0) return err ? err->code : VL_ERR_IO;
  vl_status st = read_numeric(a, false, name, out, NULL, err);
  H5Aclose(a);
  return st;
}

vl_status vl_h5_read_attr_strings(vl_h5file *f, const char *path, const char *name,
                                  vl_h5_string_fn fn, void *arg, vl_error *err) {
  hid_t a = open_attr(f, path, name, err);
  if (a < 0) return err ? err->code : VL_ERR_IO;
  vl_status st = read_strings(a, false, name, fn, arg, err);
  H5Aclose(a);
  return st;
}

/* Creates (replacing) attribute name on the object at path with type ft and space. */
static hid_t create_attr(vl_h5file *f, const char *path, const char *name, hid_t ft, hid_t space,
                         vl_error *err) {
  hid_t o = open_object(f, path, err);
  if (o < 0) return -1;
  if (H5Aexists(o, name) > 0) H5Adelete(o, name);
  H5Eclear2(H5E_DEFAULT);
  hid_t a = H5Acreate2(o, name, ft, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) h5fail(err, VL_ERR_IO, "cannot create attribute '%s' on '%s'", name, path);
  H5Oclose(o);
  return a;
}

vl_status vl_h5_write_attr(vl_h5file *f, const char *path, const char *name, const vl_tensor *t,
                           vl_error *err) {
  if (!vl_is_contiguous(t)) return vl_fail(err, VL_ERR_VALUE, "attribute '%s': not contiguous", name);
  hid_t space = make_space(t->ndim, t->shape);
  hid_t ft = file_type(t->dtype);
  vl_status st = VL_OK;
  hid_t a = create_attr(f, path, name, ft, space, err);
  if (a < 0) st = err ? err->code : VL_ERR_IO;
  else {
    hid_t mt = t->dtype == VL_BOOL ? ft : mem_type(t->dtype);
    if (vl_numel(t) > 0 && H5Awrite(a, mt, t->data) < 0)
      st = h5fail(err, VL_ERR_IO, "writing attribute '%s' failed", name);
    H5Aclose(a);
  }
  H5Tclose(ft);
  H5Sclose(space);
  return st;
}

vl_status vl_h5_write_attr_strings(vl_h5file *f, const char *path, const char *name,
                                   const char *const *s, int64_t n, bool scalar, vl_error *err) {
  int64_t shape[1] = {n};
  hid_t space = make_space(scalar ? 0 : 1, shape);
  hid_t ft = vlen_str_type();
  vl_status st = VL_OK;
  hid_t a = create_attr(f, path, name, ft, space, err);
  if (a < 0) st = err ? err->code : VL_ERR_IO;
  else {
    if ((scalar || n > 0) && H5Awrite(a, ft, s) < 0)
      st = h5fail(err, VL_ERR_IO, "writing attribute '%s' failed", name);
    H5Aclose(a);
  }
  H5Tclose(ft);
  H5Sclose(space);
  return st;
}
