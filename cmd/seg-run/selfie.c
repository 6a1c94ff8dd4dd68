/* MediaPipe selfie segmentation (arch "mediapipe-selfie", tools/convert_mediapipe_selfie.py).
 *
 * The model file carries the graph as a layer sequence in its "graph" metadata (see the
 * converter's docstring): conv / dw / tconv / gap / mul / add / up2 / act ops on named slots,
 * "input" being the image [3][H][W] (RGB 0..1) and "output" naming the logit slot (before the
 * graph's final LOGISTIC). Weights <layer>.weight / <layer>.bias (F16 or F32, PyTorch layouts).
 * Every op's shapes are checked when the file is opened (LR_ERR_MODEL naming the op), for the
 * model's own input size; other sizes are re-planned on the first call and rejected
 * (LR_ERR_ARG) when the graph's adds and gates do not line up.
 *
 * Padding follows TensorFlow: SAME gives ceil(n / stride) outputs and pads
 * max((out-1)*stride + k - n, 0) in all, half of it (rounded down) at the top/left and the rest
 * at the bottom/right; VALID pads nothing. Bilinear x2 resizing is half-pixel (TF's
 * half_pixel_centers). Activations use lr_conv2d's fused ones. Buffers are planned once per
 * input size by liveness (about 4 MB at 256x256) and kept between calls. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "longrange/resize.h"
#include "seg.h"

typedef enum { OP_CONV, OP_DW, OP_TCONV, OP_GAP, OP_MUL, OP_ADD, OP_UP2, OP_ACT } op_kind;

typedef struct {
    op_kind kind;
    int out, in, in2;      /* slot indices (in2: the gate of mul, the second term of add) */
    int k, stride;         /* conv, dw, tconv */
    bool same;             /* TF SAME padding (else VALID) */
    lr_act act;
    int cout;
    const float *w, *b;
    char text[160];        /* the op as written, for messages */
} selfie_op;

typedef struct {
    char name[64];
    int c, h, w;           /* planned shape */
    int last_use;          /* index of the last op reading it */
    int block;             /* buffer block, -1 for input/output */
} selfie_slot;

typedef struct {
    selfie_op *ops;
    int nops;
    selfie_slot *slots;
    int nslots;
    int output;
    int plan_h, plan_w;    /* the size the slots' shapes and blocks are planned for */
    float **blocks;
    size_t *block_size;    /* in floats */
    int nblocks;
    char label[256];
    char path[256];
} selfie;

static int slot_find(const selfie *sf, const char *name)
{
    for (int i = 0; i < sf->nslots; i++)
        if (strcmp(sf->slots[i].name, name) == 0)
            return i;
    return -1;
}

/* A new slot written by an op (names are unique: each tensor is written once). */
static int slot_add(selfie *sf, const char *name)
{
    if (slot_find(sf, name) >= 0 || strlen(name) >= sizeof sf->slots[0].name)
        return -1;
    selfie_slot *s = &sf->slots[sf->nslots];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->block = -1;
    return sf->nslots++;
}

static bool parse_act(const char *t, lr_act *act)
{
    if (strcmp(t, "none") == 0)
        *act = LR_ACT_NONE;
    else if (strcmp(t, "relu") == 0)
        *act = LR_ACT_RELU;
    else if (strcmp(t, "hswish") == 0)
        *act = LR_ACT_HARDSWISH;
    else if (strcmp(t, "sigmoid") == 0)
        *act = LR_ACT_SIGMOID;
    else
        return false;
    return true;
}

/* TensorFlow's output size and leading pad along one axis. */
static int tf_out(int n, int k, int stride, bool same, int *pad_lead, int *pad_trail)
{
    if (same) {
        int o = (n + stride - 1) / stride;
        int total = (o - 1) * stride + k - n;
        if (total < 0)
            total = 0;
        *pad_lead = total / 2;
        *pad_trail = total - total / 2;
        return o;
    }
    *pad_lead = *pad_trail = 0;
    return n < k ? 0 : (n - k) / stride + 1;
}

static lr_conv2d_desc op_desc(const selfie_op *op, int h, int w)
{
    lr_conv2d_desc d = lr_conv2d_default(op->k, op->k);
    d.stride_h = d.stride_w = op->stride;
    if (op->kind != OP_TCONV) {
        tf_out(h, op->k, op->stride, op->same, &d.pad_top, &d.pad_bottom);
        tf_out(w, op->k, op->stride, op->same, &d.pad_left, &d.pad_right);
    }
    d.act = op->act;
    return d;
}

/* Shapes of every slot for an h x w input; err = LR_ERR_MODEL at open, LR_ERR_ARG later. */
static lr_status plan_shapes(lr_ctx *ctx, selfie *sf, int h, int w, lr_status err)
{
    sf->slots[0].c = 3, sf->slots[0].h = h, sf->slots[0].w = w;
    for (int i = 0; i < sf->nops; i++) {
        const selfie_op *op = &sf->ops[i];
        const selfie_slot *x = &sf->slots[op->in];
        const selfie_slot *y = op->in2 >= 0 ? &sf->slots[op->in2] : NULL;
        selfie_slot *o = &sf->slots[op->out];
        int a, b;
        switch (op->kind) {
        case OP_CONV:
        case OP_DW:
            o->c = op->cout;
            o->h = tf_out(x->h, op->k, op->stride, op->same, &a, &b);
            o->w = tf_out(x->w, op->k, op->stride, op->same, &a, &b);
            break;
        case OP_TCONV:
            o->c = op->cout, o->h = x->h * op->stride, o->w = x->w * op->stride;
            break;
        case OP_GAP:
            o->c = x->c, o->h = o->w = 1;
            break;
        case OP_MUL:
            if (y->c != x->c || y->h != 1 || y->w != 1)
                return lr_fail(ctx, err, "%s: selfie op '%s': gate %dx%dx%d for a map of %d "
                               "channels", sf->path, op->text, y->c, y->h, y->w, x->c);
            o->c = x->c, o->h = x->h, o->w = x->w;
            break;
        case OP_ADD:
            if (y->c != x->c || y->h != x->h || y->w != x->w)
                return lr_fail(ctx, err, "%s: selfie op '%s': adds %dx%dx%d and %dx%dx%d "
                               "(input %dx%d)", sf->path, op->text, x->c, x->h, x->w, y->c, y->h,
                               y->w, w, h);
            o->c = x->c, o->h = x->h, o->w = x->w;
            break;
        case OP_UP2:
            o->c = x->c, o->h = 2 * x->h, o->w = 2 * x->w;
            break;
        case OP_ACT:
            o->c = x->c, o->h = x->h, o->w = x->w;
            break;
        }
        if (o->h < 1 || o->w < 1)
            return lr_fail(ctx, err, "%s: selfie op '%s': empty output for a %dx%d input",
                           sf->path, op->text, w, h);
    }
    const selfie_slot *out = &sf->slots[sf->output];
    if (out->c != 1 || out->h != h || out->w != w)
        return lr_fail(ctx, err, "%s: selfie output '%s' is %dx%dx%d, expected 1x%dx%d",
                       sf->path, out->name, out->c, out->h, out->w, h, w);
    return LR_OK;
}

static void free_blocks(selfie *sf)
{
    for (int i = 0; i < sf->nblocks; i++)
        free(sf->blocks[i]);
    sf->nblocks = 0;
    sf->plan_h = sf->plan_w = 0;
}

/* Shapes, then buffers by liveness: a slot takes the smallest free block that fits (or a new
 * one) and returns it after its last reader. */
static lr_status plan(lr_ctx *ctx, selfie *sf, int h, int w, lr_status err)
{
    free_blocks(sf);
    lr_status s = plan_shapes(ctx, sf, h, w, err);
    if (s != LR_OK)
        return s;
    bool *busy = calloc((size_t)sf->nslots + 1, sizeof *busy);
    if (!busy)
        return lr_fail(ctx, LR_ERR_NOMEM, "selfie: out of memory");
    size_t need_sizes[512];
    int nneed = 0;
    for (int i = 0; i < sf->nops; i++) {
        selfie_slot *o = &sf->slots[sf->ops[i].out];
        if (sf->ops[i].out != sf->output) {
            size_t need = (size_t)o->c * (size_t)o->h * (size_t)o->w;
            int best = -1;
            for (int b = 0; b < nneed; b++)
                if (!busy[b] && need_sizes[b] >= need &&
                    (best < 0 || need_sizes[b] < need_sizes[best]))
                    best = b;
            if (best < 0) {
                /* grow the largest free block rather than adding one, if any is free */
                for (int b = 0; b < nneed; b++)
                    if (!busy[b] && (best < 0 || need_sizes[b] > need_sizes[best]))
                        best = b;
                if (best < 0) {
                    if (nneed == sf->nslots) {
                        free(busy);
                        return lr_fail(ctx, LR_ERR_INTERNAL, "selfie: buffer plan overflow");
                    }
                    best = nneed++;
                }
                need_sizes[best] = need;
            }
            busy[best] = true;
            o->block = best;
        }
        /* release what this op read for the last time (never the input or the output) */
        int reads[2] = {sf->ops[i].in, sf->ops[i].in2};
        for (int r = 0; r < 2; r++) {
            const selfie_slot *x = reads[r] >= 0 ? &sf->slots[reads[r]] : NULL;
            if (x && x->last_use == i && x->block >= 0 && reads[r] != sf->output)
                busy[x->block] = false;
        }
    }
    free(busy);
    for (int b = 0; b < nneed; b++) {
        sf->blocks[b] = malloc(need_sizes[b] * sizeof(float));
        sf->block_size[b] = need_sizes[b];
        if (!sf->blocks[b]) {
            sf->nblocks = b;
            free_blocks(sf);
            return lr_fail(ctx, LR_ERR_NOMEM, "selfie: out of memory for a %dx%d input", w, h);
        }
    }
    sf->nblocks = nneed;
    sf->plan_h = h, sf->plan_w = w;
    return LR_OK;
}

/* Elementwise helpers: restrict lets the compiler vectorise them (the planes never overlap). */
static double plane_mean(const float *restrict x, size_t n)
{
    double acc[4] = {0, 0, 0, 0}; /* four chains: a fixed order, so still deterministic */
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            acc[k] += x[i + k];
    for (; i < n; i++)
        acc[0] += x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) / (double)n;
}

static void scale_plane(float *restrict o, const float *restrict x, float g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        o[i] = x[i] * g;
}

static void add_planes(float *restrict o, const float *restrict x, const float *restrict y,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        o[i] = x[i] + y[i];
}

/* out[co] = b[co] + sum_ci w[co][ci] x[ci], in a fixed order. */
static void fc_layer(float *restrict out, const float *restrict x, const float *restrict w,
                     const float *restrict b, int cin, int cout)
{
    for (int co = 0; co < cout; co++) {
        float acc = 0.0f;
        for (int ci = 0; ci < cin; ci++)
            acc += w[(size_t)co * cin + ci] * x[ci];
        out[co] = b[co] + acc;
    }
}

static void selfie_out_size(const seg_net *net, int h, int w, int *out_h, int *out_w)
{
    (void)net;
    *out_h = h, *out_w = w;
}

static lr_status selfie_forward(lr_ctx *ctx, const seg_net *net, const float *in, int h, int w,
                                float *out)
{
    selfie *sf = net->impl;
    if (!in || !out || h < 2 || w < 2 || h > 16384 || w > 16384)
        return lr_fail(ctx, LR_ERR_ARG, "selfie: bad input (%dx%d)", w, h);
    lr_status s;
    if ((h != sf->plan_h || w != sf->plan_w) && (s = plan(ctx, sf, h, w, LR_ERR_ARG)) != LR_OK)
        return s;
    for (int i = 0; i < sf->nops; i++) {
        const selfie_op *op = &sf->ops[i];
        const selfie_slot *xs = &sf->slots[op->in], *os = &sf->slots[op->out];
        const float *x = op->in == 0 ? in : sf->blocks[xs->block];
        const float *y = op->in2 < 0 ? NULL
                         : op->in2 == 0 ? in : sf->blocks[sf->slots[op->in2].block];
        float *o = op->out == sf->output ? out : sf->blocks[os->block];
        size_t plane = (size_t)xs->h * (size_t)xs->w, n = (size_t)xs->c * plane;
        lr_conv2d_desc d = op_desc(op, xs->h, xs->w);
        s = LR_OK;
        switch (op->kind) {
        case OP_CONV:
            if (plane == 1 && op->k == 1) { /* the gates' FC layers: too small to thread */
                fc_layer(o, x, op->w, op->b, xs->c, op->cout);
                lr_activate(&d, o, op->cout, 1);
                break;
            }
            s = lr_conv2d(ctx, &d, x, xs->c, xs->h, xs->w, op->w, op->b, op->cout, o);
            break;
        case OP_DW:
            d.groups = xs->c;
            s = lr_conv2d(ctx, &d, x, xs->c, xs->h, xs->w, op->w, op->b, op->cout, o);
            break;
        case OP_TCONV:
            s = lr_conv_transpose2d(ctx, &d, x, xs->c, xs->h, xs->w, op->w, op->b, op->cout, o);
            break;
        case OP_GAP:
            for (int c = 0; c < xs->c; c++)
                o[c] = plane_mean(x + (size_t)c * plane, plane);
            break;
        case OP_MUL:
            for (int c = 0; c < xs->c; c++)
                scale_plane(o + (size_t)c * plane, x + (size_t)c * plane, y[c], plane);
            break;
        case OP_ADD:
            add_planes(o, x, y, n);
            break;
        case OP_UP2: {
            lr_resize_desc r = {LR_RESIZE_BILINEAR, 0.0, false};
            s = lr_resize(ctx, &r, x, xs->c, xs->h, xs->w, o, os->h, os->w);
            break;
        }
        case OP_ACT:
            memcpy(o, x, n * sizeof *o);
            lr_activate(&d, o, xs->c, (int64_t)plane);
            break;
        }
        if (s != LR_OK)
            return s;
    }
    return LR_OK;
}

static void selfie_close(seg_net *net)
{
    if (!net)
        return;
    selfie *sf = net->impl;
    if (sf) {
        free_blocks(sf);
        free(sf->blocks);
        free(sf->block_size);
        free(sf->ops);
        free(sf->slots);
        free(sf);
    }
    free(net);
}

/* One layer's weight [cout][cin or 1][k][k] (transposed: [cin][cout][k][k]) and bias [cout]. */
static lr_status get_layer(lr_ctx *ctx, const lr_model *file, selfie *sf, selfie_op *op,
                           const char *layer, int cin)
{
    char name[96];
    snprintf(name, sizeof name, "%s.weight", layer);
    const lr_model_tensor *t = lr_model_find(file, name);
    if (!t)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie op '%s': tensor '%s' is missing", sf->path,
                       op->text, name);
    if (t->ndim != 4)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' has %d dimensions, expected 4",
                       sf->path, name, t->ndim);
    int64_t k = op->kind == OP_TCONV ? op->stride : t->shape[2];
    if (k < 1 || k > 7 || (op->kind != OP_TCONV && k % 2 == 0))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': kernel size %lld (expected odd, "
                       "1..7; transposed: the stride)", sf->path, name, (long long)t->shape[2]);
    int64_t cout = op->kind == OP_TCONV ? t->shape[1] : t->shape[0];
    if (cout < 1 || cout > 4096 || (op->kind == OP_DW && cout != cin))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': %lld output channels for %d inputs",
                       sf->path, name, (long long)cout, cin);
    int64_t wshape[4] = {cout, op->kind == OP_DW ? 1 : cin, k, k};
    if (op->kind == OP_TCONV)
        wshape[0] = cin, wshape[1] = cout;
    int64_t bshape[1] = {cout};
    lr_tensor wt, bt;
    lr_status s = lr_model_get_f32(ctx, file, name, 4, wshape, &wt);
    if (s != LR_OK)
        return s;
    snprintf(name, sizeof name, "%s.bias", layer);
    if ((s = lr_model_get_f32(ctx, file, name, 1, bshape, &bt)) != LR_OK)
        return s;
    op->k = (int)k, op->cout = (int)cout, op->w = wt.data, op->b = bt.data;
    return LR_OK;
}

/* Parses the "graph" metadata into ops and slots, fetching and checking every layer. */
static lr_status parse_graph(lr_ctx *ctx, const lr_model *file, selfie *sf, const char *graph)
{
    int cap = 1;
    for (const char *p = graph; *p; p++)
        cap += *p == ';';
    if (cap > 500)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie graph has %d ops (at most 500)", sf->path,
                       cap);
    sf->ops = calloc((size_t)cap, sizeof *sf->ops);
    sf->slots = calloc((size_t)cap + 1, sizeof *sf->slots);
    sf->blocks = calloc((size_t)cap + 1, sizeof *sf->blocks);
    sf->block_size = calloc((size_t)cap + 1, sizeof *sf->block_size);
    if (!sf->ops || !sf->slots || !sf->blocks || !sf->block_size)
        return lr_fail(ctx, LR_ERR_NOMEM, "selfie: out of memory");
    slot_add(sf, "input");
    sf->slots[0].c = 3;
    const char *p = graph;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        selfie_op *op = &sf->ops[sf->nops];
        if (len >= sizeof op->text)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie graph op too long", sf->path);
        memcpy(op->text, p, len);
        op->text[len] = '\0';
        p = end ? end + 1 : p + len;
        char kind[16], out[64], in[64], arg3[64], pad[16], act[16];
        int stride = 0, n;
        char tail;
        n = sscanf(op->text, " %15s %63s %63s %63s %d %15s %15s %c", kind, out, in, arg3, &stride,
                   pad, act, &tail);
        if (n < 1)
            continue; /* an empty item (a trailing ';') */
        op->in2 = -1;
        op->stride = 1;
        op->act = LR_ACT_NONE;
        static const struct {
            const char *name;
            op_kind kind;
            int tokens;
        } kinds[] = {{"conv", OP_CONV, 7}, {"dw", OP_DW, 7}, {"tconv", OP_TCONV, 5},
                     {"gap", OP_GAP, 3},   {"mul", OP_MUL, 4}, {"add", OP_ADD, 4},
                     {"up2", OP_UP2, 3},   {"act", OP_ACT, 4}};
        bool ok = false;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strcmp(kind, kinds[k].name) == 0) {
                op->kind = kinds[k].kind;
                ok = n == kinds[k].tokens;
            }
        if (ok && (op->kind == OP_CONV || op->kind == OP_DW)) {
            op->same = strcmp(pad, "same") == 0;
            ok = (op->same || strcmp(pad, "valid") == 0) && parse_act(act, &op->act);
        }
        if (ok && op->kind == OP_ACT)
            ok = parse_act(arg3, &op->act);
        if (ok && (op->kind == OP_CONV || op->kind == OP_DW || op->kind == OP_TCONV)) {
            ok = stride >= 1 && stride <= 4;
            op->stride = stride;
        }
        if (!ok)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie graph: cannot read op '%s'", sf->path,
                           op->text);
        op->in = slot_find(sf, in);
        if (op->kind == OP_MUL || op->kind == OP_ADD)
            op->in2 = slot_find(sf, arg3);
        if (op->in < 0 || ((op->kind == OP_MUL || op->kind == OP_ADD) && op->in2 < 0))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie op '%s' reads a slot not yet written",
                           sf->path, op->text);
        /* channels of the input, known from the ops before */
        lr_status s;
        if ((op->kind == OP_CONV || op->kind == OP_DW || op->kind == OP_TCONV) &&
            (s = get_layer(ctx, file, sf, op, arg3, sf->slots[op->in].c)) != LR_OK)
            return s;
        sf->slots[op->in].last_use = sf->nops;
        if (op->in2 >= 0)
            sf->slots[op->in2].last_use = sf->nops;
        if ((op->out = slot_add(sf, out)) < 0)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie op '%s' writes '%s' twice (or the name "
                           "is too long)", sf->path, op->text, out);
        sf->slots[op->out].c = op->kind == OP_CONV || op->kind == OP_DW || op->kind == OP_TCONV
                                   ? op->cout : sf->slots[op->in].c;
        sf->nops++;
    }
    if (sf->nops == 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie graph is empty", sf->path);
    return LR_OK;
}

lr_status selfie_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "mediapipe-selfie");
    if (s != LR_OK)
        return s;
    int64_t in_w = 0, in_h = 0;
    if ((s = lr_model_meta_int(ctx, file, "input_width", false, 0, &in_w)) != LR_OK ||
        (s = lr_model_meta_int(ctx, file, "input_height", false, 0, &in_h)) != LR_OK)
        return s;
    if (in_w < 2 || in_w > 4096 || in_h < 2 || in_h > 4096)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie input size %lldx%lld (expected 2..4096)",
                       lr_model_path(file), (long long)in_w, (long long)in_h);
    const char *graph = lr_model_meta(file, "graph"), *output = lr_model_meta(file, "output");
    if (!graph || !output)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: selfie model without \"graph\" or \"output\" "
                       "metadata", lr_model_path(file));
    selfie *sf = calloc(1, sizeof *sf);
    seg_net *net = calloc(1, sizeof *net);
    if (!sf || !net) {
        free(sf);
        free(net);
        return lr_fail(ctx, LR_ERR_NOMEM, "selfie: out of memory");
    }
    net->impl = sf;
    net->close = selfie_close;
    snprintf(sf->path, sizeof sf->path, "%s", lr_model_path(file) ? lr_model_path(file) : "selfie");
    if ((s = parse_graph(ctx, file, sf, graph)) != LR_OK)
        goto fail;
    if ((sf->output = slot_find(sf, output)) <= 0) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: selfie output '%s' is not written by the graph",
                    sf->path, output);
        goto fail;
    }
    /* the output slot is the caller's buffer: it must be the last op's, read by no op */
    if (sf->ops[sf->nops - 1].out != sf->output || sf->slots[sf->output].last_use != 0) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: selfie output '%s' must be the last op's result",
                    sf->path, output);
        goto fail;
    }
    if ((s = plan(ctx, sf, (int)in_h, (int)in_w, LR_ERR_MODEL)) != LR_OK)
        goto fail;

    const char *base = strrchr(sf->path, '/');
    snprintf(sf->label, sizeof sf->label, "%s", base ? base + 1 : sf->path);
    char *dot = strstr(sf->label, ".safetensors");
    if (dot)
        *dot = '\0';
    net->arch = "mediapipe-selfie";
    net->name = sf->label;
    net->in_width = (int)in_w;
    net->in_height = (int)in_h;
    net->classes = 1;
    net->out_size = selfie_out_size;
    net->forward = selfie_forward;
    *out = net;
    return LR_OK;
fail:
    selfie_close(net);
    return s;
}
