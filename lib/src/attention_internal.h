/* What the attention driver (attention.c) shares with its per-instruction-set tile kernels
 * (cpu/attn_*.c).
 *
 * A task owns a tile of up to block_q query rows of one head and walks the key tiles
 * (up to block_k keys) that its rows can see. Scores are kept transposed, S^T[key][query],
 * so that vectors run along queries: row maxima and row sums of the softmax are then
 * element-wise operations across key rows, with no horizontal reductions, and K and V are
 * read in place (a key element or a probability is broadcast, a query vector is loaded).
 *
 * Layouts, with br = block_q:
 *   packed Q   F32 kernels: qt[d * br + i] = q[i][d]
 *              BF16 kernels: 32-bit pairs qt[dp * br + i] = (q[i][2dp], q[i][2dp + 1]),
 *              the odd last element paired with zero
 *   scores     s[j * br + i] for key j of the tile and query i
 *   P          F32 kernels: in place of the scores
 *              BF16 kernels: 32-bit pairs p[jp * br + i] = (P[2jp][i], P[2jp + 1][i])
 *   packed V   BF16 kernels only: 32-bit pairs vp[jp * ldv + c] = (v[2jp][c], v[2jp + 1][c])
 *   O          o[i * ldo + c], ldo a multiple of 16; rows and columns past the tile are
 *              computed on zero padding and never read back
 * Query rows past the tile are zero in the packed Q. */
#ifndef LR_ATTENTION_INTERNAL_H
#define LR_ATTENTION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "longrange/core.h"

/* log2(e): the kernels work in base 2, so a logit x becomes x * log2(e). */
#define LR_LOG2E 1.44269504088896340736f

/* s[j * br + i] = q_i . k_j for j < nk, i < br, and colmax[i] = max_j s[j * br + i].
 * k points at key row 0 of the tile (F32 or BF16 as the kernel takes), rows k_stride
 * elements apart. */
typedef void (*lr_attn_scores_fn)(const void *qt, int br, const void *k, int64_t k_stride,
                                  int nk, int d, float *s, float *colmax);

/* Hides every score of key row j outside queries [lo[j], hi[j]) with -inf and recomputes
 * colmax over what is left. */
typedef void (*lr_attn_mask_fn)(float *s, int br, int nk, const int32_t *lo, const int32_t *hi,
                                float *colmax);

/* One online-softmax step over a tile of scores whose logits in base 2 are s * c (c > 0,
 * colmax the column maxima of s). Per query i: m_new = max(m[i], colmax[i] * c); the
 * probabilities exp2(s * c - m_new) replace the scores (or go to p as bf16 pairs);
 * alpha[i] = exp2(m[i] - m_new) rescales what was accumulated so far, l[i] becomes
 * l[i] * alpha[i] + the row sum, m[i] becomes m_new. A query that has seen only -inf keeps
 * m = -inf and gets zero probabilities and alpha = 0. */
typedef void (*lr_attn_softmax_fn)(float *s, void *p, int br, int nk, float c,
                                   const float *colmax, float *m, float *l, float *alpha);

/* BF16 kernels: packs nk value rows (dv columns, rows v_stride apart) into pairs, ldv
 * columns per pair row, zero past dv and past nk. */
typedef void (*lr_attn_pack_v_fn)(const uint16_t *v, int64_t v_stride, int nk, int dv,
                                  int ldv, uint32_t *vp);

/* o[i][c] = alpha[i] * o[i][c] + sum_j P[j][i] v[j][c] for i < br, c < dv. v is the value
 * rows (F32 kernels, rows v_stride apart) or the packed pairs (BF16 kernels, v_stride = ldv). */
typedef void (*lr_attn_accumulate_fn)(const void *p, int br, const void *v, int64_t v_stride,
                                      int nk, int dv, const float *alpha, float *o, int ldo);

typedef struct {
    const char *name;
    int block_q;  /* query rows per tile; shorter query spans get a smaller multiple of 16,
                   * and the kernels take any multiple of 16 up to block_q as br */
    int block_k;  /* keys per tile (at most: tiles end early at the edges), even */
    bool bf16;    /* takes BF16 Q, K, V as they are; otherwise F32 */
    lr_attn_scores_fn scores;
    lr_attn_mask_fn mask;
    lr_attn_softmax_fn softmax;
    lr_attn_pack_v_fn pack_v; /* BF16 kernels only */
    lr_attn_accumulate_fn accumulate;
} lr_attn_kernel;

extern const lr_attn_kernel lr_attn_kernel_ref;
extern const lr_attn_kernel lr_attn_kernel_avx2;
extern const lr_attn_kernel lr_attn_kernel_avx512;
extern const lr_attn_kernel lr_attn_kernel_avx512_bf16;

/* The F32 tile kernels of a CPU level, for the kernels built on lr_attention's tiles. */
const lr_attn_kernel *lr_attn_kernel_f32(lr_cpu_level level);

#endif
