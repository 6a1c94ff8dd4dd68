/* bra: BiFormer's bi-level routing attention (lr_bra) on the case seen as an image.
 *
 * The length L is an image rows x cols as for na2d (rows the largest divisor of L up to
 * sqrt(L)). The image is cut into S x S regions with S the smallest divisor of
 * gcd(rows, cols) whose regions hold at most 64 tokens (8 x 8 regions on the square images of
 * L = 4096 or 16384, BiFormer's stage-1 region size), and every region routes to
 * topk = min(4, S^2) regions. Lengths whose image has no such S (gcd 1: L = 77, 130, ...) get
 * one region, i.e. exact attention. The case's heads become the channels of BiFormer's NHWC
 * layout (channel h * D + e), grouped kv heads repeated; the kernel's time includes that
 * rearrangement into buffers kept between runs, as is lr_bra's workspace (a model passes
 * one from its arena). The scale is the case's (1/sqrt(D) by
 * default, as for every attn-bench kernel, rather than BiFormer's Cqk^-0.5), so the error
 * column measures what routing leaves out of exact attention.
 *
 * FLOPs: 4 D per visible (query, key) pair (B Hq L topk rh rw pairs), plus the routing:
 * 2 L Hq D for the region means and 2 S^4 Hq D for the affinities, per batch item. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/bra.h"

enum { BRA_MAX_REGION = 64, BRA_TOPK = 4 };

typedef struct {
    int64_t rows, cols, S, topk;
} bra_setup;

static bra_setup bra_setup_of(const attn_case *c)
{
    bra_setup s = {1, c->Lk, 1, 1};
    for (int64_t f = 1; f * f <= c->Lk; f++)
        if (c->Lk % f == 0)
            s.rows = f;
    s.cols = c->Lk / s.rows;
    int64_t g = s.rows, r = s.cols;
    while (r) {
        int64_t t = g % r;
        g = r;
        r = t;
    }
    s.S = g;
    for (int64_t d = 1; d <= g; d++)
        if (g % d == 0 && (s.rows / d) * (s.cols / d) <= BRA_MAX_REGION) {
            s.S = d;
            break;
        }
    s.topk = s.S * s.S < BRA_TOPK ? s.S * s.S : BRA_TOPK;
    return s;
}

/* Buffers kept between runs, so that repeated runs do not page in fresh memory. */
static struct {
    void *mem[5];
    size_t size[5];
    bool registered;
} held;

static void held_free(void)
{
    for (int i = 0; i < 5; i++)
        free(held.mem[i]);
}

static lr_status held_buffer(lr_ctx *ctx, int i, size_t bytes, void **out)
{
    if (held.size[i] < bytes) {
        free(held.mem[i]);
        held.size[i] = 0;
        if (posix_memalign(&held.mem[i], 64, bytes ? bytes : 64) != 0) {
            held.mem[i] = NULL;
            return lr_fail(ctx, LR_ERR_NOMEM, "bra: out of memory for %zu bytes", bytes);
        }
        held.size[i] = bytes;
        if (!held.registered)
            atexit(held_free);
        held.registered = true;
    }
    *out = held.mem[i];
    return LR_OK;
}

/* The NHWC buffer [B, rows, cols, Hq * D] seen as [B, H, L, D] for head offset g of a group
 * of G consecutive channels blocks (G = 1: all heads in order). */
static lr_tensor nhwc_heads(void *buf, lr_dtype dt, const attn_case *c, int64_t H, int64_t g, int64_t G)
{
    int64_t C = c->Hq * c->D, shape[4] = {c->B, H, c->Lk, c->D};
    lr_tensor t = lr_tensor_from((char *)buf + (size_t)(g * c->D) * lr_dtype_size(dt), dt, 4, shape);
    int64_t stride[4] = {c->Lk * C, G * c->D, C, 1};
    memcpy(t.stride, stride, sizeof stride);
    return t;
}

/* src into dst, both 4-d of one dtype and shape with contiguous rows: a memcpy per row
 * (lr_tensor_copy's element-wise conversion would take longer than the attention). */
static void copy_rows(const lr_tensor *src, lr_tensor *dst)
{
    size_t es = lr_dtype_size(src->dtype), row = (size_t)src->shape[3] * es;
    for (int64_t a = 0; a < src->shape[0]; a++)
        for (int64_t b = 0; b < src->shape[1]; b++)
            for (int64_t c = 0; c < src->shape[2]; c++) {
                const char *from = (const char *)src->data +
                                   (size_t)(a * src->stride[0] + b * src->stride[1] + c * src->stride[2]) * es;
                char *to = (char *)dst->data + (size_t)(a * dst->stride[0] + b * dst->stride[1] + c * dst->stride[2]) * es;
                memcpy(to, from, row);
            }
}

/* lr_bra or lr_bra_ref on the case, into out [B, Hq, L, D]. */
static lr_status bra_compute(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                             const lr_tensor *v, bool reference, lr_tensor *out)
{
    bra_setup su = bra_setup_of(c);
    int64_t C = c->Hq * c->D, G = c->Hq / c->Hkv;
    size_t in_bytes = (size_t)(c->B * c->Lk * C) * lr_dtype_size(c->dtype);
    size_t out_bytes = (size_t)(c->B * c->Lk * C) * sizeof(float);
    void *buf[4];
    lr_status s = LR_OK;
    for (int i = 0; i < 4 && s == LR_OK; i++)
        s = held_buffer(ctx, i, i < 3 ? in_bytes : out_bytes, &buf[i]);
    if (s != LR_OK)
        return s;
    lr_tensor dq = nhwc_heads(buf[0], c->dtype, c, c->Hq, 0, 1);
    copy_rows(q, &dq);
    for (int64_t g = 0; g < G; g++) {
        lr_tensor dk = nhwc_heads(buf[1], c->dtype, c, c->Hkv, g, G);
        lr_tensor dv = nhwc_heads(buf[2], c->dtype, c, c->Hkv, g, G);
        copy_rows(k, &dk);
        copy_rows(v, &dv);
    }
    int64_t img[4] = {c->B, su.rows, su.cols, C};
    lr_tensor tq = lr_tensor_from(buf[0], c->dtype, 4, img), tk = lr_tensor_from(buf[1], c->dtype, 4, img);
    lr_tensor tv = lr_tensor_from(buf[2], c->dtype, 4, img), to = lr_tensor_from(buf[3], LR_F32, 4, img);
    lr_bra_params p = lr_bra_default_params();
    p.n_win = su.S;
    p.topk = su.topk;
    p.num_heads = c->Hq;
    p.scale = c->scale > 0 ? c->scale : (float)(1.0 / sqrt((double)c->D));
    p.workspace_size = lr_bra_workspace_size(&p, c->B, su.rows, su.cols, C, C);
    if (p.workspace_size == 0)
        return lr_fail(ctx, LR_ERR_NOMEM, "bra: the workspace size overflows");
    if ((s = held_buffer(ctx, 4, p.workspace_size, &p.workspace)) != LR_OK)
        return s;
    if ((s = (reference ? lr_bra_ref : lr_bra)(ctx, &p, &tq, &tk, &tv, &to)) != LR_OK)
        return s;
    lr_tensor back = nhwc_heads(buf[3], LR_F32, c, c->Hq, 0, 1);
    copy_rows(&back, out);
    return LR_OK;
}

static lr_status bra_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                         const lr_tensor *v, lr_tensor *out)
{
    return bra_compute(ctx, c, q, k, v, false, out);
}

/* Rows of lr_bra_ref: every row depends on the routes of the whole image, so the whole case
 * is computed and the rows asked for are copied out. */
static lr_status bra_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                                     const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    const int64_t shape[4] = {c->B, c->Hq, c->Lq, c->D};
    lr_tensor full = {0}, rows;
    lr_status s = tensor_zeros(ctx, 4, shape, LR_F32, &full);
    if (s == LR_OK && (s = bra_compute(ctx, c, q, k, v, true, &full)) == LR_OK &&
        (s = lr_tensor_slice(ctx, &full, 2, row0, out_rows->shape[2], &rows)) == LR_OK)
        s = lr_tensor_copy(ctx, &rows, out_rows);
    free(full.data);
    return s;
}

static double bra_flops(const attn_case *c)
{
    bra_setup su = bra_setup_of(c);
    double region = (double)(su.rows / su.S) * (double)(su.cols / su.S), R = (double)(su.S * su.S);
    double C = (double)c->Hq * (double)c->D, B = (double)c->B, L = (double)c->Lq;
    double pairs = B * (double)c->Hq * L * (double)su.topk * region;
    return 4.0 * (double)c->D * pairs + B * (2.0 * L * C + 2.0 * R * R * C);
}

const attn_kernel attn_kernel_bra = {
    .name = "bra",
    .summary = "bi-level routing attention (BiFormer): the length as an image rows x cols as for "
               "na2d, S x S regions of at most 64 tokens, each query attends to the tokens of "
               "the top-4 regions by mean-q . mean-k affinity (lr_bra)",
    .patterns = 1u << PATTERN_SELF,
    .no_bias = true,
    .tolerance_f32 = 1e-5,
    .tolerance_bf16 = 1e-5, /* bf16 inputs are widened exactly; both sides compute in f32/double */
    .run = bra_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = bra_definition_rows,
    .flops = bra_flops,
};
