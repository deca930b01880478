/* HDF5 files: the one place that includes hdf5.h. Groups, n-d numeric datasets (read with
 * conversion into a caller-provided tensor, written in their own or a narrower file type),
 * string datasets (variable or fixed length), attributes, listing, compound datasets and
 * object references (the legacy AnnData layouts), and a crash-proof check of a file before
 * reading it. Bools are stored as h5py does (an int8 enum FALSE/TRUE), strings as
 * variable-length UTF-8, as anndata writes them. Paths are absolute ("/a/b") or relative to
 * the root. The HDF5 error stack is never printed: failures come back as vl_status codes with
 * the innermost HDF5 message in err. */
#ifndef VELUA_HDF5_FILE_H
#define VELUA_HDF5_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"

typedef struct vl_h5file vl_h5file;

typedef enum { VL_H5_READ, VL_H5_READWRITE, VL_H5_CREATE } vl_h5_mode;
typedef enum { VL_H5_MISSING, VL_H5_GROUP, VL_H5_DATASET, VL_H5_OTHER } vl_h5_kind;
typedef enum {
  VL_H5T_FLOAT, VL_H5T_INT, VL_H5T_UINT, VL_H5T_BOOL, VL_H5T_STRING, VL_H5T_COMPOUND,
  VL_H5T_ENUM, VL_H5T_REFERENCE, VL_H5T_OTHER
} vl_h5_class;

typedef struct {
  vl_h5_class cls;
  size_t size;                  /* bytes per element in the file */
  int ndim;                     /* 0 for a scalar dataspace */
  int64_t shape[VL_MAX_DIMS];
  bool variable_string;         /* variable-length strings */
  int filter_ok;                /* 1 if every filter of the dataset can be applied here */
  char filter_name[64];         /* the first unavailable filter, if any */
} vl_h5_info;

/* Receives one name (a child link or an attribute). */
typedef vl_status (*vl_h5_name_fn)(const char *name, void *arg, vl_error *err);
/* Receives string i of a string dataset or attribute (s is not NUL-terminated beyond len). */
typedef vl_status (*vl_h5_string_fn)(int64_t i, const char *s, size_t len, void *arg,
                                     vl_error *err);

vl_status vl_h5_open(const char *path, vl_h5_mode mode, vl_h5file **out, vl_error *err);
/* Flushes and closes; safe on NULL. */
vl_status vl_h5_close(vl_h5file *f, vl_error *err);

vl_h5_kind vl_h5_kind_of(vl_h5file *f, const char *path);
vl_status vl_h5_create_group(vl_h5file *f, const char *path, vl_error *err);
/* Calls fn for each child of the group at path, in name order. */
vl_status vl_h5_list(vl_h5file *f, const char *path, vl_h5_name_fn fn, void *arg, vl_error *err);

vl_status vl_h5_dataset_info(vl_h5file *f, const char *path, vl_h5_info *info, vl_error *err);
/* Reads a numeric or bool dataset into out (contiguous, same shape), converting to its dtype.
 * rows: when not NULL, reads only rows [rows[0], rows[1]) of dim 1. */
vl_status vl_h5_read(vl_h5file *f, const char *path, const vl_tensor *out, const int64_t *rows,
                     vl_error *err);
vl_status vl_h5_read_strings(vl_h5file *f, const char *path, vl_h5_string_fn fn, void *arg,
                             vl_error *err);
/* Writes t (contiguous) as a new dataset; gzip 0 = no compression, 1-9 deflate level
 * (chunked). */
vl_status vl_h5_write(vl_h5file *f, const char *path, const vl_tensor *t, int gzip,
                      vl_error *err);
/* Writes n strings as a 1-d dataset, or one string as a scalar dataset when scalar is true. */
vl_status vl_h5_write_strings(vl_h5file *f, const char *path, const char *const *s, int64_t n,
                              bool scalar, vl_error *err);

/* How a numeric tensor is stored in the file: its own type, or a narrower integer/float
 * (HDF5 converts on write; AnnData writes int8 category codes and int32 CSR indices). */
typedef enum {
  VL_H5_STORE_NATIVE, VL_H5_STORE_I8, VL_H5_STORE_I16, VL_H5_STORE_I32, VL_H5_STORE_U8,
  VL_H5_STORE_U16, VL_H5_STORE_U32, VL_H5_STORE_F32, VL_H5_STORE_F64
} vl_h5_store;

typedef struct {
  int gzip;            /* 0 = none, 1-9 deflate level (chunked) */
  vl_h5_store store;   /* file type */
  int filter_id;       /* > 0: add this filter id as optional (tests of unknown filters) */
  size_t fixed_len;    /* strings: 0 = variable length UTF-8, else fixed-length ASCII */
} vl_h5_write_opts;

vl_status vl_h5_write_ex(vl_h5file *f, const char *path, const vl_tensor *t,
                         const vl_h5_write_opts *o, vl_error *err);
vl_status vl_h5_write_strings_ex(vl_h5file *f, const char *path, const char *const *s,
                                 int64_t n, bool scalar, const vl_h5_write_opts *o,
                                 vl_error *err);

/* ---------- compound datasets (legacy AnnData obs/var/obsm as record arrays) ---------- */

/* Receives member `name` of a compound dataset: info->cls is the member's class (of its base
 * for array members), info->shape the dataset's shape followed by the member's array dims. */
typedef vl_status (*vl_h5_field_fn)(const char *name, const vl_h5_info *info, void *arg,
                                    vl_error *err);
vl_status vl_h5_compound_fields(vl_h5file *f, const char *path, vl_h5_field_fn fn, void *arg,
                                vl_error *err);
/* Reads numeric/bool member `field` into out (contiguous, shape as reported above). */
vl_status vl_h5_read_field(vl_h5file *f, const char *path, const char *field,
                           const vl_tensor *out, vl_error *err);
vl_status vl_h5_read_field_strings(vl_h5file *f, const char *path, const char *field,
                                   vl_h5_string_fn fn, void *arg, vl_error *err);

/* One member of a compound dataset to write: a tensor (1-d [n], or 2-d [n, k] stored as an
 * array member) or n strings (variable length). */
typedef struct {
  const char *name;
  const vl_tensor *t;
  const char *const *strings;
} vl_h5_field;
vl_status vl_h5_write_compound(vl_h5file *f, const char *path, int64_t n, int nfields,
                               const vl_h5_field *fields, vl_error *err);

/* ---------- object references (legacy AnnData categories) ---------- */

/* The path of the object that the scalar object-reference attribute `name` points to. */
vl_status vl_h5_read_attr_ref(vl_h5file *f, const char *path, const char *name, char *target,
                              size_t cap, vl_error *err);
vl_status vl_h5_write_attr_ref(vl_h5file *f, const char *path, const char *name,
                               const char *target, vl_error *err);

/* ---------- corrupt files ---------- */

/* Checks a file before it is read, because libhdf5 1.10 trusts some on-disk structures and can
 * crash (or overrun its buffers) on a corrupt file. Two parts: (1) every global heap collection
 * (where variable-length strings live) is parsed with bounds checks; (2) a forked child process
 * walks the whole file (groups, attributes, string, compound and reference data, dataset
 * layouts) exactly as a reader would; if the child dies of a signal, or exceeds timeout_s,
 * the file is reported corrupt, naming the last element it touched. Plain HDF5 errors in the
 * child are not reported (the real read reports them with context). */
vl_status vl_h5_check(const char *path, double timeout_s, vl_error *err);

vl_status vl_h5_list_attrs(vl_h5file *f, const char *path, vl_h5_name_fn fn, void *arg,
                           vl_error *err);
vl_status vl_h5_attr_info(vl_h5file *f, const char *path, const char *name, vl_h5_info *info,
                          vl_error *err);
vl_status vl_h5_read_attr(vl_h5file *f, const char *path, const char *name,
                          const vl_tensor *out, vl_error *err);
vl_status vl_h5_read_attr_strings(vl_h5file *f, const char *path, const char *name,
                                  vl_h5_string_fn fn, void *arg, vl_error *err);
vl_status vl_h5_write_attr(vl_h5file *f, const char *path, const char *name, const vl_tensor *t,
                           vl_error *err);
vl_status vl_h5_write_attr_strings(vl_h5file *f, const char *path, const char *name,
                                   const char *const *s, int64_t n, bool scalar, vl_error *err);

#endif
