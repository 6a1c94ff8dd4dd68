/* HyenaDNA inference (longrange/hyenadna.h).
 *
 * The forward runs layer by layer over the whole sequence, the residual stream living in the
 * caller's output buffer. Everything that is per token (LayerNorms, projections, the short
 * convolution, the MLP) runs over fixed chunks of CHUNK tokens, so only the two full-length
 * buffers the long convolution needs are L-sized: x0 [L][d] and u = x1 * v, channel-major
 * [d][L] as lr_longconv takes it. The short convolution's K - 1 rows of history at a chunk's
 * start are recomputed (LayerNorm and in_proj of those rows), which lr_sgemm makes
 * bit-identical to computing them with the previous chunk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "longrange/gemm.h"
#include "longrange/hyenadna.h"
#include "longrange/longconv.h"
#include "longrange/parallel.h"

/* Elementwise loops over d of unknown size: let GCC vectorize them with epilogues (clang does
 * at -O2). No reassociation is involved, so every element's bits are those of scalar code. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#define CHUNK 2048        /* tokens per per-token pass */
#define ROWS_PER_TASK 64  /* tokens per parallel task */
#define MAX_INNER 16      /* num_inner_mlps */
#define MAX_BUCKETS 4
#define BLOCK_EPS 1e-5    /* HF's HyenaBlock norms use nn.LayerNorm's default eps */

typedef struct {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const float *in_w, *in_b;    /* [3d][d], [3d] */
    const float *sf_w, *sf_b;    /* [3d][K], [3d] */
    float *sf_wt;                /* sf_w as [K][3d] (owned) */
    const float *out_w, *out_b;  /* [d][d], [d] */
    const float *fc1_w, *fc1_b;  /* [di][d], [di] */
    const float *fc2_w, *fc2_b;  /* [d][di], [d] */
    const float *D;              /* [d], NULL without use_bias */
    const float *z, *t;          /* [Lmax][emb], [Lmax]; NULL: computed */
    const float *deltas;         /* [d]; NULL: computed */
    const float *fw[MAX_INNER + 2], *fb[MAX_INNER + 2]; /* filter Linears (last has no bias) */
    const float *freq[MAX_INNER + 1];                    /* per Sin [F]; NULL: activation_freq */
} layer_w;

typedef struct {
    int64_t len;
    lr_longconv **conv; /* one per layer */
    size_t bytes;
    uint64_t used;
} bucket;

struct lr_hyenadna {
    int64_t d, n_layer, d_inner, vocab, max_len, emb_dim, F, K, n_inner;
    bool use_bias;
    double act_freq, eps_f, shift;
    const float *embed, *head, *lnf_w, *lnf_b;
    layer_w *layers;
    void **owned; /* widened F16/BF16 tensors */
    size_t n_owned;
    bucket cache[MAX_BUCKETS];
    size_t cache_limit;
    float *ws;        /* the forward's buffers, kept between calls up to cache_limit bytes */
    size_t ws_floats;
    uint64_t clock;
};

/* Large buffers on huge pages where the kernel allows: each fresh 4 KiB page costs a fault,
 * which dominates filling a filter or a workspace of a million tokens (a hint only). */
static void *alloc_large(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < 4 * huge)
        return malloc(bytes);
    size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, rounded);
    if (p)
        madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

int32_t lr_hyenadna_token(unsigned char c, bool fold_case)
{
    if (fold_case && c >= 'a' && c <= 'z')
        c = (unsigned char)(c - 'a' + 'A');
    switch (c) {
    case 'A': return LR_HYENADNA_A;
    case 'C': return LR_HYENADNA_C;
    case 'G': return LR_HYENADNA_G;
    case 'T': return LR_HYENADNA_T;
    case 'N': return LR_HYENADNA_N;
    default: return LR_HYENADNA_UNK;
    }
}

int64_t lr_hyenadna_d_model(const lr_hyenadna *m) { return m->d; }
int64_t lr_hyenadna_n_layer(const lr_hyenadna *m) { return m->n_layer; }
int64_t lr_hyenadna_max_seq_len(const lr_hyenadna *m) { return m->max_len; }
int64_t lr_hyenadna_vocab(const lr_hyenadna *m) { return m->vocab; }

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct {
    lr_ctx *ctx;
    const lr_model *file;
    lr_hyenadna *m;
    const char *prefix;
} loader;

/* The tensor prefix+name as F32 (widening F16/BF16 into owned memory); shape entries < 0 are
 * free. Optional tensors that are absent give NULL. */
static lr_status weight(loader *ld, const char *name, int ndim, const int64_t *shape, bool required,
                        const float **out)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    *out = NULL;
    const lr_model_tensor *t = lr_model_find(ld->file, full);
    if (!t && !required)
        return LR_OK;
    int dt = t && (t->dtype == LR_F16 || t->dtype == LR_BF16) ? t->dtype : LR_F32;
    lr_tensor view;
    lr_status s = lr_model_get(ld->ctx, ld->file, full, (lr_dtype)dt, ndim, shape, &view);
    if (s != LR_OK)
        return s;
    if (dt == LR_F32) {
        *out = view.data;
        return LR_OK;
    }
    int64_t n = lr_tensor_numel(&view);
    float *copy = malloc((size_t)n * sizeof *copy);
    void **grown = realloc(ld->m->owned, (ld->m->n_owned + 1) * sizeof *grown);
    if (!copy || !grown) {
        free(copy);
        if (grown)
            ld->m->owned = grown;
        return lr_fail(ld->ctx, LR_ERR_NOMEM, "hyenadna: out of memory widening '%s'", full);
    }
    ld->m->owned = grown;
    ld->m->owned[ld->m->n_owned++] = copy;
    lr_tensor dst = lr_tensor_from(copy, LR_F32, view.ndim, view.shape);
    s = lr_tensor_copy(ld->ctx, &view, &dst);
    *out = copy;
    return s;
}

/* A JSON boolean of the metadata (its source text), with a default. */
static lr_status meta_bool(lr_ctx *ctx, const lr_model *f, const char *key, bool dflt, bool *out)
{
    const char *v = lr_model_meta(f, key);
    if (!v) {
        *out = dflt;
        return LR_OK;
    }
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) {
        *out = true;
        return LR_OK;
    }
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) {
        *out = false;
        return LR_OK;
    }
    return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s': expected true or false, found '%s'", lr_model_path(f),
                   key, v);
}

static lr_status meta_range(lr_ctx *ctx, const lr_model *f, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                            int64_t *out)
{
    const char *v = lr_model_meta(f, key);
    if (v && !strcmp(v, "null")) { /* d_inner: null means the default */
        *out = dflt;
        return LR_OK;
    }
    lr_status s = lr_model_meta_int(ctx, f, key, true, dflt, out);
    if (s == LR_OK && (*out < lo || *out > hi))
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' = %lld, expected %lld..%lld", lr_model_path(f), key,
                    (long long)*out, (long long)lo, (long long)hi);
    return s;
}

static lr_status read_config(lr_ctx *ctx, const lr_model *f, lr_hyenadna *m, bool *train_freq, bool *tie)
{
    int64_t vocab, pad, order;
    lr_status s = lr_model_expect_arch(ctx, f, "hyenadna");
    if (s == LR_OK)
        s = meta_range(ctx, f, "d_model", 256, 1, 1 << 16, &m->d);
    if (s == LR_OK)
        s = meta_range(ctx, f, "n_layer", 12, 1, 1024, &m->n_layer);
    if (s == LR_OK)
        s = meta_range(ctx, f, "d_inner", 4 * m->d, 1, 1 << 20, &m->d_inner);
    if (s == LR_OK)
        s = meta_range(ctx, f, "vocab_size", 12, 1, 1 << 20, &vocab);
    if (s == LR_OK)
        s = meta_range(ctx, f, "pad_vocab_size_multiple", 8, 1, 1 << 16, &pad);
    if (s == LR_OK)
        s = meta_range(ctx, f, "max_seq_len", 1024, 1, (int64_t)1 << 30, &m->max_len);
    if (s == LR_OK)
        s = meta_range(ctx, f, "emb_dim", 3, 3, 1025, &m->emb_dim);
    if (s == LR_OK && m->emb_dim % 2 == 0)
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'emb_dim' = %lld, expected an odd number >= 3",
                    lr_model_path(f), (long long)m->emb_dim);
    if (s == LR_OK)
        s = meta_range(ctx, f, "filter_order", 64, 1, 1 << 14, &m->F);
    if (s == LR_OK)
        s = meta_range(ctx, f, "short_filter_order", 3, 3, 3, &m->K); /* HF: padding 2, so 3 taps */
    if (s == LR_OK)
        s = meta_range(ctx, f, "hyena_order", 2, 2, 2, &order);
    if (s == LR_OK)
        s = meta_range(ctx, f, "num_inner_mlps", 2, 0, MAX_INNER, &m->n_inner);
    if (s == LR_OK)
        s = lr_model_meta_float(ctx, f, "activation_freq", true, 1.0, &m->act_freq);
    if (s == LR_OK && !isfinite(m->act_freq))
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'activation_freq' is not finite", lr_model_path(f));
    if (s == LR_OK)
        s = lr_model_meta_float(ctx, f, "layer_norm_epsilon", true, 1e-5, &m->eps_f);
    if (s == LR_OK && !(m->eps_f > 0 && m->eps_f < 1))
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'layer_norm_epsilon' = %g, expected 0 < eps < 1",
                    lr_model_path(f), m->eps_f);
    if (s == LR_OK) /* ExponentialModulation's shift in the standalone and HF code */
        s = lr_model_meta_float(ctx, f, "modulation_shift", true, 0.05, &m->shift);
    if (s == LR_OK && !isfinite(m->shift))
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'modulation_shift' is not finite", lr_model_path(f));
    if (s == LR_OK)
        s = meta_bool(ctx, f, "use_bias", true, &m->use_bias);
    if (s == LR_OK)
        s = meta_bool(ctx, f, "train_freq", true, train_freq);
    if (s == LR_OK)
        s = meta_bool(ctx, f, "tie_word_embeddings", true, tie);
    if (s == LR_OK)
        m->vocab = (vocab + pad - 1) / pad * pad;
    return s;
}

static lr_status load_layer(loader *ld, int64_t i, bool train_freq)
{
    lr_hyenadna *m = ld->m;
    layer_w *w = &m->layers[i];
    const int64_t d = m->d, d3 = 3 * d, di = m->d_inner, F = m->F;
    char n[160];
    lr_status s = LR_OK;
#define W(field, req, nd, ...)                                                                      \
    do {                                                                                            \
        const int64_t shp_[] = {__VA_ARGS__};                                                       \
        if (s == LR_OK)                                                                             \
            s = weight(ld, n, nd, shp_, req, &w->field);                                            \
    } while (0)
#define NAME(...) snprintf(n, sizeof n, __VA_ARGS__)
    NAME("layers.%lld.norm1.weight", (long long)i); W(ln1_w, true, 1, d);
    NAME("layers.%lld.norm1.bias", (long long)i); W(ln1_b, true, 1, d);
    NAME("layers.%lld.norm2.weight", (long long)i); W(ln2_w, true, 1, d);
    NAME("layers.%lld.norm2.bias", (long long)i); W(ln2_b, true, 1, d);
    NAME("layers.%lld.mixer.in_proj.weight", (long long)i); W(in_w, true, 2, d3, d);
    NAME("layers.%lld.mixer.in_proj.bias", (long long)i); W(in_b, true, 1, d3);
    NAME("layers.%lld.mixer.short_filter.weight", (long long)i); W(sf_w, true, 3, d3, 1, m->K);
    NAME("layers.%lld.mixer.short_filter.bias", (long long)i); W(sf_b, true, 1, d3);
    NAME("layers.%lld.mixer.out_proj.weight", (long long)i); W(out_w, true, 2, d, d);
    NAME("layers.%lld.mixer.out_proj.bias", (long long)i); W(out_b, true, 1, d);
    NAME("layers.%lld.mlp.fc1.weight", (long long)i); W(fc1_w, true, 2, di, d);
    NAME("layers.%lld.mlp.fc1.bias", (long long)i); W(fc1_b, true, 1, di);
    NAME("layers.%lld.mlp.fc2.weight", (long long)i); W(fc2_w, true, 2, d, di);
    NAME("layers.%lld.mlp.fc2.bias", (long long)i); W(fc2_b, true, 1, d);
    if (m->use_bias) {
        NAME("layers.%lld.mixer.filter_fn.bias", (long long)i); W(D, true, 1, d);
    }
    NAME("layers.%lld.mixer.filter_fn.pos_emb.z", (long long)i); W(z, false, 3, 1, m->max_len, m->emb_dim);
    NAME("layers.%lld.mixer.filter_fn.pos_emb.t", (long long)i); W(t, false, 3, 1, m->max_len, 1);
    NAME("layers.%lld.mixer.filter_fn.modulation.deltas", (long long)i); W(deltas, false, 3, 1, 1, d);
    const int64_t n_lin = m->n_inner + 2;
    for (int64_t j = 0; j < n_lin && s == LR_OK; j++) {
        int64_t in = j == 0 ? m->emb_dim : F, outw = j == n_lin - 1 ? d : F;
        NAME("layers.%lld.mixer.filter_fn.implicit_filter.%lld.weight", (long long)i, (long long)(2 * j));
        W(fw[j], true, 2, outw, in);
        if (j < n_lin - 1) {
            NAME("layers.%lld.mixer.filter_fn.implicit_filter.%lld.bias", (long long)i, (long long)(2 * j));
            W(fb[j], true, 1, F);
            NAME("layers.%lld.mixer.filter_fn.implicit_filter.%lld.freq", (long long)i, (long long)(2 * j + 1));
            W(freq[j], false, 2, 1, F);
        }
    }
#undef W
#undef NAME
    if (s != LR_OK)
        return s;
    w->sf_wt = malloc((size_t)(d3 * m->K) * sizeof *w->sf_wt);
    if (!w->sf_wt)
        return lr_fail(ld->ctx, LR_ERR_NOMEM, "hyenadna: out of memory");
    for (int64_t c = 0; c < d3; c++)
        for (int64_t k = 0; k < m->K; k++)
            w->sf_wt[k * d3 + c] = w->sf_w[c * m->K + k];
    if (!train_freq)
        return s;
    /* One shared Sin module: a file may keep its frequency under one of the names only. */
    const float *any = NULL;
    for (int64_t j = 0; j <= m->n_inner; j++)
        if (w->freq[j])
            any = w->freq[j];
    if (!any)
        return lr_fail(ld->ctx, LR_ERR_MODEL, "%s: tensor '%slayers.%lld.mixer.filter_fn.implicit_filter.1.freq' "
                       "not found (train_freq is true)", lr_model_path(ld->file), ld->prefix, (long long)i);
    for (int64_t j = 0; j <= m->n_inner; j++)
        if (!w->freq[j])
            w->freq[j] = any;
    return LR_OK;
}

lr_status lr_hyenadna_open(lr_ctx *ctx, const lr_model *file, lr_hyenadna **out)
{
    if (!ctx || !file || !out)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "lr_hyenadna_open: NULL argument") : LR_ERR_ARG;
    *out = NULL;
    lr_hyenadna *m = calloc(1, sizeof *m);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory");
    m->cache_limit = (size_t)1 << 30;
    bool train_freq = true, tie = true;
    lr_status s = read_config(ctx, file, m, &train_freq, &tie);
    loader ld = {ctx, file, m, "hyena.backbone."};
    if (s == LR_OK && !lr_model_find(file, "hyena.backbone.embeddings.word_embeddings.weight") &&
        lr_model_find(file, "backbone.embeddings.word_embeddings.weight"))
        ld.prefix = "backbone.";
    const int64_t vd[] = {m->vocab, m->d}, dd[] = {m->d};
    if (s == LR_OK)
        s = weight(&ld, "embeddings.word_embeddings.weight", 2, vd, true, &m->embed);
    if (s == LR_OK)
        s = weight(&ld, "ln_f.weight", 1, dd, true, &m->lnf_w);
    if (s == LR_OK)
        s = weight(&ld, "ln_f.bias", 1, dd, true, &m->lnf_b);
    if (s == LR_OK) {
        loader top = {ctx, file, m, ""};
        s = weight(&top, "lm_head.weight", 2, vd, false, &m->head); /* absent: tied */
        if (s == LR_OK && !m->head)
            m->head = m->embed;
    }
    if (s == LR_OK) {
        m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
        if (!m->layers)
            s = lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory");
    }
    for (int64_t i = 0; s == LR_OK && i < m->n_layer; i++)
        s = load_layer(&ld, i, train_freq);
    if (s != LR_OK) {
        lr_hyenadna_close(m);
        return s;
    }
    *out = m;
    return LR_OK;
}

static void drop_bucket(lr_hyenadna *m, bucket *b)
{
    if (b->conv)
        for (int64_t i = 0; i < m->n_layer; i++)
            lr_longconv_destroy(b->conv[i]);
    free(b->conv);
    memset(b, 0, sizeof *b);
}

void lr_hyenadna_close(lr_hyenadna *m)
{
    if (!m)
        return;
    for (int i = 0; i < MAX_BUCKETS; i++)
        drop_bucket(m, &m->cache[i]);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->ws);
    for (int64_t i = 0; m->layers && i < m->n_layer; i++)
        free(m->layers[i].sf_wt);
    free(m->layers);
    free(m);
}

size_t lr_hyenadna_cache_bytes(const lr_hyenadna *m)
{
    size_t total = 0;
    for (int i = 0; i < MAX_BUCKETS; i++)
        total += m->cache[i].bytes;
    return total;
}

/* Drops least recently used buckets until the rest holds at most `bytes`. */
static void evict_to(lr_hyenadna *m, size_t bytes)
{
    while (lr_hyenadna_cache_bytes(m) > bytes) {
        int lru = -1;
        for (int i = 0; i < MAX_BUCKETS; i++)
            if (m->cache[i].conv && (lru < 0 || m->cache[i].used < m->cache[lru].used))
                lru = i;
        drop_bucket(m, &m->cache[lru]);
    }
}

void lr_hyenadna_set_cache_limit(lr_hyenadna *m, size_t bytes)
{
    m->cache_limit = bytes;
    evict_to(m, bytes);
    if (m->ws_floats * sizeof *m->ws > bytes) {
        free(m->ws);
        m->ws = NULL;
        m->ws_floats = 0;
    }
}

/* ---- the implicit filter --------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const lr_hyenadna *m;
    const layer_w *w;
    int64_t t0, rows, L, cols;
    float *x;          /* [rows][cols] */
    const float *bias, *freq;
    float *taps;       /* [d][L] */
} filter_job;

/* x = sin(freq * (x + bias)) */
static void sin_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const filter_job *j = arg;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    const float cf = (float)j->m->act_freq;
    for (int64_t r = r0; r < r1; r++) {
        float *x = j->x + r * j->cols;
        for (int64_t c = 0; c < j->cols; c++)
            x[c] = sinf((j->freq ? j->freq[c] : cf) * (x[c] + j->bias[c]));
    }
}

/* taps[c][t0 + r] = x[r][c] (exp(-t |delta_c|) + shift), through a tile so that the stores
 * to taps run along t. */
static void modulate_task(void *arg, size_t task, int thread)
{
    const filter_job *j = arg;
    const lr_hyenadna *m = j->m;
    const int64_t d = m->d;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    float *tile = lr_thread_scratch(j->ctx, thread), *delta = tile + ROWS_PER_TASK * d;
    const float shift = (float)m->shift;
    for (int64_t c = 0; c < d; c++)
        delta[c] = j->w->deltas ? fabsf(j->w->deltas[c])
                                : (float)fabs(log(0.01) / 1.5 + (d > 1 ? (double)c / (double)(d - 1) : 0.0) *
                                                                    (log(0.01) / 0.3 - log(0.01) / 1.5));
    for (int64_t r = r0; r < r1; r++) {
        const int64_t s = j->t0 + r;
        const float tn = j->w->t ? j->w->t[s] : (float)(m->max_len > 1 ? (double)s / (double)(m->max_len - 1) : 0.0);
        const float *x = j->x + r * d;
        float *o = tile + (r - r0) * d;
        for (int64_t c = 0; c < d; c++)
            o[c] = x[c] * (expf(-tn * delta[c]) + shift);
    }
    for (int64_t c = 0; c < d; c++)
        for (int64_t r = r0; r < r1; r++)
            j->taps[c * j->L + j->t0 + r] = tile[(r - r0) * d + c];
}

/* Positional features z(s) when the file has no pos_emb.z buffer (PositionalEmbedding's
 * definition, in double). */
static void compute_z(const lr_hyenadna *m, int64_t s, float *z)
{
    const int64_t B = (m->emb_dim - 1) / 2, N = m->max_len;
    const double pi = 3.14159265358979323846;
    z[0] = (float)(N > 1 ? (double)s / (double)(N - 1) : 0.0);
    double w = 2 * pi * (double)s / (double)N;
    for (int64_t b = 0; b < B; b++) {
        double f = B > 1 ? 1e-4 + (double)b * ((double)(B - 1) - 1e-4) / (double)(B - 1) : 1e-4;
        z[1 + b] = (float)cos(f * w);
        z[1 + B + b] = (float)-sin(f * w);
    }
}

/* taps [d][L]: layer w's filter at s = 0..L-1. */
static lr_status make_filter(lr_ctx *ctx, const lr_hyenadna *m, const layer_w *w, int64_t L, float *taps)
{
    const int64_t F = m->F, d = m->d, E = m->emb_dim, P = CHUNK;
    const int64_t width = F > d ? F : d;
    float *z = malloc((size_t)(P * E) * sizeof *z);
    float *a = malloc((size_t)(P * width) * sizeof *a), *b = malloc((size_t)(P * width) * sizeof *b);
    lr_status s = z && a && b ? LR_OK : lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory for a filter");
    if (s == LR_OK)
        s = lr_thread_scratch_reserve(ctx, (size_t)((ROWS_PER_TASK + 1) * d) * sizeof(float));
    for (int64_t t0 = 0; s == LR_OK && t0 < L; t0 += P) {
        const int64_t rows = L - t0 < P ? L - t0 : P;
        const size_t tasks = (size_t)((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK);
        const float *zin = w->z ? w->z + t0 * E : z;
        if (!w->z)
            for (int64_t r = 0; r < rows; r++)
                compute_z(m, t0 + r, z + r * E);
        float *cur = a, *nxt = b;
        s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, F, E, 1.0f, zin, E, w->fw[0], E, 0.0f, cur, F);
        filter_job j = {ctx, m, w, t0, rows, L, F, cur, w->fb[0], w->freq[0], taps};
        if (s == LR_OK)
            lr_parallel_for(ctx, tasks, sin_task, &j);
        for (int64_t k = 1; s == LR_OK && k <= m->n_inner; k++) {
            s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, F, F, 1.0f, cur, F, w->fw[k], F, 0.0f, nxt, F);
            j.x = nxt;
            j.bias = w->fb[k];
            j.freq = w->freq[k];
            if (s == LR_OK)
                lr_parallel_for(ctx, tasks, sin_task, &j);
            float *tmp = cur;
            cur = nxt;
            nxt = tmp;
        }
        if (s == LR_OK)
            s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, d, F, 1.0f, cur, F, w->fw[m->n_inner + 1], F, 0.0f, nxt, d);
        j.x = nxt;
        if (s == LR_OK)
            lr_parallel_for(ctx, tasks, modulate_task, &j);
    }
    free(z);
    free(a);
    free(b);
    return s;
}

static lr_status make_conv(lr_ctx *ctx, const lr_hyenadna *m, int64_t layer, int64_t len, lr_longconv **out)
{
    float *taps = alloc_large((size_t)(m->d * len) * sizeof *taps);
    if (!taps)
        return lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory for a filter of %lld taps", (long long)len);
    lr_status s = make_filter(ctx, m, &m->layers[layer], len, taps);
    if (s == LR_OK)
        s = lr_longconv_create(ctx, m->d, len, taps, len, m->layers[layer].D, out);
    free(taps);
    return s;
}

static int64_t bucket_len(const lr_hyenadna *m, int64_t L)
{
    int64_t b = 64;
    while (b < L) {
        if (b / 2 * 3 >= L && b % 2 == 0) {
            b = b / 2 * 3;
            break;
        }
        b *= 2;
    }
    return b < m->max_len ? b : m->max_len;
}

/* The cached bucket for len, or NULL when it does not fit the cache (the caller then prepares
 * each layer's convolution itself). */
static lr_status get_bucket(lr_ctx *ctx, lr_hyenadna *m, int64_t len, bucket **out, lr_longconv **first_out)
{
    *out = NULL;
    *first_out = NULL;
    m->clock++;
    for (int i = 0; i < MAX_BUCKETS; i++)
        if (m->cache[i].conv && m->cache[i].len == len) {
            m->cache[i].used = m->clock;
            *out = &m->cache[i];
            return LR_OK;
        }
    lr_longconv *first = NULL;
    lr_status s = make_conv(ctx, m, 0, len, &first);
    if (s != LR_OK)
        return s;
    size_t bytes = lr_longconv_spectrum_bytes(first) * (size_t)m->n_layer;
    if (bytes > m->cache_limit) { /* layer 0's convolution goes to the caller */
        *first_out = first;
        return LR_OK;
    }
    evict_to(m, m->cache_limit - bytes); /* make room */
    int slot = -1;
    for (int i = 0; i < MAX_BUCKETS; i++)
        if (!m->cache[i].conv && slot < 0)
            slot = i;
    if (slot < 0) {
        for (int i = 0; i < MAX_BUCKETS; i++)
            if (slot < 0 || m->cache[i].used < m->cache[slot].used)
                slot = i;
        drop_bucket(m, &m->cache[slot]);
    }
    bucket *b = &m->cache[slot];
    b->conv = calloc((size_t)m->n_layer, sizeof *b->conv);
    if (!b->conv) {
        lr_longconv_destroy(first);
        return lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory");
    }
    b->conv[0] = first;
    for (int64_t i = 1; i < m->n_layer && s == LR_OK; i++)
        s = make_conv(ctx, m, i, len, &b->conv[i]);
    if (s != LR_OK) {
        drop_bucket(m, b);
        return s;
    }
    b->len = len;
    b->bytes = bytes;
    b->used = m->clock;
    *out = b;
    return LR_OK;
}

/* ---- per-token passes -------------------------------------------------------------------- */

static void layer_norm_row(const float *x, int64_t d, const float *w, const float *b, double eps, float *y)
{
    double mean = 0, var = 0;
    for (int64_t c = 0; c < d; c++)
        mean += x[c];
    mean /= (double)d;
    for (int64_t c = 0; c < d; c++)
        var += ((double)x[c] - mean) * ((double)x[c] - mean);
    const double inv = 1.0 / sqrt(var / (double)d + eps);
    for (int64_t c = 0; c < d; c++)
        y[c] = (float)(((double)x[c] - mean) * inv) * w[c] + b[c];
}

/* GELU with the tanh approximation, 4 lanes at a time (GCC/clang vector extensions, so the
 * same code on every CPU level): 1 + tanh(y) = 2 - q for y >= 0 and q for y < 0, with
 * q = 2 / (exp(2|y|) + 1) (no cancellation for large negative inputs); exp by 2^k times a
 * degree-7 polynomial on |r| <= ln2 / 2, relative error about 2e-7. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f gelu4(v4f x)
{
    const v4f y = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    v4f a = (v4f)((v4i)y & 0x7fffffff);
    a = a + a;
    const v4i small = (v4i)(a < 18.0f); /* tanh(9) rounds to 1 */
    const v4f eighteen = {18, 18, 18, 18};
    a = (v4f)((small & (v4i)a) | (~small & (v4i)eighteen));
    const v4i k = __builtin_convertvector(a * 1.4426950408889634f + 0.5f, v4i);
    const v4f kf = __builtin_convertvector(k, v4f);
    const v4f r = (a - kf * 0.693145751953125f) - kf * 1.428606765330187e-06f;
    v4f p = 1.0f / 5040 + r * (1.0f / 40320);
    p = 1.0f / 720 + r * p;
    p = 1.0f / 120 + r * p;
    p = 1.0f / 24 + r * p;
    p = 1.0f / 6 + r * p;
    p = 0.5f + r * p;
    p = 1.0f + r * p;
    p = 1.0f + r * p;
    const v4f e = p * (v4f)((k + 127) << 23);
    const v4f q = 2.0f / (e + 1.0f);
    const v4i pos = (v4i)(y >= 0.0f);
    return 0.5f * x * (q + (v4f)(pos & (v4i)(2.0f - 2.0f * q)));
}

/* x[i] = gelu(x[i] + b[i]) */
static void gelu_row(float *x, const float *b, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v, bb;
        memcpy(&v, x + i, sizeof v);
        memcpy(&bb, b + i, sizeof bb);
        v = gelu4(v + bb);
        memcpy(x + i, &v, sizeof v);
    }
    if (i < n) {
        v4f v = {0};
        for (int64_t j = i; j < n; j++)
            v[j - i] = x[j] + b[j];
        v = gelu4(v);
        for (int64_t j = i; j < n; j++)
            x[j] = v[j - i];
    }
}

typedef enum { OP_LN, OP_SHORTCONV, OP_GATE, OP_RESID_LN2, OP_GELU, OP_RESID, OP_LNF } op_kind;

typedef struct {
    op_kind op;
    lr_ctx *ctx;
    const lr_hyenadna *m;
    const layer_w *w;
    int64_t rows, t0, L, hist; /* hist: rows of short-conv history at the top of p */
    float *h;                  /* residual stream [L][d] */
    float *a;                  /* [CHUNK + K - 1][d] normed rows / gated rows */
    float *p;                  /* [CHUNK + K - 1][3d] in_proj output */
    float *x0, *u;             /* [L][d], [d][L] */
    float *mid;                /* [CHUNK][d_inner] or [CHUNK][d] */
    double eps;
    const float *lw, *lb;
} tok_job;

static void tok_task(void *arg, size_t task, int thread)
{
    const tok_job *j = arg;
    const lr_hyenadna *m = j->m;
    const layer_w *w = j->w;
    const int64_t d = m->d, d3 = 3 * d, K = m->K;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    switch (j->op) {
    case OP_LN: /* a[r] = LN(h[t0 - hist + r]) */
        for (int64_t r = r0; r < r1; r++)
            layer_norm_row(j->h + (j->t0 - j->hist + r) * d, d, j->lw, j->lb, j->eps, j->a + r * d);
        break;
    case OP_SHORTCONV: { /* p rows hist.. are the chunk's tokens; rows before t = 0 are zero */
        float *q = lr_thread_scratch(j->ctx, thread), *tile = q + d3; /* [3d], [ROWS_PER_TASK][d] */
        for (int64_t r = r0; r < r1; r++) {
            const int64_t t = j->t0 + r;
            memcpy(q, w->sf_b, (size_t)d3 * sizeof *q);
            for (int64_t k = 0; k < K; k++) {
                const int64_t src = t - (K - 1) + k; /* token index */
                if (src < 0)
                    continue;
                const float *pr = j->p + (src - j->t0 + j->hist) * d3, *wk = w->sf_wt + k * d3, *ib = w->in_b;
                for (int64_t c = 0; c < d3; c++) /* in_proj's bias here: the padding rows have none */
                    q[c] += wk[c] * (pr[c] + ib[c]);
            }
            memcpy(j->x0 + t * d, q, (size_t)d * sizeof *q);
            float *tr = tile + (r - r0) * d;
            for (int64_t c = 0; c < d; c++)
                tr[c] = q[d + c] * q[2 * d + c];
        }
        for (int64_t c = 0; c < d; c++) /* to u's channel-major layout a tile at a time */
            for (int64_t r = r0; r < r1; r++)
                j->u[c * j->L + j->t0 + r] = tile[(r - r0) * d + c];
        break;
    }
    case OP_GATE: { /* a[r] = x0 * y */
        float *tile = (float *)lr_thread_scratch(j->ctx, thread) + d3;
        for (int64_t c = 0; c < d; c++)
            for (int64_t r = r0; r < r1; r++)
                tile[(r - r0) * d + c] = j->u[c * j->L + j->t0 + r];
        for (int64_t r = r0; r < r1; r++) {
            const float *x0 = j->x0 + (j->t0 + r) * d, *y = tile + (r - r0) * d;
            float *o = j->a + r * d;
            for (int64_t c = 0; c < d; c++)
                o[c] = x0[c] * y[c];
        }
        break;
    }
    case OP_RESID_LN2: /* h += mid + out_b; a = LN2(h) */
        for (int64_t r = r0; r < r1; r++) {
            float *h = j->h + (j->t0 + r) * d;
            for (int64_t c = 0; c < d; c++)
                h[c] += j->mid[r * d + c] + w->out_b[c];
            layer_norm_row(h, d, w->ln2_w, w->ln2_b, BLOCK_EPS, j->a + r * d);
        }
        break;
    case OP_GELU:
        for (int64_t r = r0; r < r1; r++)
            gelu_row(j->mid + r * m->d_inner, w->fc1_b, m->d_inner);
        break;
    case OP_RESID: /* h += a + fc2_b */
        for (int64_t r = r0; r < r1; r++) {
            float *h = j->h + (j->t0 + r) * d;
            for (int64_t c = 0; c < d; c++)
                h[c] += j->a[r * d + c] + w->fc2_b[c];
        }
        break;
    case OP_LNF:
        for (int64_t r = r0; r < r1; r++) {
            float *h = j->h + (j->t0 + r) * d;
            layer_norm_row(h, d, m->lnf_w, m->lnf_b, m->eps_f, h);
        }
        break;
    }
}

static void run_tok(lr_ctx *ctx, tok_job *j, op_kind op, int64_t rows)
{
    j->op = op;
    j->rows = rows;
    lr_parallel_for(ctx, (size_t)((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK), tok_task, j);
}

/* One layer: chunks of pass A fill x0 and u, the long convolution, chunks of pass C. */
static lr_status run_layer(lr_ctx *ctx, lr_hyenadna *m, int64_t li, const lr_longconv *conv, int64_t L,
                           float *h, float *x0, float *u, float *a, float *p, float *mid)
{
    const layer_w *w = &m->layers[li];
    const int64_t d = m->d, d3 = 3 * d, di = m->d_inner, K = m->K;
    tok_job j = {.ctx = ctx, .m = m, .w = w, .L = L, .h = h, .a = a, .p = p, .x0 = x0, .u = u, .mid = mid};
    lr_status s = lr_thread_scratch_reserve(ctx, (size_t)(d3 + ROWS_PER_TASK * d) * sizeof(float));
    for (int64_t t0 = 0; t0 < L && s == LR_OK; t0 += CHUNK) {
        const int64_t rows = L - t0 < CHUNK ? L - t0 : CHUNK;
        j.t0 = t0;
        j.hist = t0 < K - 1 ? t0 : K - 1;
        j.eps = BLOCK_EPS;
        j.lw = w->ln1_w;
        j.lb = w->ln1_b;
        run_tok(ctx, &j, OP_LN, rows + j.hist);
        s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows + j.hist, d3, d, 1.0f, a, d, w->in_w, d, 0.0f, p, d3);
        if (s == LR_OK)
            run_tok(ctx, &j, OP_SHORTCONV, rows);
    }
    if (s == LR_OK)
        s = lr_longconv_apply(ctx, conv, 1, L, u, u);
    for (int64_t t0 = 0; t0 < L && s == LR_OK; t0 += CHUNK) {
        const int64_t rows = L - t0 < CHUNK ? L - t0 : CHUNK;
        j.t0 = t0;
        j.hist = 0;
        run_tok(ctx, &j, OP_GATE, rows);
        s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, d, d, 1.0f, a, d, w->out_w, d, 0.0f, mid, d);
        if (s != LR_OK)
            break;
        run_tok(ctx, &j, OP_RESID_LN2, rows);
        s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, di, d, 1.0f, a, d, w->fc1_w, d, 0.0f, mid, di);
        if (s != LR_OK)
            break;
        run_tok(ctx, &j, OP_GELU, rows);
        s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, d, di, 1.0f, mid, di, w->fc2_w, di, 0.0f, a, d);
        if (s != LR_OK)
            break;
        run_tok(ctx, &j, OP_RESID, rows);
    }
    return s;
}

lr_status lr_hyenadna_forward(lr_ctx *ctx, lr_hyenadna *m, const int32_t *ids, int64_t L, float *hidden)
{
    if (!ctx || !m || !ids || !hidden)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "lr_hyenadna_forward: NULL argument") : LR_ERR_ARG;
    if (L < 1 || L > m->max_len)
        return lr_fail(ctx, LR_ERR_ARG, "hyenadna: length %lld outside 1..%lld (the model's max_seq_len)",
                       (long long)L, (long long)m->max_len);
    const int64_t d = m->d;
    for (int64_t t = 0; t < L; t++) {
        if (ids[t] < 0 || ids[t] >= m->vocab)
            return lr_fail(ctx, LR_ERR_ARG, "hyenadna: token %lld has id %d, outside 0..%lld", (long long)t,
                           (int)ids[t], (long long)(m->vocab - 1));
        memcpy(hidden + t * d, m->embed + (int64_t)ids[t] * d, (size_t)d * sizeof *hidden);
    }
    const int64_t rows = CHUNK + m->K - 1, wide = m->d_inner > d ? m->d_inner : d;
    const size_t need = (size_t)(2 * L * d + rows * 4 * d + CHUNK * wide);
    if (m->ws_floats < need) { /* fresh pages cost a fault each: reuse them */
        free(m->ws);
        m->ws = alloc_large(need * sizeof *m->ws);
        m->ws_floats = m->ws ? need : 0;
    }
    float *x0 = m->ws, *u = x0 + L * d, *a = u + L * d, *p = a + rows * d, *mid = p + rows * 3 * d;
    lr_status s = m->ws ? LR_OK : lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory for %lld tokens", (long long)L);
    bucket *b = NULL;
    lr_longconv *own = NULL; /* an uncached bucket's convolution, one layer at a time */
    const int64_t len = bucket_len(m, L);
    if (s == LR_OK)
        s = get_bucket(ctx, m, len, &b, &own);
    for (int64_t li = 0; li < m->n_layer && s == LR_OK; li++) {
        if (!b && !own)
            s = make_conv(ctx, m, li, len, &own);
        if (s == LR_OK)
            s = run_layer(ctx, m, li, b ? b->conv[li] : own, L, hidden, x0, u, a, p, mid);
        lr_longconv_destroy(own);
        own = NULL;
    }
    lr_longconv_destroy(own);
    if (s == LR_OK) {
        tok_job j = {.m = m, .h = hidden, .L = L};
        for (int64_t t0 = 0; t0 < L; t0 += CHUNK) {
            j.t0 = t0;
            run_tok(ctx, &j, OP_LNF, L - t0 < CHUNK ? L - t0 : CHUNK);
        }
    }
    if (m->ws_floats * sizeof *m->ws > m->cache_limit) {
        free(m->ws);
        m->ws = NULL;
        m->ws_floats = 0;
    }
    return s;
}

/* ---- the LM head --------------------------------------------------------------------------- */

lr_status lr_hyenadna_logits(lr_ctx *ctx, const lr_hyenadna *m, const float *hidden, int64_t L, float *logits)
{
    if (!ctx || !m || !hidden || !logits || L < 0)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "lr_hyenadna_logits: bad argument") : LR_ERR_ARG;
    return lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, L, m->vocab, m->d, 1.0f, hidden, m->d, m->head, m->d, 0.0f, logits,
                    m->vocab);
}

lr_status lr_hyenadna_log_likelihood(lr_ctx *ctx, const lr_hyenadna *m, const float *hidden, const int32_t *ids,
                                     int64_t L, float *token_ll, double *total)
{
    if (!ctx || !m || !hidden || !ids || !total || L < 1)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "lr_hyenadna_log_likelihood: bad argument") : LR_ERR_ARG;
    const int64_t V = m->vocab;
    for (int64_t t = 0; t < L; t++)
        if (ids[t] < 0 || ids[t] >= V)
            return lr_fail(ctx, LR_ERR_ARG, "hyenadna: token %lld has id %d, outside 0..%lld", (long long)t,
                           (int)ids[t], (long long)(V - 1));
    float *lg = malloc((size_t)(CHUNK * V) * sizeof *lg);
    if (!lg)
        return lr_fail(ctx, LR_ERR_NOMEM, "hyenadna: out of memory");
    lr_status s = LR_OK;
    double sum = 0;
    if (token_ll)
        token_ll[0] = 0;
    for (int64_t t0 = 0; t0 < L - 1 && s == LR_OK; t0 += CHUNK) { /* logits of t predict t + 1 */
        const int64_t rows = L - 1 - t0 < CHUNK ? L - 1 - t0 : CHUNK;
        s = lr_hyenadna_logits(ctx, m, hidden + t0 * m->d, rows, lg);
        for (int64_t r = 0; r < rows && s == LR_OK; r++) {
            const float *x = lg + r * V;
            double mx = x[0], z = 0;
            for (int64_t v = 1; v < V; v++)
                mx = x[v] > mx ? x[v] : mx;
            for (int64_t v = 0; v < V; v++)
                z += exp((double)x[v] - mx);
            double ll = (double)x[ids[t0 + r + 1]] - mx - log(z);
            sum += ll;
            if (token_ll)
                token_ll[t0 + r + 1] = (float)ll;
        }
    }
    free(lg);
    *total = sum;
    return s;
}
