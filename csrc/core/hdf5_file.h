/* HDF5 files: the one place that includes hdf5.h. Groups, n-d numeric datasets (read with
 * conversion into a caller-provided tensor), string datasets (variable or fixed length),
 * attributes, and listing. Bools are stored as h5py does (an int8 enum FALSE/TRUE), strings as
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
