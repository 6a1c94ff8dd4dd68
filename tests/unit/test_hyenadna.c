/* lr_hyenadna against the float64 PyTorch reference (tools/hyenadna_torch.py fixtures, in
 * tests/fixtures/hyenadna): three random-weight models in the Hugging Face -hf layout
 *   bias1k   d 40, use_bias true, separate lm_head, freq kept under one of the shared names;
 *   nobias1k d 32, use_bias false, constant Sin frequency, tied head, "backbone." names,
 *            F16 MLP weights, ln_f eps 1e-6;
 *   long32k  d 32, L = 32768, no pos_emb / deltas buffers in the file (computed here), hidden
 *            states stored for every 64th token and the last 256;
 * per-token outputs at every CPU level within 2e-3 max abs and 8e-5 RMS (the issue's
 * tolerance; measured errors printed), log-likelihoods close; prefixes agree with the full run (causality); results
 * bit-identical for 1, 2 and 3 threads and with or without the filter cache; bad files and
 * arguments refused with a message naming the tensor or key.
 *
 * `test_hyenadna bench MODEL L1,L2,... [THREADS [CACHE_MIB]]` times forward passes instead
 * (random ids; the first call at a length includes preparing the filters). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/hyenadna.h"
#include "longrange/model.h"

#define FIX "tests/fixtures/hyenadna/"
#define TOL_MAX 2e-3
#define TOL_RMS 8e-5

typedef struct {
    lr_model *file, *exp;
    lr_hyenadna *m;
    int64_t L, R, d;
    int32_t *ids, *rows;
    const float *hidden, *token_ll;
    double ll_total;
} fixture;

static void fixture_close(fixture *f)
{
    lr_hyenadna_close(f->m);
    lr_model_close(f->file);
    lr_model_close(f->exp);
    free(f->ids);
    free(f->rows);
    memset(f, 0, sizeof *f);
}

static int fixture_open(lr_ctx *ctx, const char *name, fixture *f)
{
    char path[256];
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, FIX "%s", name);
    if (lr_model_open(ctx, path, &f->file) != LR_OK || lr_hyenadna_open(ctx, f->file, &f->m) != LR_OK) {
        printf("  %s\n", lr_ctx_last_error(ctx));
        return 0;
    }
    snprintf(path, sizeof path, FIX "%s.expected.safetensors", name);
    lr_tensor ids, rows, hid, ll;
    if (lr_model_open(ctx, path, &f->exp) != LR_OK ||
        lr_model_get(ctx, f->exp, "ids", LR_U8, 1, NULL, &ids) != LR_OK ||
        lr_model_get(ctx, f->exp, "rows", LR_I32, 1, NULL, &rows) != LR_OK ||
        lr_model_get(ctx, f->exp, "hidden", LR_F32, 2, NULL, &hid) != LR_OK ||
        lr_model_get(ctx, f->exp, "token_ll", LR_F32, 1, NULL, &ll) != LR_OK || !lr_model_find(f->exp, "ll_total")) {
        printf("  %s\n", lr_ctx_last_error(ctx));
        return 0;
    }
    f->d = lr_hyenadna_d_model(f->m);
    f->L = ids.shape[0];
    f->R = rows.shape[0];
    if (hid.shape[0] != f->R || hid.shape[1] != f->d || ll.shape[0] != f->R)
        return 0;
    f->ids = malloc((size_t)f->L * sizeof *f->ids);
    f->rows = malloc((size_t)f->R * sizeof *f->rows);
    for (int64_t t = 0; t < f->L; t++)
        f->ids[t] = ((const uint8_t *)ids.data)[t];
    memcpy(f->rows, rows.data, (size_t)f->R * sizeof *f->rows);
    f->hidden = hid.data;
    f->token_ll = ll.data;
    memcpy(&f->ll_total, lr_model_find(f->exp, "ll_total")->data, sizeof f->ll_total);
    return 1;
}

/* Max abs and RMS error of `out` ([L][d]) at the fixture's rows r < rows_limit positions. */
static void compare(const fixture *f, const float *out, int64_t L, double *maxe, double *rms)
{
    double m = 0, s2 = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < f->R; i++) {
        if (f->rows[i] >= L)
            continue;
        for (int64_t c = 0; c < f->d; c++) {
            double e = fabs((double)out[f->rows[i] * f->d + c] - f->hidden[i * f->d + c]);
            m = e > m ? e : m;
            s2 += e * e;
            n++;
        }
    }
    *maxe = m;
    *rms = n ? sqrt(s2 / (double)n) : 0;
}

static void parity_at(const char *name, lr_cpu_level level)
{
    lr_ctx *ctx = make_ctx_at(2, level);
    if (!ctx)
        return; /* the machine lacks this level */
    fixture f;
    int ok = fixture_open(ctx, name, &f);
    CHECK(ok);
    float *out = ok ? malloc((size_t)(f.L * f.d) * sizeof *out) : NULL;
    float *tll = ok ? malloc((size_t)f.L * sizeof *tll) : NULL;
    if (ok && out && tll) {
        double t0 = lr_time_now();
        lr_status s = lr_hyenadna_forward(ctx, f.m, f.ids, f.L, out);
        double dt = lr_time_now() - t0;
        CHECKF(s == LR_OK, "%s", lr_ctx_last_error(ctx));
        double maxe, rms;
        compare(&f, out, f.L, &maxe, &rms);
        CHECKF(maxe <= TOL_MAX && rms <= TOL_RMS, "%s: max %.3g rms %.3g", name, maxe, rms);
        double total = 0, llmax = 0;
        s = lr_hyenadna_log_likelihood(ctx, f.m, out, f.ids, f.L, tll, &total);
        CHECKF(s == LR_OK, "%s", lr_ctx_last_error(ctx));
        for (int64_t i = 0; i < f.R; i++) {
            double e = fabs((double)tll[f.rows[i]] - f.token_ll[i]);
            llmax = e > llmax ? e : llmax;
        }
        /* log p moves by at most |dlogit| * 2, and the logits are hidden . head rows */
        CHECKF(llmax <= 2e-2 && fabs(total - f.ll_total) <= 1e-5 * fabs(f.ll_total) + 1e-3,
               "%s: token ll max err %.3g, total %.6f vs %.6f", name, llmax, total, f.ll_total);
        printf("  %s at %s: L=%lld d=%lld max err %.2e rms %.2e; log-likelihood %.4f vs %.4f (token max err %.1e); "
               "%.3f s on 2 threads (filters included)\n",
               name, lr_cpu_level_name(level), (long long)f.L, (long long)f.d, maxe, rms, total, f.ll_total, llmax, dt);
    }
    free(out);
    free(tll);
    fixture_close(&f);
    lr_ctx_destroy(ctx);
}

/* At every CPU level this machine has. */
static void parity(const char *name)
{
    parity_at(name, LR_CPU_REF);
    parity_at(name, LR_CPU_AVX2);
    parity_at(name, LR_CPU_AVX512);
}

static void test_parity_bias1k(void) { parity("bias1k"); }
static void test_parity_nobias1k(void) { parity("nobias1k"); }
static void test_parity_long32k(void) { parity("long32k"); }

/* Prefixes of the input give the prefixes of the output (other buckets, other FFT sizes). */
static void test_prefix_causal(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    fixture f;
    int ok = fixture_open(ctx, "bias1k", &f);
    CHECK(ok);
    float *out = ok ? malloc((size_t)(f.L * f.d) * sizeof *out) : NULL;
    /* buckets 64, 64, 64, 64, 64, 96, 128, 384, 768: more than the cache's 4 slots; then again
     * under a byte limit that holds about two of them */
    const int64_t lens[] = {1, 2, 3, 7, 64, 65, 97, 300, 513};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            lr_hyenadna_set_cache_limit(f.m, 200000);
        for (size_t i = 0; ok && out && i < sizeof lens / sizeof *lens; i++) {
            CHECK(lr_hyenadna_forward(ctx, f.m, f.ids, lens[i], out) == LR_OK);
            double maxe, rms;
            compare(&f, out, lens[i], &maxe, &rms);
            CHECKF(maxe <= TOL_MAX && rms <= TOL_RMS, "L=%lld: max %.3g rms %.3g", (long long)lens[i], maxe, rms);
            CHECK(pass == 0 || lr_hyenadna_cache_bytes(f.m) <= 200000);
        }
    }
    free(out);
    fixture_close(&f);
    lr_ctx_destroy(ctx);
}

/* 1, 2 and 3 threads, cached or not: the same bits. Lengths spanning several chunks. */
static void test_threads_and_cache(void)
{
    float *ref = NULL;
    const char *names[] = {"bias1k", "long32k"};
    const int64_t lens[] = {1000, 5000};
    for (int n = 0; n < 2; n++) {
        for (int threads = 1; threads <= 3; threads++) {
            lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
            REQUIRE(ctx);
            fixture f;
            int ok = fixture_open(ctx, names[n], &f);
            CHECK(ok);
            int64_t L = lens[n];
            float *out = ok ? malloc((size_t)(L * f.d) * sizeof *out) : NULL;
            if (out && lr_hyenadna_forward(ctx, f.m, f.ids, L, out) == LR_OK) {
                if (threads == 1) {
                    free(ref);
                    ref = out;
                    out = NULL;
                    CHECK(lr_hyenadna_cache_bytes(f.m) > 0);
                    /* no cache: the filters are prepared per call, the same way */
                    lr_hyenadna_set_cache_limit(f.m, 0);
                    CHECK(lr_hyenadna_cache_bytes(f.m) == 0);
                    float *again = malloc((size_t)(L * f.d) * sizeof *again);
                    CHECK(again && lr_hyenadna_forward(ctx, f.m, f.ids, L, again) == LR_OK);
                    CHECKF(again && !memcmp(again, ref, (size_t)(L * f.d) * sizeof *ref), "%s: uncached differs",
                           names[n]);
                    CHECK(lr_hyenadna_cache_bytes(f.m) == 0);
                    free(again);
                } else {
                    CHECKF(!memcmp(out, ref, (size_t)(L * f.d) * sizeof *ref), "%s: %d threads differ from 1",
                           names[n], threads);
                }
            } else {
                CHECKF(0, "%s", lr_ctx_last_error(ctx));
            }
            free(out);
            fixture_close(&f);
            lr_ctx_destroy(ctx);
        }
    }
    free(ref);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    fixture f;
    int ok = fixture_open(ctx, "bias1k", &f);
    REQUIRE(ok);
    CHECK(lr_hyenadna_max_seq_len(f.m) == 1026 && lr_hyenadna_vocab(f.m) == 16 && lr_hyenadna_n_layer(f.m) == 2);
    float *out = malloc((size_t)(1100 * f.d) * sizeof *out);
    int32_t *ids = calloc(1100, sizeof *ids);
    REQUIRE(out && ids);
    CHECK(lr_hyenadna_forward(ctx, f.m, ids, 1027, out) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "max_seq_len"));
    CHECK(lr_hyenadna_forward(ctx, f.m, ids, 1026, out) == LR_OK); /* the maximum itself */
    CHECK(lr_hyenadna_forward(ctx, f.m, ids, 0, out) == LR_ERR_ARG);
    ids[5] = 16;
    CHECK(lr_hyenadna_forward(ctx, f.m, ids, 10, out) == LR_ERR_ARG);
    ids[5] = -1;
    CHECK(lr_hyenadna_forward(ctx, f.m, ids, 10, out) == LR_ERR_ARG);
    CHECK(lr_hyenadna_forward(ctx, f.m, NULL, 10, out) == LR_ERR_ARG);
    double total;
    CHECK(lr_hyenadna_log_likelihood(ctx, f.m, out, ids, 10, NULL, &total) == LR_ERR_ARG);
    free(out);
    free(ids);
    fixture_close(&f);
    lr_ctx_destroy(ctx);
}

static void test_tokens(void)
{
    const char *s = "ACGTN";
    for (int i = 0; i < 5; i++) {
        CHECK(lr_hyenadna_token((unsigned char)s[i], false) == 7 + i);
        CHECK(lr_hyenadna_token((unsigned char)(s[i] + 32), true) == 7 + i);
        CHECK(lr_hyenadna_token((unsigned char)(s[i] + 32), false) == LR_HYENADNA_UNK);
    }
    CHECK(lr_hyenadna_token('R', true) == 6 && lr_hyenadna_token('-', true) == 6 && lr_hyenadna_token(0, true) == 6);
    CHECK(lr_hyenadna_token(0xC1, true) == 6 && lr_hyenadna_token('u', true) == 6);
}

/* ---- bad model files: variants of bias1k written as single safetensors files ---------------- */

typedef struct {
    const char *drop;        /* tensor left out */
    const char *reshape;     /* tensor given a smaller first dimension */
    const char *key, *value; /* metadata entry replaced (or added) */
    const char *expect;      /* in the message */
} bad_case;

static lr_status write_variant(lr_ctx *ctx, const lr_model *src, const bad_case *bc, const char *path)
{
    size_t nt = lr_model_tensor_count(src), nm = lr_model_meta_count(src);
    lr_named_tensor *ts = calloc(nt, sizeof *ts);
    const char **meta = calloc(2 * nm + 5, sizeof *meta);
    size_t k = 0, j = 0;
    for (size_t i = 0; i < nt; i++) {
        const lr_model_tensor *t = lr_model_tensor_at(src, i);
        if (bc->drop && !strcmp(t->name, bc->drop))
            continue;
        int64_t shape[LR_MAX_DIMS];
        for (int q = 0; q < t->ndim; q++)
            shape[q] = t->shape[q];
        if (bc->reshape && !strcmp(t->name, bc->reshape))
            shape[0] -= 1;
        ts[k].name = t->name;
        ts[k].tensor = lr_tensor_from((void *)t->data, (lr_dtype)t->dtype, t->ndim, shape);
        k++;
    }
    for (size_t i = 0; i < nm; i++) {
        const char *key, *value;
        lr_model_meta_at(src, i, &key, &value);
        if (!strcmp(key, "model_type") || (bc->key && !strcmp(key, bc->key)) || !strcmp(key, "format"))
            continue;
        meta[j++] = key;
        meta[j++] = value;
    }
    bool arch = bc->key && !strcmp(bc->key, "arch");
    meta[j++] = "arch";
    meta[j++] = arch ? bc->value : "hyenadna";
    if (bc->key && !arch) {
        meta[j++] = bc->key;
        meta[j++] = bc->value;
    }
    lr_status s = lr_safetensors_write(ctx, path, meta, ts, k);
    free(ts);
    free(meta);
    return s;
}

static void test_bad_models(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *src = NULL;
    REQUIRE(lr_model_open(ctx, FIX "bias1k", &src) == LR_OK);
    static const bad_case cases[] = {
        {NULL, NULL, NULL, NULL, NULL}, /* the unchanged copy opens */
        {"hyena.backbone.layers.1.mixer.in_proj.weight", NULL, NULL, NULL,
         "'hyena.backbone.layers.1.mixer.in_proj.weight' not found"},
        {"hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq", NULL, NULL, NULL,
         "implicit_filter.1.freq' not found"},
        {"hyena.backbone.layers.0.mixer.filter_fn.bias", NULL, NULL, NULL, "filter_fn.bias' not found"},
        {NULL, "hyena.backbone.layers.0.mlp.fc1.weight", NULL, NULL, "fc1.weight': expected shape [96, 40], found [95, 40]"},
        {NULL, "hyena.backbone.layers.1.mixer.short_filter.weight", NULL, NULL, "short_filter.weight': expected shape"},
        {NULL, "hyena.backbone.layers.1.mixer.filter_fn.pos_emb.z", NULL, NULL, "pos_emb.z': expected shape"},
        {NULL, "hyena.backbone.embeddings.word_embeddings.weight", NULL, NULL, "word_embeddings.weight': expected shape"},
        {NULL, "lm_head.weight", NULL, NULL, "lm_head.weight': expected shape"},
        {NULL, NULL, "d_model", "abc", "d_model"},
        {NULL, NULL, "d_model", "0", "d_model"},
        {NULL, NULL, "d_model", "48", "expected shape"},
        {NULL, NULL, "emb_dim", "4", "emb_dim"},
        {NULL, NULL, "use_bias", "maybe", "use_bias"},
        {NULL, NULL, "hyena_order", "3", "hyena_order"},
        {NULL, NULL, "short_filter_order", "5", "short_filter_order"},
        {NULL, NULL, "layer_norm_epsilon", "-1", "layer_norm_epsilon"},
        {NULL, NULL, "modulation_shift", "x", "modulation_shift"},
        {NULL, NULL, "num_inner_mlps", "1", "expected shape"},
        {NULL, NULL, "max_seq_len", "2048", "pos_emb.z': expected shape"},
        {NULL, NULL, "arch", "gpt2", "wrong arch 'gpt2'"},
    };
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_hyenadna_%d.safetensors", (int)getpid());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad_case *bc = &cases[i];
        REQUIRE(write_variant(ctx, src, bc, path) == LR_OK);
        lr_model *f = NULL;
        lr_hyenadna *m = NULL;
        lr_status s = lr_model_open(ctx, path, &f);
        CHECKF(s == LR_OK, "%s", lr_ctx_last_error(ctx));
        if (s == LR_OK)
            s = lr_hyenadna_open(ctx, f, &m);
        if (!bc->expect) {
            CHECKF(s == LR_OK, "unchanged copy: %s", lr_ctx_last_error(ctx));
        } else {
            CHECKF(s == LR_ERR_MODEL && strstr(lr_ctx_last_error(ctx), bc->expect), "case %zu: status %d, '%s'", i,
                   (int)s, lr_ctx_last_error(ctx));
            CHECK(m == NULL);
        }
        lr_hyenadna_close(m);
        lr_model_close(f);
    }
    unlink(path);
    lr_model_close(src);
    lr_ctx_destroy(ctx);
}

/* ---- bench mode ------------------------------------------------------------------------------ */

static int bench(const char *model, const char *lens, int threads, long cache_mib)
{
    lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
    lr_model *file = NULL;
    lr_hyenadna *m = NULL;
    if (!ctx || lr_model_open(ctx, model, &file) != LR_OK || lr_hyenadna_open(ctx, file, &m) != LR_OK) {
        fprintf(stderr, "bench: %s\n", ctx ? lr_ctx_last_error(ctx) : "no context");
        return 1;
    }
    if (cache_mib >= 0)
        lr_hyenadna_set_cache_limit(m, (size_t)cache_mib << 20);
    for (const char *p = lens; *p;) {
        char *end;
        int64_t L = strtoll(p, &end, 10);
        p = *end ? end + 1 : end;
        int32_t *ids = malloc((size_t)L * sizeof *ids);
        float *out = malloc((size_t)(L * lr_hyenadna_d_model(m)) * sizeof *out);
        if (!ids || !out)
            return 1;
        for (int64_t t = 0; t < L; t++)
            ids[t] = 7 + (int32_t)((uint64_t)(t * 2654435761u) >> 7) % 4;
        double first = 0, best = 1e30;
        int reps = L <= 65536 ? 5 : 2;
        for (int r = 0; r < reps; r++) {
            double t0 = lr_time_now();
            if (lr_hyenadna_forward(ctx, m, ids, L, out) != LR_OK) {
                fprintf(stderr, "bench: %s\n", lr_ctx_last_error(ctx));
                return 1;
            }
            double dt = lr_time_now() - t0;
            if (r == 0)
                first = dt;
            else
                best = dt < best ? dt : best;
        }
        printf("C threads=%d L=%lld: first %.4f s (filters included), best %.4f s, %.0f tokens/s; cache %.1f MiB, "
               "peak RSS %.0f MiB\n",
               threads, (long long)L, first, best, (double)L / best, (double)lr_hyenadna_cache_bytes(m) / 1048576.0,
               (double)lr_peak_rss() / 1048576.0);
        fflush(stdout);
        free(ids);
        free(out);
    }
    lr_hyenadna_close(m);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "bench"))
        return bench(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 2, argc > 5 ? atol(argv[5]) : -1);
    RUN(test_tokens);
    RUN(test_parity_bias1k);
    RUN(test_parity_nobias1k);
    RUN(test_parity_long32k);
    RUN(test_prefix_causal);
    RUN(test_threads_and_cache);
    RUN(test_bad_args);
    RUN(test_bad_models);
    return CHECK_DONE();
}
