/* autocorr: Autoformer's Auto-Correlation with time-delay aggregation (lr_autocorr), the
 * O(L log L) mechanism that replaces self-attention in Autoformer. It stands for no softmax
 * attention, so bench reports no error against it; check compares it with the definition.
 *
 * Autoformer's tensors are [batch, time, heads x channels], so each batch item's q, k and v
 * memory ([H, L, D], contiguous) is read as L steps of H * D channels; kv heads are repeated
 * to the query heads first when they are fewer. The factor is 3, that of the paper's ETT
 * scripts: top_k = (int)(3 ln L) delays, chosen per batch item (inference mode). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/autocorr.h"

#define AUTOCORR_FACTOR 3.0

/* The plan of the last length run, kept as a model keeps it between calls. */
static struct {
    lr_autocorr *plan;
    int64_t length;
} cached;

static void cache_free(void) { lr_autocorr_destroy(cached.plan); }

static lr_status plan_for(lr_ctx *ctx, int64_t L, lr_autocorr **out)
{
    if (!cached.plan || cached.length != L) {
        lr_autocorr *plan;
        lr_status s = lr_autocorr_create(ctx, L, &plan);
        if (s != LR_OK)
            return s;
        if (!cached.plan)
            atexit(cache_free);
        lr_autocorr_destroy(cached.plan);
        cached.plan = plan;
        cached.length = L;
    }
    *out = cached.plan;
    return LR_OK;
}

/* t as contiguous F32 [B, Hq, L, D], kv heads repeated to the query heads: *use points at
 * the data, *owned is what to free (NULL when t could be used as it is). */
static lr_status time_major(lr_ctx *ctx, const attn_case *c, const lr_tensor *t, float **use,
                            float **owned)
{
    *owned = NULL;
    bool contiguous = t->dtype == LR_F32 && t->shape[1] == c->Hq;
    for (int64_t d = 3, want = 1; d >= 0 && contiguous; want *= t->shape[d], d--)
        contiguous = t->shape[d] == 1 || t->stride[d] == want;
    if (contiguous) {
        *use = t->data;
        return LR_OK;
    }
    const int64_t shape[4] = {c->B, c->Hq, t->shape[2], c->D};
    lr_tensor all;
    lr_status s = tensor_zeros(ctx, 4, shape, LR_F32, &all);
    *use = *owned = all.data;
    int64_t G = c->Hq / t->shape[1];
    for (int64_t h = 0; h < c->Hq && s == LR_OK; h++) {
        lr_tensor src, dst;
        s = lr_tensor_slice(ctx, t, 1, h / G, 1, &src);
        if (s == LR_OK)
            s = lr_tensor_slice(ctx, &all, 1, h, 1, &dst);
        if (s == LR_OK)
            s = lr_tensor_copy(ctx, &src, &dst);
    }
    return s;
}

typedef struct {
    float *q, *k, *v, *owned[3];
} autocorr_inputs;

static lr_status inputs_of(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, autocorr_inputs *in)
{
    lr_status s = time_major(ctx, c, q, &in->q, &in->owned[0]);
    if (s == LR_OK)
        s = time_major(ctx, c, k, &in->k, &in->owned[1]);
    if (s == LR_OK)
        s = time_major(ctx, c, v, &in->v, &in->owned[2]);
    return s;
}

static void inputs_free(autocorr_inputs *in)
{
    for (int i = 0; i < 3; i++)
        free(in->owned[i]);
}

static lr_status autocorr_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    int64_t L = c->Lk, C = c->Hq * c->D;
    autocorr_inputs in = {0};
    lr_autocorr *plan;
    float *o = out->data, *owned = NULL;
    lr_status s = plan_for(ctx, L, &plan);
    if (s == LR_OK)
        s = inputs_of(ctx, c, q, k, v, &in);
    bool direct = s == LR_OK && out->stride[3] == 1 && out->stride[2] == c->D &&
                  out->stride[1] == L * c->D && out->stride[0] == C * L;
    if (s == LR_OK && !direct && !(o = owned = malloc((size_t)(c->B * C * L) * sizeof *o)))
        s = lr_fail(ctx, LR_ERR_NOMEM, "autocorr: out of memory");
    if (s == LR_OK)
        s = lr_autocorr_forward(ctx, plan, c->B, C, C, in.q, in.k, in.v, L, AUTOCORR_FACTOR,
                                LR_AUTOCORR_INFERENCE, o);
    if (s == LR_OK && !direct) {
        lr_tensor src = lr_tensor_from(o, LR_F32, 4, out->shape);
        s = lr_tensor_copy(ctx, &src, out);
    }
    inputs_free(&in);
    free(owned);
    return s;
}

/* Whether delay a outranks delay b: larger correlation, NaN above everything, ties to the
 * smaller delay (lr_autocorr's order). */
static bool outranks(double ca, int64_t a, double cb, int64_t b)
{
    if (isnan(ca) || isnan(cb))
        return isnan(ca) && (!isnan(cb) || a < b);
    return ca > cb || (ca == cb && a < b);
}

/* The definition in double: the circular cross-correlation summed directly, the top_k delays
 * by plain selection, the softmax of their correlations, and the rolled values. */
static lr_status autocorr_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                          const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                          lr_tensor *out_rows)
{
    int64_t L = c->Lk, C = c->Hq * c->D, n = out_rows->shape[2];
    int64_t top_k = lr_autocorr_top_k(AUTOCORR_FACTOR, L);
    autocorr_inputs in = {0};
    double *corr = malloc((size_t)L * sizeof *corr), *w = malloc((size_t)(top_k + 1) * sizeof *w);
    int64_t *delay = malloc((size_t)(top_k + 1) * sizeof *delay);
    lr_status s = corr && w && delay ? inputs_of(ctx, c, q, k, v, &in)
                                     : lr_fail(ctx, LR_ERR_NOMEM, "autocorr: out of memory");
    for (int64_t b = 0; b < c->B && s == LR_OK; b++) {
        const float *qb = in.q + b * L * C, *kb = in.k + b * L * C, *vb = in.v + b * L * C;
        for (int64_t tau = 0; tau < L; tau++) {
            double acc = 0;
            for (int64_t t = 0; t < L; t++)
                for (int64_t ch = 0; ch < C; ch++)
                    acc += (double)qb[((t + tau) % L) * C + ch] * kb[t * C + ch];
            corr[tau] = (double)(float)(acc / (double)C);
        }
        for (int64_t i = 0; i < top_k; i++) {
            int64_t best = -1;
            for (int64_t tau = 0; tau < L; tau++) {
                bool taken = false;
                for (int64_t j = 0; j < i; j++)
                    taken |= delay[j] == tau;
                if (!taken && (best < 0 || outranks(corr[tau], tau, corr[best], best)))
                    best = tau;
            }
            delay[i] = best;
        }
        double max = -INFINITY, sum = 0;
        for (int64_t i = 0; i < top_k; i++)
            max = fmax(max, corr[delay[i]]);
        for (int64_t i = 0; i < top_k; i++)
            sum += w[i] = exp(corr[delay[i]] - max);
        for (int64_t h = 0; h < c->Hq; h++) {
            for (int64_t i = 0; i < n; i++) {
                for (int64_t e = 0; e < c->D; e++) {
                    int64_t f = (h * L + row0 + i) * c->D + e, t = f / C, ch = f % C;
                    double acc = 0;
                    for (int64_t j = 0; j < top_k; j++)
                        acc += w[j] / sum * vb[((t + delay[j]) % L) * C + ch];
                    const int64_t at[4] = {b, h, i, e};
                    *(float *)lr_tensor_at(out_rows, at) = (float)acc;
                }
            }
        }
    }
    inputs_free(&in);
    free(corr);
    free(w);
    free(delay);
    return s;
}

/* Per batch item and channel, three real FFTs of L points (q and k forward, the mean
 * cross-spectrum back: 2.5 L log2 L each) and the cross-spectrum product (6 per bin), plus a
 * multiply-add per delay for the aggregation. */
static double autocorr_flops(const attn_case *c)
{
    double L = (double)c->Lk, C = (double)(c->Hq * c->D);
    double fft = L > 1 ? 2.5 * L * log2(L) : 0;
    double top_k = (double)lr_autocorr_top_k(AUTOCORR_FACTOR, c->Lk);
    return (double)c->B * C * (3.0 * fft + 3.0 * L + 2.0 * top_k * L);
}

const attn_kernel attn_kernel_autocorr = {
    .name = "autocorr",
    .summary = "Autoformer's Auto-Correlation: FFT correlation averaged over heads and "
               "channels, the (int)(3 ln L) strongest delays, values rolled by each and mixed "
               "by the softmax of their correlations (lr_autocorr; no error against attention, "
               "which it does not stand for)",
    .patterns = 1u << PATTERN_SELF,
    .no_bias = true,
    .tolerance_f32 = 1e-5,
    .tolerance_bf16 = 1e-5,
    .run = autocorr_run,
    .definition_rows = autocorr_definition_rows,
    .flops = autocorr_flops,
};
