/* Model files: safetensors, read through mmap and used in place.
 *
 * lr_model_open takes a .safetensors file, or a directory laid out as a Hugging Face model
 * repository: config.json beside model.safetensors, or beside model.safetensors.index.json
 * and its shards (model.safetensors wins when both exist; config.json is optional). Metadata
 * (architecture and hyper-parameters) comes from the files' __metadata__ and then from
 * config.json's top-level members; both are exposed as key -> text pairs, where a JSON
 * string gives its decoded text and any other JSON value gives its JSON source text. When a
 * key appears more than once (each shard's "format"), the first occurrence wins.
 *
 * The parser treats the file as hostile: header length capped, strict JSON, every tensor's
 * byte range inside the data section, no two ranges overlapping, together covering it,
 * shapes checked for overflow and against the dtype's byte size. Every error message starts
 * with the file (the path as given, directory/shard, or the memory model's name) and names
 * the tensor where there is one. Tensors stay in the mapping, except those the file places
 * at an address misaligned for their dtype, which are copied once at open. */
#ifndef LONGRANGE_MODEL_H
#define LONGRANGE_MODEL_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LR_SAFETENSORS_MAX_HEADER (100u << 20) /* the cap the reference implementation uses */
#define LR_MODEL_MAX_DIMS 8

typedef struct {
    const char *name;
    const char *dtype_name;  /* as written in the file: "F32", "BF16", "I64", ... */
    int dtype;               /* an lr_dtype, or -1 for a dtype libcore does not compute in */
    int ndim;
    int64_t shape[LR_MODEL_MAX_DIMS];
    const void *data;        /* inside the mapping; little-endian */
    size_t nbytes;
} lr_model_tensor;

typedef struct lr_model lr_model;

lr_status lr_model_open(lr_ctx *ctx, const char *path, lr_model **out);
/* A model held in memory (an embedded default); `name` is used in messages. The memory must
 * outlive the model. */
lr_status lr_model_open_memory(lr_ctx *ctx, const char *name, const void *data, size_t size,
                               lr_model **out);
void lr_model_close(lr_model *m);

const char *lr_model_path(const lr_model *m);

/* Metadata. lr_model_meta returns NULL when the key is absent. */
size_t lr_model_meta_count(const lr_model *m);
void lr_model_meta_at(const lr_model *m, size_t i, const char **key, const char **value);
const char *lr_model_meta(const lr_model *m, const char *key);
/* Typed getters: absent key -> *out = dflt and LR_OK when has_default, else LR_ERR_MODEL;
 * a present but malformed value is always LR_ERR_MODEL naming the key. */
lr_status lr_model_meta_int(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                            int64_t dflt, int64_t *out);
/* An integer hyper-parameter that must lie in [lo, hi] (lo >= INT_MIN, hi <= INT_MAX), as an
 * int: LR_ERR_MODEL naming the key, its value and the range otherwise. */
lr_status lr_model_meta_int_in(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                               int dflt, int lo, int hi, int *out);
lr_status lr_model_meta_float(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                              double dflt, double *out);
/* LR_ERR_MODEL unless the metadata's "arch" (or config.json's model_type) equals arch. */
lr_status lr_model_expect_arch(lr_ctx *ctx, const lr_model *m, const char *arch);

/* Tensors, in file order (shards in index order). */
size_t lr_model_tensor_count(const lr_model *m);
const lr_model_tensor *lr_model_tensor_at(const lr_model *m, size_t i);
const lr_model_tensor *lr_model_find(const lr_model *m, const char *name);

/* The tensor `name` as an lr_tensor view, after checking that it exists, has dtype `dtype`,
 * `ndim` dimensions (at most LR_MAX_DIMS) and, where shape[i] >= 0, that extent (shape may be
 * NULL: any extents). The message on failure names the file, the tensor, and what was
 * expected and found: "f.safetensors: tensor 'w': expected shape [768, 256], found [768, 128]".
 * The view's data is read-only memory even though lr_tensor's pointer is not const. */
lr_status lr_model_get(lr_ctx *ctx, const lr_model *m, const char *name, lr_dtype dtype, int ndim,
                       const int64_t *shape, lr_tensor *out);

/* As lr_model_get with dtype F32, but an F16 or BF16 tensor is also accepted: it is widened
 * once into memory the model owns (freed by lr_model_close), so weights may be shipped at
 * half the size. Not thread-safe: get the tensors when the model is opened. */
lr_status lr_model_get_f32(lr_ctx *ctx, const lr_model *m, const char *name, int ndim,
                           const int64_t *shape, lr_tensor *out);

/* Writes a safetensors file (to a temporary beside `path`, renamed on success).
 * meta: NULL or pairs {key, value, key, value, ..., NULL}; tensors must be contiguous.
 * The header is padded to a multiple of 8 and the data ordered by decreasing element size,
 * so every tensor is aligned when the file is mapped. Names and metadata must be valid UTF-8
 * and unique (LR_ERR_ARG otherwise). */
typedef struct {
    const char *name;
    lr_tensor tensor;
} lr_named_tensor;
lr_status lr_safetensors_write(lr_ctx *ctx, const char *path, const char *const *meta,
                               const lr_named_tensor *tensors, size_t n);

#ifdef __cplusplus
}
#endif
#endif
