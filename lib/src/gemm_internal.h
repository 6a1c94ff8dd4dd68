/* What the GEMM driver (gemm.c) shares with its per-instruction-set kernels (cpu/gemm_*.c).
 *
 * Packed layouts: a block of op(A) is cut into panels of `mr` rows, each stored k-major
 * (panel[k * mr + i]); a block of op(B) into panels of `nr` columns (panel[k * nr + j]).
 * Rows or columns past the edge of the matrix are zero in the panel. */
#ifndef LR_GEMM_INTERNAL_H
#define LR_GEMM_INTERNAL_H

#include <stdint.h>

/* C[0..m, 0..n) = alpha * (a-panel x b-panel over kc steps) + beta * C, for m <= mr and
 * n <= nr. beta == 0 never reads C. Every element is the same sequence of operations
 * whatever m and n are, which keeps results independent of how the work is split. */
typedef void (*lr_gemm_micro_fn)(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc, int m, int n, float alpha, float beta);

/* Packs the w x k block whose element (x, kk) is src[x * stride_w + kk * stride_k] into
 * ceil(w / width) panels of `width` (the kernel's mr for A, nr for B). */
typedef void (*lr_gemm_pack_fn)(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                                int64_t k, float *dst);

typedef struct {
    int mr, nr;         /* micro-tile */
    int kc;             /* K block: an mr x kc panel of A stays in L1 */
    int mc;             /* most rows of A one task packs per K block (a multiple of mr) */
    int nc;             /* N block: a kc x nc block of B stays in L2 (a multiple of nr) */
    lr_gemm_micro_fn micro;
    lr_gemm_pack_fn pack_a; /* width mr */
    lr_gemm_pack_fn pack_b; /* width nr */
} lr_gemm_kernel;

extern const lr_gemm_kernel lr_gemm_kernel_ref;
extern const lr_gemm_kernel lr_gemm_kernel_avx2;
extern const lr_gemm_kernel lr_gemm_kernel_avx512;

/* The portable packer every kernel falls back on for layouts it has no fast path for. */
void lr_gemm_pack_generic(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                          int64_t k, int width, float *dst);

#endif
