/* Tensors: a typed view of memory with up to 4 dimensions and element strides.
 * A tensor never owns its data: weights live in the mmapped model file, activations in an
 * arena. Views (slice, transpose, reshape) only change shape and strides. */
#ifndef LONGRANGE_TENSOR_H
#define LONGRANGE_TENSOR_H

#include <stdbool.h>

#include "longrange/arena.h"
#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LR_MAX_DIMS 4

typedef enum { LR_F32 = 0, LR_F16, LR_BF16, LR_I32, LR_U8, LR_DTYPE_COUNT } lr_dtype;

size_t lr_dtype_size(lr_dtype t);
const char *lr_dtype_name(lr_dtype t);
/* Parses "f32"/"F32"/"float32" style names; returns -1 if unknown. */
int lr_dtype_parse(const char *name);

typedef struct {
    void *data;
    lr_dtype dtype;
    int ndim;
    int64_t shape[LR_MAX_DIMS];
    int64_t stride[LR_MAX_DIMS]; /* in elements */
} lr_tensor;

/* Element count, or -1 if a dimension is negative or the product overflows int64. */
int64_t lr_shape_numel(int ndim, const int64_t *shape);
/* Bytes of a contiguous tensor of that shape; false on overflow. */
bool lr_shape_nbytes(lr_dtype t, int ndim, const int64_t *shape, size_t *out);

/* A contiguous (C order) tensor over data. */
lr_tensor lr_tensor_from(void *data, lr_dtype t, int ndim, const int64_t *shape);
/* Allocates a contiguous tensor in the arena. */
lr_status lr_tensor_alloc(lr_ctx *ctx, lr_arena *a, lr_dtype t, int ndim, const int64_t *shape,
                          lr_tensor *out);

int64_t lr_tensor_numel(const lr_tensor *t);
bool lr_tensor_is_contiguous(const lr_tensor *t);
/* Pointer to the element at index idx[0..ndim). */
void *lr_tensor_at(const lr_tensor *t, const int64_t *idx);

/* Views. Each checks its arguments and returns LR_ERR_ARG (with the reason) on misuse. */
lr_status lr_tensor_slice(lr_ctx *ctx, const lr_tensor *t, int dim, int64_t start, int64_t len,
                          lr_tensor *out);
lr_status lr_tensor_transpose(lr_ctx *ctx, const lr_tensor *t, int d0, int d1, lr_tensor *out);
/* Only for contiguous tensors; one dimension may be -1 (inferred). */
lr_status lr_tensor_reshape(lr_ctx *ctx, const lr_tensor *t, int ndim, const int64_t *shape,
                            lr_tensor *out);

/* Copies src into dst (same shape), converting dtype between f32, f16 and bf16 as needed;
 * integer dtypes copy only to the same dtype. Either side may be strided; when both are
 * contiguous it is one memmove or a vectorised conversion with the same results as the
 * scalar functions below. */
lr_status lr_tensor_copy(lr_ctx *ctx, const lr_tensor *src, lr_tensor *dst);

/* Scalar conversions (round to nearest even). */
float lr_f16_to_f32(uint16_t h);
uint16_t lr_f32_to_f16(float f);
float lr_bf16_to_f32(uint16_t b);
uint16_t lr_f32_to_bf16(float f);

/* "[2, 3, 4]" into buf. */
const char *lr_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
