/* HDF5 access (see hdf5_file.h). Every hid_t opened here is closed on every path out. */
#include "hdf5_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

static hid_t store_type(vl_h5_store st, vl_dtype dt) {
  switch (st) {
    case VL_H5_STORE_I8: return H5Tcopy(H5T_STD_I8LE);
    case VL_H5_STORE_I16: return H5Tcopy(H5T_STD_I16LE);
    case VL_H5_STORE_I32: return H5Tcopy(H5T_STD_I32LE);
    case VL_H5_STORE_U8: return H5Tcopy(H5T_STD_U8LE);
    case VL_H5_STORE_U16: return H5Tcopy(H5T_STD_U16LE);
    case VL_H5_STORE_U32: return H5Tcopy(H5T_STD_U32LE);
    case VL_H5_STORE_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case VL_H5_STORE_F64: return H5Tcopy(H5T_IEEE_F64LE);
    default: return file_type(dt);
  }
}

/* A dataset creation list: chunks of whole trailing dims, about 1 MB each, when compressed. */
static hid_t make_dcpl(int ndim, const int64_t *shape, size_t elem_size, int64_t n,
                       const vl_h5_write_opts *o) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if ((o->gzip > 0 || o->filter_id > 0) && ndim > 0 && n > 0) {
    hsize_t chunk[32];
    size_t row_bytes = elem_size;
    for (int d = 1; d < ndim; d++) {
      chunk[d] = (hsize_t)shape[d];
      row_bytes *= (size_t)shape[d];
    }
    int64_t rows = (int64_t)((1 << 20) / (row_bytes ? row_bytes : 1));
    if (rows < 1) rows = 1;
    if (rows > shape[0]) rows = shape[0];
    chunk[0] = (hsize_t)rows;
    H5Pset_chunk(dcpl, ndim, chunk);
    if (o->gzip > 0) H5Pset_deflate(dcpl, (unsigned)(o->gzip > 9 ? 9 : o->gzip));
    if (o->filter_id > 0) H5Pset_filter(dcpl, (H5Z_filter_t)o->filter_id, H5Z_FLAG_OPTIONAL, 0, NULL);
  }
  return dcpl;
}

vl_status vl_h5_write_ex(vl_h5file *f, const char *path, const vl_tensor *t,
                         const vl_h5_write_opts *o, vl_error *err) {
  if (!vl_is_contiguous(t)) return vl_fail(err, VL_ERR_VALUE, "%s: tensor must be contiguous", path);
  if (t->dtype == VL_BOOL && o->store != VL_H5_STORE_NATIVE)
    return vl_fail(err, VL_ERR_DTYPE, "%s: a bool tensor is stored only as bool", path);
  int64_t n = vl_numel(t);
  hid_t space = make_space(t->ndim, t->shape);
  hid_t ft = store_type(o->store, t->dtype);
  hid_t lcpl = lcpl_intermediate();
  hid_t dcpl = make_dcpl(t->ndim, t->shape, H5Tget_size(ft), n, o);
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

vl_status vl_h5_write(vl_h5file *f, const char *path, const vl_tensor *t, int gzip,
                      vl_error *err) {
  vl_h5_write_opts o = {gzip, VL_H5_STORE_NATIVE, 0, 0};
  return vl_h5_write_ex(f, path, t, &o, err);
}

vl_status vl_h5_write_strings_ex(vl_h5file *f, const char *path, const char *const *s,
                                 int64_t n, bool scalar, const vl_h5_write_opts *o,
                                 vl_error *err) {
  int64_t shape[1] = {n};
  hid_t ft;
  char *fixed = NULL;
  const void *buf = s;
  if (o->fixed_len > 0) {
    ft = H5Tcopy(H5T_C_S1);
    H5Tset_size(ft, o->fixed_len);
    H5Tset_strpad(ft, H5T_STR_NULLPAD);
    int64_t count = scalar ? 1 : n;
    fixed = calloc((size_t)(count > 0 ? count : 1), o->fixed_len);
    if (!fixed) {
      H5Tclose(ft);
      return vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t i = 0; i < count; i++) {
      size_t len = strlen(s[i]);
      if (len > o->fixed_len) {
        free(fixed);
        H5Tclose(ft);
        return vl_fail(err, VL_ERR_VALUE, "%s: string %lld is %zu bytes, longer than the fixed "
                       "length %zu", path, (long long)i + 1, len, o->fixed_len);
      }
      memcpy(fixed + (size_t)i * o->fixed_len, s[i], len);
    }
    buf = fixed;
  } else {
    ft = vlen_str_type();
  }
  hid_t space = make_space(scalar ? 0 : 1, shape);
  hid_t lcpl = lcpl_intermediate();
  hid_t dcpl = make_dcpl(scalar ? 0 : 1, shape, H5Tget_size(ft), scalar ? 1 : n, o);
  vl_status st = VL_OK;
  hid_t d = H5Dcreate2(f->id, path, ft, space, lcpl, dcpl, H5P_DEFAULT);
  if (d < 0) st = h5fail(err, VL_ERR_IO, "cannot create dataset '%s'", path);
  else {
    if ((scalar || n > 0) && H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
      st = h5fail(err, VL_ERR_IO, "writing dataset '%s' failed", path);
    H5Dclose(d);
  }
  free(fixed);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Tclose(ft);
  H5Sclose(space);
  return st;
}

vl_status vl_h5_write_strings(vl_h5file *f, const char *path, const char *const *s, int64_t n,
                              bool scalar, vl_error *err) {
  vl_h5_write_opts o = {0, VL_H5_STORE_NATIVE, 0, 0};
  return vl_h5_write_strings_ex(f, path, s, n, scalar, &o, err);
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

/* ---------- compound datasets ---------- */

/* Opens dataset path and checks that it is compound; *ft receives its type. */
static hid_t open_compound(vl_h5file *f, const char *path, hid_t *ft, vl_error *err) {
  if (vl_h5_kind_of(f, path) != VL_H5_DATASET) {
    vl_fail(err, VL_ERR_VALUE, "'%s' is not a dataset", path);
    return -1;
  }
  hid_t d = H5Dopen2(f->id, path, H5P_DEFAULT);
  if (d < 0) {
    h5fail(err, VL_ERR_IO, "cannot open dataset '%s'", path);
    return -1;
  }
  *ft = H5Dget_type(d);
  if (*ft < 0 || H5Tget_class(*ft) != H5T_COMPOUND) {
    vl_fail(err, VL_ERR_DTYPE, "'%s' is not a compound dataset", path);
    if (*ft >= 0) H5Tclose(*ft);
    H5Dclose(d);
    return -1;
  }
  return d;
}

/* Describes member type mt of a dataset with dataspace s: class of the base type, shape of
 * the dataset followed by the array dims. *base receives the base type (caller closes). */
static void describe_member(hid_t mt, hid_t s, vl_h5_info *info, hid_t *base, int *andims,
                            hsize_t *adims) {
  *andims = 0;
  if (H5Tget_class(mt) == H5T_ARRAY) {
    *base = H5Tget_super(mt);
    int nd = H5Tget_array_ndims(mt);
    if (nd < 0) nd = 0;
    if (nd > 8) nd = 8;
    hsize_t dims[32];
    H5Tget_array_dims2(mt, dims);
    for (int i = 0; i < nd; i++) adims[i] = dims[i];
    *andims = nd;
  } else {
    *base = H5Tcopy(mt);
  }
  describe(*base, s, info);
  for (int i = 0; i < *andims && info->ndim < VL_MAX_DIMS; i++)
    info->shape[info->ndim++] = (int64_t)adims[i];
}

vl_status vl_h5_compound_fields(vl_h5file *f, const char *path, vl_h5_field_fn fn, void *arg,
                                vl_error *err) {
  hid_t ft;
  hid_t d = open_compound(f, path, &ft, err);
  if (d < 0) return err ? err->code : VL_ERR_IO;
  hid_t s = H5Dget_space(d);
  int nm = H5Tget_nmembers(ft);
  vl_status st = VL_OK;
  for (int i = 0; i < nm && !st; i++) {
    char *name = H5Tget_member_name(ft, (unsigned)i);
    hid_t mt = H5Tget_member_type(ft, (unsigned)i);
    if (!name || mt < 0) {
      st = h5fail(err, VL_ERR_IO, "%s: cannot read member %d of the compound type", path, i);
    } else {
      vl_h5_info info;
      hid_t base;
      int and_;
      hsize_t adims[8];
      describe_member(mt, s, &info, &base, &and_, adims);
      H5Tclose(base);
      st = fn(name, &info, arg, err);
    }
    if (mt >= 0) H5Tclose(mt);
    if (name) H5free_memory(name);
  }
  H5Sclose(s);
  H5Tclose(ft);
  H5Dclose(d);
  return st;
}

/* Finds member field of compound type ft: its base type, array dims and the dataset's n. */
static vl_status find_member(hid_t ft, const char *path, const char *field, hid_t *mt,
                             vl_error *err) {
  int idx = H5Tget_member_index(ft, field);
  if (idx < 0) {
    H5Eclear2(H5E_DEFAULT);
    return vl_fail(err, VL_ERR_VALUE, "compound dataset '%s' has no field '%s'", path, field);
  }
  *mt = H5Tget_member_type(ft, (unsigned)idx);
  if (*mt < 0) return h5fail(err, VL_ERR_IO, "%s: cannot read field '%s'", path, field);
  return VL_OK;
}

vl_status vl_h5_read_field(vl_h5file *f, const char *path, const char *field,
                           const vl_tensor *out, vl_error *err) {
  if (!vl_is_contiguous(out)) return vl_fail(err, VL_ERR_VALUE, "%s: output must be contiguous", path);
  hid_t ft, mt = -1, base = -1, memb = -1, arr = -1, ct = -1, s = -1;
  hid_t d = open_compound(f, path, &ft, err);
  if (d < 0) return err ? err->code : VL_ERR_IO;
  int8_t *tmp = NULL;
  vl_status st = find_member(ft, path, field, &mt, err);
  if (st) goto done;
  s = H5Dget_space(d);
  vl_h5_info info;
  int andims;
  hsize_t adims[8];
  describe_member(mt, s, &info, &base, &andims, adims);
  int64_t n = 1;
  for (int i = 0; i < info.ndim; i++) n *= info.shape[i];
  if (n != vl_numel(out)) {
    char b1[128], b2[128];
    st = vl_fail(err, VL_ERR_SHAPE, "%s: field '%s' has shape %s, not the requested %s", path, field,
                 vl_shape_str(info.ndim, info.shape, b1, sizeof b1),
                 vl_shape_str(out->ndim, out->shape, b2, sizeof b2));
    goto done;
  }
  bool is_enum = info.cls == VL_H5T_BOOL || info.cls == VL_H5T_ENUM;
  if (!is_enum && info.cls != VL_H5T_FLOAT && info.cls != VL_H5T_INT && info.cls != VL_H5T_UINT) {
    st = vl_fail(err, VL_ERR_DTYPE, "%s: field '%s' is not numeric or boolean", path, field);
    goto done;
  }
  if (is_enum && info.size != 1) {
    st = vl_fail(err, VL_ERR_DTYPE, "%s: field '%s' is an enum with %zu-byte codes", path, field,
                 info.size);
    goto done;
  }
  if (n == 0) goto done;
  memb = is_enum ? H5Tget_native_type(base, H5T_DIR_ASCEND) : H5Tcopy(mem_type(out->dtype));
  if (andims > 0) arr = H5Tarray_create2(memb, (unsigned)andims, adims);
  hid_t elem = andims > 0 ? arr : memb;
  ct = H5Tcreate(H5T_COMPOUND, H5Tget_size(elem));
  H5Tinsert(ct, field, 0, elem);
  void *buf = out->data;
  if (is_enum) {
    tmp = malloc((size_t)n);
    if (!tmp) {
      st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", path);
      goto done;
    }
    buf = tmp;
  }
  if (H5Dread(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    st = h5fail(err, VL_ERR_IO, "%s: reading field '%s' failed", path, field);
  else if (is_enum)
    from_int8(tmp, out, n);
done:
  free(tmp);
  if (ct >= 0) H5Tclose(ct);
  if (arr >= 0) H5Tclose(arr);
  if (memb >= 0) H5Tclose(memb);
  if (base >= 0) H5Tclose(base);
  if (mt >= 0) H5Tclose(mt);
  if (s >= 0) H5Sclose(s);
  H5Tclose(ft);
  H5Dclose(d);
  return st;
}

vl_status vl_h5_read_field_strings(vl_h5file *f, const char *path, const char *field,
                                   vl_h5_string_fn fn, void *arg, vl_error *err) {
  hid_t ft, mt = -1, memb = -1, ct = -1, s = -1;
  hid_t d = open_compound(f, path, &ft, err);
  if (d < 0) return err ? err->code : VL_ERR_IO;
  vl_status st = find_member(ft, path, field, &mt, err);
  if (st) goto done;
  if (H5Tget_class(mt) != H5T_STRING) {
    st = vl_fail(err, VL_ERR_DTYPE, "%s: field '%s' is not a string", path, field);
    goto done;
  }
  s = H5Dget_space(d);
  hssize_t np = H5Sget_simple_extent_npoints(s);
  int64_t n = np < 0 ? 0 : (int64_t)np;
  if (n == 0) goto done;
  bool var = H5Tis_variable_str(mt) > 0;
  size_t size = var ? sizeof(char *) : H5Tget_size(mt);
  memb = H5Tcopy(H5T_C_S1);
  H5Tset_size(memb, var ? H5T_VARIABLE : size);
  H5Tset_cset(memb, H5Tget_cset(mt));
  if (!var) H5Tset_strpad(memb, H5T_STR_NULLPAD);
  ct = H5Tcreate(H5T_COMPOUND, size);
  H5Tinsert(ct, field, 0, memb);
  char *buf = calloc((size_t)n, size);
  if (!buf) {
    st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  if (H5Dread(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    st = h5fail(err, VL_ERR_IO, "%s: reading field '%s' failed", path, field);
    free(buf);
    goto done;
  }
  for (int64_t i = 0; i < n && !st; i++) {
    if (var) {
      const char *p = ((char **)buf)[i];
      st = fn(i, p ? p : "", p ? strlen(p) : 0, arg, err);
    } else {
      const char *p = buf + (size_t)i * size;
      size_t len = 0;
      while (len < size && p[len]) len++;
      st = fn(i, p, len, arg, err);
    }
  }
  if (var) H5Dvlen_reclaim(ct, s, H5P_DEFAULT, buf);
  free(buf);
done:
  if (ct >= 0) H5Tclose(ct);
  if (memb >= 0) H5Tclose(memb);
  if (mt >= 0) H5Tclose(mt);
  if (s >= 0) H5Sclose(s);
  H5Tclose(ft);
  H5Dclose(d);
  return st;
}

vl_status vl_h5_write_compound(vl_h5file *f, const char *path, int64_t n, int nfields,
                               const vl_h5_field *fields, vl_error *err) {
  if (nfields < 1) return vl_fail(err, VL_ERR_VALUE, "%s: a compound dataset needs a field", path);
  size_t *off = calloc((size_t)nfields, sizeof(size_t)), *sz = calloc((size_t)nfields, sizeof(size_t));
  hid_t *mts = calloc((size_t)nfields, sizeof(hid_t));
  if (!off || !sz || !mts) {
    free(off); free(sz); free(mts);
    return vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", path);
  }
  vl_status st = VL_OK;
  size_t total = 0;
  int made = 0;
  for (int i = 0; i < nfields && !st; i++, made++) {
    const vl_h5_field *fd = &fields[i];
    if (fd->strings) {
      mts[i] = vlen_str_type();
    } else if (fd->t) {
      const vl_tensor *t = fd->t;
      if (!vl_is_contiguous(t) || t->ndim < 1 || t->ndim > 2 || t->shape[0] != n) {
        st = vl_fail(err, VL_ERR_SHAPE, "%s: field '%s' must be a contiguous [n] or [n, k] tensor "
                     "with n = %lld", path, fd->name, (long long)n);
        mts[i] = -1;
        break;
      }
      hid_t b = t->dtype == VL_BOOL ? bool_type() : H5Tcopy(mem_type(t->dtype));
      if (t->ndim == 2) {
        hsize_t k = (hsize_t)t->shape[1];
        mts[i] = H5Tarray_create2(b, 1, &k);
        H5Tclose(b);
      } else {
        mts[i] = b;
      }
    } else {
      st = vl_fail(err, VL_ERR_VALUE, "%s: field '%s' has no data", path, fd->name);
      mts[i] = -1;
      break;
    }
    off[i] = total;
    sz[i] = H5Tget_size(mts[i]);
    total += sz[i];
  }
  char *buf = NULL;
  hid_t ct = -1;
  if (!st) {
    ct = H5Tcreate(H5T_COMPOUND, total);
    for (int i = 0; i < nfields; i++) H5Tinsert(ct, fields[i].name, off[i], mts[i]);
    buf = malloc(total * (size_t)(n > 0 ? n : 1));
    if (!buf) st = vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", path);
  }
  if (!st) {
    for (int64_t r = 0; r < n; r++)
      for (int i = 0; i < nfields; i++) {
        char *dst = buf + (size_t)r * total + off[i];
        if (fields[i].strings) {
          const char *sp = fields[i].strings[r];
          memcpy(dst, &sp, sizeof sp);
        }
        else memcpy(dst, (const char *)fields[i].t->data + (size_t)r * sz[i], sz[i]);
      }
    int64_t shape[1] = {n};
    hid_t space = make_space(1, shape);
    hid_t lcpl = lcpl_intermediate();
    hid_t d = H5Dcreate2(f->id, path, ct, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) st = h5fail(err, VL_ERR_IO, "cannot create dataset '%s'", path);
    else {
      if (n > 0 && H5Dwrite(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = h5fail(err, VL_ERR_IO, "writing dataset '%s' failed", path);
      H5Dclose(d);
    }
    H5Pclose(lcpl);
    H5Sclose(space);
  }
  if (ct >= 0) H5Tclose(ct);
  for (int i = 0; i < made; i++)
    if (mts[i] >= 0) H5Tclose(mts[i]);
  free(buf);
  free(off);
  free(sz);
  free(mts);
  return st;
}

/* ---------- object references ---------- */

vl_status vl_h5_read_attr_ref(vl_h5file *f, const char *path, const char *name, char *target,
                              size_t cap, vl_error *err) {
  hid_t a = open_attr(f, path, name, err);
  if (a < 0) return err ? err->code : VL_ERR_IO;
  hid_t t = H5Aget_type(a), s = H5Aget_space(a);
  vl_status st = VL_OK;
  if (H5Tget_class(t) != H5T_REFERENCE || H5Tequal(t, H5T_STD_REF_OBJ) <= 0) {
    st = vl_fail(err, VL_ERR_DTYPE, "attribute '%s' of '%s' is not an object reference", name, path);
  } else if (H5Sget_simple_extent_npoints(s) != 1) {
    st = vl_fail(err, VL_ERR_SHAPE, "attribute '%s' of '%s' holds more than one reference", name, path);
  } else {
    hobj_ref_t ref;
    if (H5Aread(a, H5T_STD_REF_OBJ, &ref) < 0) {
      st = h5fail(err, VL_ERR_IO, "reading attribute '%s' of '%s' failed", name, path);
    } else {
      ssize_t len = H5Rget_name(a, H5R_OBJECT, &ref, target, cap);
      if (len <= 0 || (size_t)len >= cap)
        st = h5fail(err, VL_ERR_IO, "attribute '%s' of '%s' refers to no named object", name, path);
    }
  }
  H5Eclear2(H5E_DEFAULT);
  H5Tclose(t);
  H5Sclose(s);
  H5Aclose(a);
  return st;
}

vl_status vl_h5_write_attr_ref(vl_h5file *f, const char *path, const char *name,
                               const char *target, vl_error *err) {
  if (vl_h5_kind_of(f, target) == VL_H5_MISSING)
    return vl_fail(err, VL_ERR_VALUE, "no object '%s' to refer to", target);
  hobj_ref_t ref;
  if (H5Rcreate(&ref, f->id, target, H5R_OBJECT, -1) < 0)
    return h5fail(err, VL_ERR_IO, "cannot make a reference to '%s'", target);
  hid_t space = H5Screate(H5S_SCALAR);
  vl_status st = VL_OK;
  hid_t a = create_attr(f, path, name, H5T_STD_REF_OBJ, space, err);
  if (a < 0) st = err ? err->code : VL_ERR_IO;
  else {
    if (H5Awrite(a, H5T_STD_REF_OBJ, &ref) < 0)
      st = h5fail(err, VL_ERR_IO, "writing attribute '%s' failed", name);
    H5Aclose(a);
  }
  H5Sclose(space);
  return st;
}

/* ---------- corrupt files ---------- */

/* State the checking child shares with its parent (an anonymous shared mapping). */
typedef struct {
  char where[1024]; /* the element being touched */
  char msg[VL_ERRMSG_SIZE];
  long visits;
} check_shared;

static uint64_t le_u(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Parses every global heap collection ("GCOL", version 1) with bounds checks: libhdf5 1.10
 * copies heap objects by the sizes stored there without checking them. Returns 0 when all are
 * sound, else 1 with a message. Assumes 8-byte lengths (the default file creation). */
static int scan_global_heaps(const char *path, check_shared *sh) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  struct stat stt;
  if (fstat(fd, &stt) != 0 || stt.st_size < 16) {
    close(fd);
    return 0;
  }
  size_t fsize = (size_t)stt.st_size;
  const unsigned char *m = mmap(NULL, fsize, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return 0;
  static const unsigned char sig[8] = {'G', 'C', 'O', 'L', 1, 0, 0, 0};
  int bad = 0;
  unsigned char *seen = malloc(65536 / 8);
  const unsigned char *p = m, *end = m + fsize;
  while (!bad && seen && (p = memmem(p, (size_t)(end - p), sig, sizeof sig)) != NULL) {
    size_t at = (size_t)(p - m);
    snprintf(sh->where, sizeof sh->where, "global heap collection at byte %zu", at);
    if ((size_t)(end - p) < 16) {
      bad = 1;
      break;
    }
    uint64_t csize = le_u(p + 8, 8);
    if (csize < 16 || csize > (uint64_t)(end - p)) {
      snprintf(sh->msg, sizeof sh->msg, "global heap collection at byte %zu has size %llu, "
               "beyond the end of the file", at, (unsigned long long)csize);
      bad = 1;
      break;
    }
    memset(seen, 0, 65536 / 8);
    const unsigned char *q = p + 16, *cend = p + csize;
    while (q + 16 <= cend) {
      unsigned idx = (unsigned)le_u(q, 2);
      uint64_t osize = le_u(q + 8, 8);
      uint64_t left = (uint64_t)(cend - q);
      if (idx == 0) { /* free space: the rest of the collection */
        if (osize > left) bad = 1;
        break;
      }
      uint64_t need = 16 + ((osize + 7) & ~(uint64_t)7);
      if (osize > left || need > left || (seen[idx / 8] >> (idx % 8) & 1)) {
        bad = 1;
        break;
      }
      seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
      q += need;
    }
    if (bad) {
      snprintf(sh->msg, sizeof sh->msg, "global heap collection at byte %zu (variable-length "
               "strings) is corrupt: an object runs past its end or repeats an index", at);
      break;
    }
    p += 8;
  }
  free(seen);
  munmap((void *)m, fsize);
  return bad;
}

static void check_object(hid_t file, const char *path, check_shared *sh, int depth);

/* Reads every element of buffer-able data (attribute or dataset) with its native type. */
static void touch_data(hid_t obj, bool is_dataset, check_shared *sh) {
  hid_t t = is_dataset ? H5Dget_type(obj) : H5Aget_type(obj);
  hid_t s = is_dataset ? H5Dget_space(obj) : H5Aget_space(obj);
  if (t < 0 || s < 0) goto out;
  H5T_class_t cls = H5Tget_class(t);
  bool risky = cls == H5T_STRING || cls == H5T_VLEN || cls == H5T_COMPOUND ||
               cls == H5T_REFERENCE || cls == H5T_ARRAY || cls == H5T_ENUM || !is_dataset;
  if (!risky) goto out; /* numeric payloads: only their layout is checked (H5Dget_create_plist) */
  hssize_t np = H5Sget_simple_extent_npoints(s);
  if (np <= 0) goto out;
  if (cls == H5T_REFERENCE) {
    if (H5Tequal(t, H5T_STD_REF_OBJ) > 0 && np <= 1024) {
      hobj_ref_t refs[1024];
      herr_t r = is_dataset ? H5Dread(obj, H5T_STD_REF_OBJ, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs)
                            : H5Aread(obj, H5T_STD_REF_OBJ, refs);
      for (hssize_t i = 0; r >= 0 && i < np; i++) {
        char name[512];
        H5Rget_name(obj, H5R_OBJECT, &refs[i], name, sizeof name);
      }
    }
    goto out;
  }
  hid_t nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
  if (nt < 0) goto out;
  size_t size = H5Tget_size(nt);
  if (size == 0 || (uint64_t)np * size > ((uint64_t)1 << 31)) {
    H5Tclose(nt);
    goto out;
  }
  void *buf = calloc((size_t)np, size);
  if (buf) {
    herr_t r = is_dataset ? H5Dread(obj, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)
                          : H5Aread(obj, nt, buf);
    if (r >= 0 && H5Tdetect_class(nt, H5T_VLEN) > 0) H5Dvlen_reclaim(nt, s, H5P_DEFAULT, buf);
    else if (r >= 0 && cls == H5T_STRING && H5Tis_variable_str(nt) > 0)
      H5Dvlen_reclaim(nt, s, H5P_DEFAULT, buf);
    free(buf);
  }
  H5Tclose(nt);
out:
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  H5Eclear2(H5E_DEFAULT);
}

typedef struct {
  hid_t file;
  const char *path;
  check_shared *sh;
  int depth;
} check_iter;

static herr_t check_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *vp) {
  check_iter *it = vp;
  snprintf(it->sh->where, sizeof it->sh->where, "%s (attribute '%s')", it->path, name);
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a >= 0) {
    touch_data(a, false, it->sh);
    H5Aclose(a);
  }
  H5Eclear2(H5E_DEFAULT);
  return 0;
}

static herr_t check_link_cb(hid_t g, const char *name, const H5L_info_t *info, void *vp) {
  check_iter *it = vp;
  if (++it->sh->visits > 200000) return 1; /* enough: hard-link cycles in a corrupt file */
  char child[1024];
  snprintf(child, sizeof child, "%s/%s", strcmp(it->path, "/") == 0 ? "" : it->path, name);
  if (info->type == H5L_TYPE_HARD) check_object(it->file, child, it->sh, it->depth + 1);
  return 0;
}

static void check_object(hid_t file, const char *path, check_shared *sh, int depth) {
  if (depth > 48) return;
  snprintf(sh->where, sizeof sh->where, "%s", path);
  hid_t o = H5Oopen(file, path, H5P_DEFAULT);
  if (o < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  check_iter it = {file, path, sh, depth};
  hsize_t idx = 0;
  H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, check_attr_cb, &it);
  H5Eclear2(H5E_DEFAULT);
  snprintf(sh->where, sizeof sh->where, "%s", path);
  H5I_type_t type = H5Iget_type(o);
  if (type == H5I_DATASET) {
    hid_t dcpl = H5Dget_create_plist(o);
    if (dcpl >= 0) H5Pclose(dcpl);
    touch_data(o, true, sh);
  } else if (type == H5I_GROUP) {
    idx = 0;
    H5Literate(o, H5_INDEX_NAME, H5_ITER_INC, &idx, check_link_cb, &it);
  }
  H5Eclear2(H5E_DEFAULT);
  H5Oclose(o);
}

static void check_child(const char *path, check_shared *sh, unsigned timeout) {
  /* default dispositions: an inherited SIG_IGN or crash handler must not hide the outcome */
  signal(SIGALRM, SIG_DFL);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  signal(SIGABRT, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  alarm(timeout);
  if (scan_global_heaps(path, sh)) _exit(3);
  quiet();
  snprintf(sh->where, sizeof sh->where, "the superblock");
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) _exit(2);
  check_object(file, "/", sh, 0);
  /* closing frees the cached object headers, which a corrupt header can also crash */
  snprintf(sh->where, sizeof sh->where, "the object headers (while closing the file)");
  H5Fclose(file);
  _exit(0); /* no atexit handlers: the parent's HDF5 state is not ours to flush */
}

vl_status vl_h5_check(const char *path, double timeout_s, vl_error *err) {
  FILE *probe = fopen(path, "rb");
  if (!probe) return vl_fail(err, VL_ERR_IO, "cannot open '%s': no such file or not readable", path);
  fclose(probe);
  check_shared *sh = mmap(NULL, sizeof(check_shared), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return VL_OK; /* cannot check here: read without the check */
  memset(sh, 0, sizeof *sh);
  unsigned timeout = timeout_s >= 1 ? (unsigned)timeout_s : 1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) check_child(path, sh, timeout);
  vl_status st = VL_OK;
  if (pid > 0) {
    int status = 0;
    pid_t r;
    do r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r == pid && WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      if (sig == SIGALRM)
        st = vl_fail(err, VL_ERR_IO, "'%s' looks corrupt: reading it did not finish within %u s "
                     "(stuck at %s)", path, timeout, sh->where);
      else
        st = vl_fail(err, VL_ERR_IO, "'%s' is corrupt: the HDF5 library crashed (signal %d) "
                     "reading %s", path, sig, sh->where);
    } else if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 3) {
      st = vl_fail(err, VL_ERR_IO, "'%s' is corrupt: %s", path, sh->msg);
    }
  }
  munmap(sh, sizeof *sh);
  return st;
}
