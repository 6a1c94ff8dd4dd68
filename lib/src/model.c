/* safetensors model files: a hardened reader over mmap, Hugging Face directories, a writer.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of JSON describing
 * every tensor (dtype, shape, data_offsets relative to the data section), and the data
 * section itself, which runs from byte 8 + N to the end of the file. Everything in the file
 * is treated as hostile: each field is checked before it is used, with checked arithmetic,
 * and each failure is an LR_ERR_MODEL whose message names the file and tensor. */
#include "longrange/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "longrange/json.h"

/* Every dtype the safetensors format names. The ones libcore does not compute in still load
 * (dtype -1), so a file holding, say, an I64 position table is usable for its other tensors. */
typedef struct {
    const char *name;
    int dtype;
    unsigned bits; /* per element; F4 and F6 pack below a byte */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", LR_F32, 32},   {"F16", LR_F16, 16},     {"BF16", LR_BF16, 16},   {"I32", LR_I32, 32},
    {"U8", LR_U8, 8},      {"F64", -1, 64},         {"I64", -1, 64},         {"U64", -1, 64},
    {"U32", -1, 32},       {"I16", -1, 16},         {"U16", -1, 16},         {"I8", -1, 8},
    {"BOOL", -1, 8},       {"F8_E4M3", -1, 8},      {"F8_E5M2", -1, 8},      {"F8_E8M0", -1, 8},
    {"F6_E2M3", -1, 6},    {"F6_E3M2", -1, 6},      {"F4", -1, 4},           {"C64", -1, 64},
};

static const st_dtype *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

static const char *st_dtype_name(lr_dtype t)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == (int)t)
            return st_dtypes[i].name;
    return "?";
}

/* Alignment a typed pointer to one element needs. */
static size_t dtype_align(const st_dtype *d)
{
    size_t bytes = d->bits / 8;
    if (bytes <= 1)
        return 1;
    return bytes > 8 ? 8 : bytes;
}

typedef struct {
    char *name;                /* in messages: the path, or directory/shard */
    const unsigned char *base; /* the whole file */
    size_t size;
    bool mapped;               /* base is an mmap of size bytes */
    lr_json_doc *header;       /* tensor names and dtype names point into it */
    void *aligned;             /* private copies of tensors misaligned in the file */
} model_file;

typedef struct {
    const char *key;
    const char *value;
} meta_pair;

/* Copies of JSON source text for non-string config values, carved from large chunks. */
typedef struct text_chunk {
    struct text_chunk *next;
    size_t used, size;
    char data[];
} text_chunk;

struct lr_model {
    char *path;
    model_file *files;
    size_t n_files;
    lr_model_tensor *tensors;
    size_t *tensor_file; /* index into files, per tensor */
    size_t n_tensors, cap_tensors;
    const lr_model_tensor **by_name; /* sorted by name, for lookups */
    meta_pair *meta;                 /* in order: __metadata__ pairs, then config.json */
    size_t n_meta, cap_meta;
    meta_pair *meta_by_key;          /* sorted by key, for lookups */
    char *config_text;
    lr_json_doc *config;
    text_chunk *texts;
    /* F32 copies made by lr_model_get_f32 in one lr_alloc block with a slot for every
     * F16/BF16 tensor, reserved at the first request: a model widened in full lands on huge
     * pages, and slots never asked for cost only address space. Freed at close. */
    float *widened;
    size_t *widened_at;  /* per tensor: its slot (in floats); SIZE_MAX when not 16-bit */
    bool *widened_done;  /* per tensor */
};

/* Names and values come from the file: control characters would break the one-line
 * message, and a megabyte-long name would drown it. */
static const char *shown(const char *s, char *buf, size_t size)
{
    size_t n = 0, i = 0;
    for (; s[i] && n + 4 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (s[i]) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    return buf;
}

/* "[768, *]": -1 in an expected shape means any extent. */
static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = 0;
    for (int i = 0; i <= ndim; i++) {
        int n;
        if (i == ndim)
            n = snprintf(buf + pos, size - pos, "]");
        else if (shape[i] < 0)
            n = snprintf(buf + pos, size - pos, "%s*", i ? ", " : "[");
        else
            n = snprintf(buf + pos, size - pos, "%s%lld", i ? ", " : "[", (long long)shape[i]);
        if (n < 0 || (size_t)n >= size - pos)
            break;
        pos += (size_t)n;
    }
    return buf;
}

static bool has_nul(const char *s, size_t len) { return strlen(s) != len; }

static char *text_copy(lr_model *m, const char *s, size_t len)
{
    text_chunk *c = m->texts;
    if (!c || c->size - c->used < len + 1) {
        size_t size = len + 1 > 65536 ? len + 1 : 65536;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->used = 0;
        c->size = size;
        c->next = m->texts;
        m->texts = c;
    }
    char *out = c->data + c->used;
    memcpy(out, s, len);
    out[len] = 0;
    c->used += len + 1;
    return out;
}

static lr_status add_meta(lr_ctx *ctx, lr_model *m, const char *key, const char *value)
{
    if (m->n_meta == m->cap_meta) {
        size_t cap = m->cap_meta ? 2 * m->cap_meta : 16;
        meta_pair *p = cap > SIZE_MAX / sizeof *p ? NULL : realloc(m->meta, cap * sizeof *p);
        if (!p)
            return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for metadata", m->path);
        m->meta = p;
        m->cap_meta = cap;
    }
    m->meta[m->n_meta++] = (meta_pair){key, value};
    return LR_OK;
}

/* Room for `more` tensors. */
static lr_status reserve_tensors(lr_ctx *ctx, lr_model *m, size_t more)
{
    size_t need;
    if (!lr_add_size(m->n_tensors, more, &need))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: too many tensors", m->path);
    if (need <= m->cap_tensors)
        return LR_OK;
    lr_model_tensor *t = need > SIZE_MAX / sizeof *t ? NULL : realloc(m->tensors, need * sizeof *t);
    if (t)
        m->tensors = t;
    size_t *f = need > SIZE_MAX / sizeof *f ? NULL : realloc(m->tensor_file, need * sizeof *f);
    if (f)
        m->tensor_file = f;
    if (!t || !f)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for %zu tensors", m->path, need);
    m->cap_tensors = need;
    return LR_OK;
}

static lr_status add_file(lr_ctx *ctx, lr_model *m, const char *name, model_file **out)
{
    model_file *files = realloc(m->files, (m->n_files + 1) * sizeof *files);
    if (!files)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", name);
    m->files = files;
    model_file *f = &files[m->n_files];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    if (!f->name)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", name);
    m->n_files++;
    *out = f;
    return LR_OK;
}

/* ---- one safetensors file ---- */

typedef struct {
    uint64_t begin, end;
    size_t tensor;
} span;

static int compare_spans(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->tensor > y->tensor) - (x->tensor < y->tensor);
}

static lr_status parse_metadata(lr_ctx *ctx, lr_model *m, const model_file *f, const lr_json *obj)
{
    char b1[96];
    if (obj->type != LR_JSON_OBJECT)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: __metadata__ is not a JSON object", f->name);
    for (const lr_json *c = obj->child; c; c = c->next) {
        if (has_nul(c->key, c->key_len))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: __metadata__ key contains a NUL character",
                           f->name);
        if (c->type != LR_JSON_STRING)
            return lr_fail(ctx, LR_ERR_MODEL,
                           "%s: __metadata__ value of '%s' is not a string (safetensors metadata "
                           "maps strings to strings)",
                           f->name, shown(c->key, b1, sizeof b1));
        if (has_nul(c->str, c->len))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: __metadata__ value of '%s' contains a NUL character",
                           f->name, shown(c->key, b1, sizeof b1));
        lr_status s = add_meta(ctx, m, c->key, c->str);
        if (s != LR_OK)
            return s;
    }
    return LR_OK;
}

/* One tensor entry; data_size is the length of the data section. */
static lr_status parse_tensor(lr_ctx *ctx, const model_file *f, const lr_json *entry,
                              const unsigned char *data, size_t data_size, lr_model_tensor *t)
{
    char nb[96], kb[96], sb[160];
    const char *name = shown(entry->key, nb, sizeof nb);
    if (entry->type != LR_JSON_OBJECT)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': entry is not a JSON object", f->name, name);
    const lr_json *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const lr_json *c = entry->child; c; c = c->next) {
        if (strcmp(c->key, "dtype") == 0 && c->key_len == 5)
            dtype = c;
        else if (strcmp(c->key, "shape") == 0 && c->key_len == 5)
            shape = c;
        else if (strcmp(c->key, "data_offsets") == 0 && c->key_len == 12)
            offsets = c;
        else
            return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': unknown key '%s'", f->name, name,
                           shown(c->key, kb, sizeof kb));
    }
    if (!dtype || !shape || !offsets)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': missing \"%s\"", f->name, name,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (dtype->type != LR_JSON_STRING)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': dtype is not a string", f->name, name);
    const st_dtype *d = has_nul(dtype->str, dtype->len) ? NULL : find_dtype(dtype->str);
    if (!d)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': unknown dtype '%s'", f->name, name,
                       shown(dtype->str, kb, sizeof kb));

    if (shape->type != LR_JSON_ARRAY)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': shape is not an array", f->name, name);
    if (shape->len > LR_MODEL_MAX_DIMS)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': %zu dimensions, more than the %d supported",
                       f->name, name, shape->len, LR_MODEL_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->ndim = (int)shape->len;
    int i = 0;
    for (const lr_json *c = shape->child; c; c = c->next, i++) {
        int64_t v;
        if (c->type != LR_JSON_NUMBER || !lr_json_int(c, &v))
            return lr_fail(ctx, LR_ERR_MODEL,
                           "%s: tensor '%s': dimension %d (%.*s) is not an integer", f->name, name, i,
                           (int)(c->raw_len < 40 ? c->raw_len : 40), c->raw);
        if (v < 0)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': negative dimension %lld", f->name,
                           name, (long long)v);
        t->shape[i] = v;
    }
    /* Element count, then bits, each step checked: a shape's product can exceed any integer. */
    uint64_t numel = 1, bits;
    for (i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': shape %s overflows", f->name, name,
                           shape_text(t->ndim, t->shape, sb, sizeof sb));
    if (__builtin_mul_overflow(numel, (uint64_t)d->bits, &bits) || bits / 8 > SIZE_MAX)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': shape %s of %s overflows", f->name, name,
                       shape_text(t->ndim, t->shape, sb, sizeof sb), d->name);
    if (bits % 8)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': shape %s of %s is not a whole number of bytes",
                       f->name, name, shape_text(t->ndim, t->shape, sb, sizeof sb), d->name);

    int64_t begin, end;
    if (offsets->type != LR_JSON_ARRAY || offsets->len != 2 || !lr_json_int(offsets->child, &begin) ||
        !lr_json_int(offsets->child->next, &end) || begin < 0 || end < 0)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: tensor '%s': data_offsets is not a pair of non-negative integers",
                       f->name, name);
    if (begin > end)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': data_offsets [%lld, %lld] begin after their end",
                       f->name, name, (long long)begin, (long long)end);
    if ((uint64_t)end > data_size)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: tensor '%s': data_offsets [%lld, %lld] out of range: the data section "
                       "has %zu bytes",
                       f->name, name, (long long)begin, (long long)end, data_size);
    if ((uint64_t)(end - begin) != bits / 8)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: tensor '%s': byte size mismatch: shape %s of %s needs %llu bytes, "
                       "data_offsets [%lld, %lld] hold %lld",
                       f->name, name, shape_text(t->ndim, t->shape, sb, sizeof sb), d->name,
                       (unsigned long long)(bits / 8), (long long)begin, (long long)end,
                       (long long)(end - begin));
    t->name = entry->key;
    t->dtype_name = d->name;
    t->dtype = d->dtype;
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    return LR_OK;
}

/* The tensors [first, last) of one file must tile its data section: sorted by offset, each
 * begins where the previous ended, and the last ends at the end of the file. */
static lr_status check_coverage(lr_ctx *ctx, const lr_model *m, const model_file *f,
                                const unsigned char *data, size_t data_size, size_t first,
                                size_t last)
{
    size_t n = last - first;
    span *spans = malloc((n ? n : 1) * sizeof *spans);
    if (!spans)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", f->name);
    for (size_t i = 0; i < n; i++) {
        const lr_model_tensor *t = &m->tensors[first + i];
        uint64_t begin = (uint64_t)((const unsigned char *)t->data - data);
        spans[i] = (span){begin, begin + t->nbytes, first + i};
    }
    qsort(spans, n, sizeof *spans, compare_spans);
    lr_status s = LR_OK;
    char b1[96], b2[96];
    uint64_t covered = 0;
    size_t owner = SIZE_MAX; /* the tensor whose bytes end at `covered` */
    for (size_t i = 0; i < n && s == LR_OK; i++) {
        const span *sp = &spans[i];
        if (sp->begin < covered) {
            s = lr_fail(ctx, LR_ERR_MODEL,
                        "%s: tensors '%s' and '%s' overlap: byte ranges [%llu, %llu) and [%llu, %llu)",
                        f->name, shown(m->tensors[owner].name, b1, sizeof b1),
                        shown(m->tensors[sp->tensor].name, b2, sizeof b2),
                        (unsigned long long)(covered - m->tensors[owner].nbytes),
                        (unsigned long long)covered, (unsigned long long)sp->begin,
                        (unsigned long long)sp->end);
        } else if (sp->begin > covered) {
            s = lr_fail(ctx, LR_ERR_MODEL,
                        "%s: bytes [%llu, %llu) of the data section are not covered by any tensor "
                        "(a gap before '%s')",
                        f->name, (unsigned long long)covered, (unsigned long long)sp->begin,
                        shown(m->tensors[sp->tensor].name, b1, sizeof b1));
        } else if (sp->end > sp->begin) {
            covered = sp->end;
            owner = sp->tensor;
        }
    }
    if (s == LR_OK && covered != data_size)
        s = lr_fail(ctx, LR_ERR_MODEL,
                    "%s: bytes [%llu, %zu) at the end of the data section are not covered by any tensor",
                    f->name, (unsigned long long)covered, data_size);
    free(spans);
    return s;
}

/* The data section starts at 8 + N, and nothing forces N to be a multiple of the element
 * size, so a tensor may sit at an address its dtype cannot be read from. Such tensors are
 * copied once, here, into an aligned private buffer: kernels then never make unaligned
 * typed accesses. Files written by lr_safetensors_write or the Python module pad the header
 * and order the data so that this never happens and the weights stay zero-copy. */
static lr_status align_tensors(lr_ctx *ctx, lr_model *m, model_file *f, size_t first, size_t last)
{
    size_t total = 0;
    for (size_t i = first; i < last; i++) {
        const lr_model_tensor *t = &m->tensors[i];
        size_t align = dtype_align(find_dtype(t->dtype_name));
        /* An empty tensor is never read, wherever it points. */
        if (t->nbytes == 0 || (uintptr_t)t->data % align == 0)
            continue;
        size_t padded = (t->nbytes + 63) / 64 * 64;
        if (padded < t->nbytes || !lr_add_size(total, padded, &total))
            return lr_fail(ctx, LR_ERR_NOMEM, "%s: tensors too large to align", f->name);
    }
    if (total == 0)
        return LR_OK;
    if (posix_memalign(&f->aligned, 64, total) != 0) {
        f->aligned = NULL;
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for %zu bytes of misaligned tensors",
                       f->name, total);
    }
    unsigned char *dst = f->aligned;
    for (size_t i = first; i < last; i++) {
        lr_model_tensor *t = &m->tensors[i];
        size_t align = dtype_align(find_dtype(t->dtype_name));
        if (t->nbytes == 0 || (uintptr_t)t->data % align == 0)
            continue;
        memcpy(dst, t->data, t->nbytes);
        t->data = dst;
        dst += (t->nbytes + 63) / 64 * 64;
    }
    return LR_OK;
}

static lr_status parse_safetensors(lr_ctx *ctx, lr_model *m, size_t file_index)
{
    model_file *f = &m->files[file_index];
    if (f->size == 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: file is empty (truncated: no 8-byte header length)",
                       f->name);
    if (f->size < 8)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: file is %zu bytes, truncated before the end of the 8-byte header length",
                       f->name, f->size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | f->base[i];
    if (header_len > LR_SAFETENSORS_MAX_HEADER)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: header length %llu exceeds the limit of %u bytes",
                       f->name, (unsigned long long)header_len, LR_SAFETENSORS_MAX_HEADER);
    if (header_len > f->size - 8)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: header length %llu runs past the end of the file (%zu bytes): truncated?",
                       f->name, (unsigned long long)header_len, f->size);
    const unsigned char *data = f->base + 8 + header_len;
    size_t data_size = f->size - 8 - (size_t)header_len;

    if (lr_json_parse(ctx, (const char *)f->base + 8, (size_t)header_len, &f->header) != LR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lr_ctx_last_error(ctx));
        return lr_fail(ctx, LR_ERR_MODEL, "%s: header is not valid JSON: %s", f->name, why);
    }
    const lr_json *root = lr_json_root(f->header);
    if (root->type != LR_JSON_OBJECT)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: header is not a JSON object", f->name);
    lr_status s = reserve_tensors(ctx, m, root->len);
    if (s != LR_OK)
        return s;
    size_t first = m->n_tensors;
    for (const lr_json *c = root->child; c; c = c->next) {
        if (has_nul(c->key, c->key_len))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: a tensor name contains a NUL character", f->name);
        if (strcmp(c->key, "__metadata__") == 0) {
            s = parse_metadata(ctx, m, f, c);
        } else {
            s = parse_tensor(ctx, f, c, data, data_size, &m->tensors[m->n_tensors]);
            if (s == LR_OK)
                m->tensor_file[m->n_tensors++] = file_index;
        }
        if (s != LR_OK)
            return s;
    }
    s = check_coverage(ctx, m, f, data, data_size, first, m->n_tensors);
    if (s != LR_OK)
        return s;
    return align_tensors(ctx, m, f, first, m->n_tensors);
}

/* ---- files and directories ---- */

/* Files are opened with O_NONBLOCK so that a FIFO given as a model fails the regular-file
 * check instead of blocking the open. */
static lr_status map_file(lr_ctx *ctx, lr_model *m, const char *path, size_t *file_index)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return lr_fail(ctx, LR_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lr_fail(ctx, LR_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lr_fail(ctx, LR_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: file too large to map", path);
    }
    model_file *f;
    lr_status s = add_file(ctx, m, path, &f);
    if (s != LR_OK) {
        close(fd);
        return s;
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lr_fail(ctx, LR_ERR_IO, "%s: mmap: %s", path, strerror(e));
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd);
    *file_index = (size_t)(f - m->files);
    return LR_OK;
}

/* config.json and the shard index are small JSON files read whole. */
#define LR_SIDE_FILE_MAX (64u << 20)

/* Reads path into a NUL-terminated buffer. LR_ERR_IO with errno ENOENT tells a missing file. */
static lr_status read_side_file(lr_ctx *ctx, const char *path, char **out, size_t *len, int *err)
{
    *out = NULL;
    *err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *err = errno;
        return lr_fail(ctx, LR_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lr_fail(ctx, LR_ERR_IO, "%s: not a readable regular file", path);
    }
    if ((uint64_t)st.st_size > LR_SIDE_FILE_MAX) {
        close(fd);
        return lr_fail(ctx, LR_ERR_MODEL, "%s: %lld bytes, more than the %u allowed", path,
                       (long long)st.st_size, LR_SIDE_FILE_MAX);
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return lr_fail(ctx, LR_ERR_IO, "%s: %s", path, e ? strerror(e) : "file shrank while read");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = 0;
    *out = buf;
    *len = size;
    return LR_OK;
}

static lr_status parse_side_json(lr_ctx *ctx, const char *path, const char *text, size_t len,
                                 lr_json_doc **doc)
{
    if (lr_json_parse(ctx, text, len, doc) != LR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lr_ctx_last_error(ctx));
        return lr_fail(ctx, LR_ERR_MODEL, "%s: not valid JSON: %s", path, why);
    }
    if (lr_json_root(*doc)->type != LR_JSON_OBJECT)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: not a JSON object", path);
    return LR_OK;
}

/* config.json's top-level members become metadata after the files' own __metadata__. */
static lr_status load_config(lr_ctx *ctx, lr_model *m, const char *path)
{
    size_t len;
    int err;
    lr_status s = read_side_file(ctx, path, &m->config_text, &len, &err);
    if (s != LR_OK)
        return err == ENOENT ? (lr_clear_error(ctx), LR_OK) : s;
    s = parse_side_json(ctx, path, m->config_text, len, &m->config);
    if (s != LR_OK)
        return s;
    char b1[96];
    for (const lr_json *c = lr_json_root(m->config)->child; c; c = c->next) {
        if (has_nul(c->key, c->key_len) || (c->type == LR_JSON_STRING && has_nul(c->str, c->len)))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: member '%s' contains a NUL character", path,
                           shown(c->key, b1, sizeof b1));
        const char *value = c->type == LR_JSON_STRING ? c->str : text_copy(m, c->raw, c->raw_len);
        if (!value)
            return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
        s = add_meta(ctx, m, c->key, value);
        if (s != LR_OK)
            return s;
    }
    return LR_OK;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    bool slash = n > 0 && dir[n - 1] == '/';
    size_t size = n + strlen(name) + 2;
    char *p = malloc(size);
    if (p)
        snprintf(p, size, "%s%s%s", dir, slash ? "" : "/", name);
    return p;
}

static bool is_plain_file_name(const char *s, size_t len)
{
    return len > 0 && !has_nul(s, len) && !strchr(s, '/') && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

/* Opens (once) the shard `name` of directory `dir`; *file_index says which file it is. */
static lr_status open_shard(lr_ctx *ctx, lr_model *m, const char *dir, const char *name,
                            size_t *file_index)
{
    char *path = join_path(dir, name);
    if (!path)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < m->n_files; i++) {
        if (strcmp(m->files[i].name, path) == 0) {
            free(path);
            *file_index = i;
            return LR_OK;
        }
    }
    lr_status s = map_file(ctx, m, path, file_index);
    free(path);
    return s != LR_OK ? s : parse_safetensors(ctx, m, *file_index);
}

static int compare_by_name(const void *a, const void *b)
{
    const lr_model_tensor *x = *(const lr_model_tensor *const *)a;
    const lr_model_tensor *y = *(const lr_model_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

/* Sorts the name index and rejects a name that two shards share. */
static lr_status index_names(lr_ctx *ctx, lr_model *m)
{
    m->by_name = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *m->by_name);
    if (!m->by_name)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", m->path);
    for (size_t i = 0; i < m->n_tensors; i++)
        m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, m->n_tensors, sizeof *m->by_name, compare_by_name);
    char b1[96];
    for (size_t i = 1; i < m->n_tensors; i++) {
        const lr_model_tensor *a = m->by_name[i - 1], *b = m->by_name[i];
        if (strcmp(a->name, b->name) == 0)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: duplicate tensor '%s' in %s and %s", m->path,
                           shown(a->name, b1, sizeof b1), m->files[m->tensor_file[a - m->tensors]].name,
                           m->files[m->tensor_file[b - m->tensors]].name);
    }
    return LR_OK;
}

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard file}}.
 * Shards open in order of first mention; afterwards every listed tensor must be in the shard
 * the index names, and every tensor of every shard must be listed. */
static lr_status load_sharded(lr_ctx *ctx, lr_model *m, const char *dir, const char *index_path)
{
    char *text;
    size_t len;
    int err;
    lr_status s = read_side_file(ctx, index_path, &text, &len, &err);
    if (s != LR_OK)
        return s;
    lr_json_doc *doc = NULL;
    bool *listed = NULL;
    char b1[96], b2[96];
    s = parse_side_json(ctx, index_path, text, len, &doc);
    if (s != LR_OK)
        goto done;
    const lr_json *map = lr_json_get(lr_json_root(doc), "weight_map");
    if (!map || map->type != LR_JSON_OBJECT) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    for (const lr_json *e = map->child; e && s == LR_OK; e = e->next) {
        size_t fi;
        if (e->type != LR_JSON_STRING || !is_plain_file_name(e->str, e->len))
            s = lr_fail(ctx, LR_ERR_MODEL,
                        "%s: tensor '%s': the shard is not a file name in the same directory",
                        index_path, shown(e->key, b1, sizeof b1));
        else
            s = open_shard(ctx, m, dir, e->str, &fi);
    }
    if (s == LR_OK)
        s = index_names(ctx, m);
    if (s != LR_OK)
        goto done;
    listed = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *listed);
    if (!listed) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (const lr_json *e = map->child; e && s == LR_OK; e = e->next) {
        const lr_model_tensor *t = has_nul(e->key, e->key_len) ? NULL : lr_model_find(m, e->key);
        char *shard = join_path(dir, e->str);
        if (!shard) {
            s = lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", index_path);
        } else if (!t) {
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' listed in the index is missing from %s",
                        index_path, shown(e->key, b1, sizeof b1), shard);
        } else if (strcmp(m->files[m->tensor_file[t - m->tensors]].name, shard) != 0) {
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' is in %s, but the index names %s",
                        index_path, shown(e->key, b1, sizeof b1),
                        m->files[m->tensor_file[t - m->tensors]].name, shown(shard, b2, sizeof b2));
        } else {
            listed[t - m->tensors] = true;
        }
        free(shard);
    }
    for (size_t i = 0; s == LR_OK && i < m->n_tensors; i++)
        if (!listed[i])
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' is not listed in %s",
                        m->files[m->tensor_file[i]].name, shown(m->tensors[i].name, b1, sizeof b1),
                        index_path);
done:
    free(listed);
    lr_json_free(doc);
    free(text);
    return s;
}

static lr_status load_directory(lr_ctx *ctx, lr_model *m, const char *dir)
{
    char *config = join_path(dir, "config.json");
    char *single = join_path(dir, "model.safetensors");
    char *index = join_path(dir, "model.safetensors.index.json");
    struct stat st;
    lr_status s;
    size_t fi;
    if (!config || !single || !index) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", dir);
    } else if (stat(single, &st) == 0) {
        s = map_file(ctx, m, single, &fi);
        if (s == LR_OK)
            s = parse_safetensors(ctx, m, fi);
        if (s == LR_OK)
            s = index_names(ctx, m);
    } else if (stat(index, &st) == 0) {
        s = load_sharded(ctx, m, dir, index);
    } else {
        s = lr_fail(ctx, LR_ERR_MODEL,
                    "%s: a model directory needs model.safetensors or model.safetensors.index.json",
                    dir);
    }
    if (s == LR_OK)
        s = load_config(ctx, m, config);
    free(config);
    free(single);
    free(index);
    return s;
}

typedef struct {
    meta_pair pair;
    size_t pos;
} ranked_meta;

static int compare_meta(const void *a, const void *b)
{
    const ranked_meta *x = a, *y = b;
    int c = strcmp(x->pair.key, y->pair.key);
    /* Equal keys keep their order of appearance: the first one wins. */
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* A key may appear in several shards (each says "format": "pt") and in config.json: the
 * first occurrence wins and later ones are dropped. */
static lr_status index_meta(lr_ctx *ctx, lr_model *m)
{
    size_t n = m->n_meta;
    ranked_meta *r = malloc((n ? n : 1) * sizeof *r);
    bool *drop = calloc(n ? n : 1, sizeof *drop);
    m->meta_by_key = malloc((n ? n : 1) * sizeof *m->meta_by_key);
    if (!r || !drop || !m->meta_by_key) {
        free(r);
        free(drop);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", m->path);
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked_meta){m->meta[i], i};
    qsort(r, n, sizeof *r, compare_meta);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (unique && strcmp(r[i].pair.key, m->meta_by_key[unique - 1].key) == 0)
            drop[r[i].pos] = true;
        else
            m->meta_by_key[unique++] = r[i].pair;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            m->meta[kept++] = m->meta[i];
    m->n_meta = kept;
    free(r);
    free(drop);
    return LR_OK;
}

static lr_status open_common(lr_ctx *ctx, lr_model *m, lr_model **out)
{
    lr_status s = index_meta(ctx, m);
    if (s != LR_OK) {
        lr_model_close(m);
        return s;
    }
    *out = m;
    return LR_OK;
}

lr_status lr_model_open(lr_ctx *ctx, const char *path, lr_model **out)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return lr_fail(ctx, LR_ERR_IO, "%s: %s", path, strerror(errno));
    lr_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
    }
    lr_status s;
    if (S_ISDIR(st.st_mode)) {
        s = load_directory(ctx, m, path);
    } else {
        size_t fi;
        s = map_file(ctx, m, path, &fi);
        if (s == LR_OK)
            s = parse_safetensors(ctx, m, fi);
        if (s == LR_OK)
            s = index_names(ctx, m);
    }
    if (s != LR_OK) {
        lr_model_close(m);
        return s;
    }
    return open_common(ctx, m, out);
}

lr_status lr_model_open_memory(lr_ctx *ctx, const char *name, const void *data, size_t size,
                               lr_model **out)
{
    *out = NULL;
    lr_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(name))) {
        free(m);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", name);
    }
    model_file *f;
    lr_status s = add_file(ctx, m, name, &f);
    if (s == LR_OK) {
        f->base = data;
        f->size = size;
        s = parse_safetensors(ctx, m, 0);
    }
    if (s == LR_OK)
        s = index_names(ctx, m);
    if (s != LR_OK) {
        lr_model_close(m);
        return s;
    }
    return open_common(ctx, m, out);
}

void lr_model_close(lr_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_files; i++) {
        model_file *f = &m->files[i];
        if (f->mapped)
            munmap((void *)f->base, f->size);
        lr_json_free(f->header);
        free(f->aligned);
        free(f->name);
    }
    free(m->files);
    free(m->tensors);
    free(m->tensor_file);
    free(m->by_name);
    free(m->meta);
    free(m->meta_by_key);
    lr_json_free(m->config);
    free(m->config_text);
    while (m->texts) {
        text_chunk *next = m->texts->next;
        free(m->texts);
        m->texts = next;
    }
    free(m->widened);
    free(m->widened_at);
    free(m->widened_done);
    free(m->path);
    free(m);
}

const char *lr_model_path(const lr_model *m) { return m->path; }

/* ---- metadata ---- */

size_t lr_model_meta_count(const lr_model *m) { return m->n_meta; }

void lr_model_meta_at(const lr_model *m, size_t i, const char **key, const char **value)
{
    *key = i < m->n_meta ? m->meta[i].key : NULL;
    *value = i < m->n_meta ? m->meta[i].value : NULL;
}

static int compare_meta_key(const void *key, const void *pair)
{
    return strcmp(key, ((const meta_pair *)pair)->key);
}

const char *lr_model_meta(const lr_model *m, const char *key)
{
    const meta_pair *p = bsearch(key, m->meta_by_key, m->n_meta, sizeof *p, compare_meta_key);
    return p ? p->value : NULL;
}

lr_status lr_model_meta_int(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                            int64_t dflt, int64_t *out)
{
    const char *v = lr_model_meta(m, key);
    char b1[96];
    if (!v) {
        *out = dflt;
        return has_default ? LR_OK
                           : lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' is missing", m->path, key);
    }
    if (!lr_json_text_int(v, strlen(v), out))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' is \"%s\", not an integer", m->path,
                       key, shown(v, b1, sizeof b1));
    return LR_OK;
}

lr_status lr_model_meta_int_in(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                               int dflt, int lo, int hi, int *out)
{
    int64_t v;
    lr_status s = lr_model_meta_int(ctx, m, key, has_default, dflt, &v);
    if (s != LR_OK)
        return s;
    if (v < lo || v > hi)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' is %lld, expected %d..%d", m->path, key,
                       (long long)v, lo, hi);
    *out = (int)v;
    return LR_OK;
}

lr_status lr_model_meta_float(lr_ctx *ctx, const lr_model *m, const char *key, bool has_default,
                              double dflt, double *out)
{
    const char *v = lr_model_meta(m, key);
    char b1[96];
    if (!v) {
        *out = dflt;
        return has_default ? LR_OK
                           : lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' is missing", m->path, key);
    }
    if (!lr_json_text_number(v, strlen(v), out))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata '%s' is \"%s\", not a number", m->path,
                       key, shown(v, b1, sizeof b1));
    return LR_OK;
}

lr_status lr_model_expect_arch(lr_ctx *ctx, const lr_model *m, const char *arch)
{
    const char *found = lr_model_meta(m, "arch");
    if (!found)
        found = lr_model_meta(m, "model_type");
    char b1[96];
    if (!found)
        return lr_fail(ctx, LR_ERR_MODEL,
                       "%s: no architecture in the metadata (no \"arch\", and no config.json "
                       "\"model_type\"); expected arch '%s'",
                       m->path, arch);
    if (strcmp(found, arch) != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: wrong arch '%s', expected '%s'", m->path,
                       shown(found, b1, sizeof b1), arch);
    return LR_OK;
}

/* ---- tensors ---- */

size_t lr_model_tensor_count(const lr_model *m) { return m->n_tensors; }

const lr_model_tensor *lr_model_tensor_at(const lr_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

static int compare_name_key(const void *key, const void *entry)
{
    return strcmp(key, (*(const lr_model_tensor *const *)entry)->name);
}

const lr_model_tensor *lr_model_find(const lr_model *m, const char *name)
{
    const lr_model_tensor *const *p =
        bsearch(name, m->by_name, m->n_tensors, sizeof *m->by_name, compare_name_key);
    return p ? *p : NULL;
}

lr_status lr_model_get(lr_ctx *ctx, const lr_model *m, const char *name, lr_dtype dtype, int ndim,
                       const int64_t *shape, lr_tensor *out)
{
    if (ndim < 0 || ndim > LR_MAX_DIMS || (unsigned)dtype >= LR_DTYPE_COUNT)
        return lr_fail(ctx, LR_ERR_ARG, "lr_model_get '%s': ndim %d or dtype %d out of range", name,
                       ndim, (int)dtype);
    const lr_model_tensor *t = lr_model_find(m, name);
    if (!t)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' not found", m->path, name);
    const char *file = m->files[m->tensor_file[t - m->tensors]].name;
    if (t->dtype != (int)dtype)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': expected dtype %s, found %s%s", file,
                       name, st_dtype_name(dtype), t->dtype_name,
                       t->dtype < 0 ? " (not a dtype libcore computes in)" : "");
    bool match = t->ndim == ndim;
    for (int i = 0; match && shape && i < ndim; i++)
        match = shape[i] < 0 || shape[i] == t->shape[i];
    if (!match) {
        char want[160], got[160];
        int64_t any[LR_MAX_DIMS] = {-1, -1, -1, -1};
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': expected shape %s, found %s", file, name,
                       shape_text(ndim, shape ? shape : any, want, sizeof want),
                       shape_text(t->ndim, t->shape, got, sizeof got));
    }
    /* The mapping is read-only: lr_tensor has no const data, but weights must not be written. */
    *out = lr_tensor_from((void *)t->data, dtype, ndim, t->shape);
    return LR_OK;
}

/* The slots of every 16-bit float tensor, one after another. */
static lr_status reserve_widened(lr_ctx *ctx, lr_model *m)
{
    size_t total = 0;
    m->widened_at = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *m->widened_at);
    m->widened_done = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->widened_done);
    for (size_t i = 0; m->widened_at && i < m->n_tensors; i++) {
        const lr_model_tensor *t = &m->tensors[i];
        m->widened_at[i] = SIZE_MAX;
        if (t->dtype == LR_F16 || t->dtype == LR_BF16) {
            m->widened_at[i] = total;
            total += (t->nbytes / 2 + 15) & ~(size_t)15; /* slots 64-byte aligned */
        }
    }
    if (m->widened_at && m->widened_done && total <= SIZE_MAX / sizeof(float))
        m->widened = lr_alloc(total * sizeof(float));
    if (!m->widened) {
        free(m->widened_at);
        free(m->widened_done);
        m->widened_at = NULL;
        m->widened_done = NULL;
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory widening its 16-bit tensors", m->path);
    }
    return LR_OK;
}

lr_status lr_model_get_f32(lr_ctx *ctx, const lr_model *m, const char *name, int ndim,
                           const int64_t *shape, lr_tensor *out)
{
    const lr_model_tensor *t = lr_model_find(m, name);
    lr_dtype stored = t && (t->dtype == LR_F16 || t->dtype == LR_BF16) ? (lr_dtype)t->dtype : LR_F32;
    lr_tensor in;
    lr_status s = lr_model_get(ctx, m, name, stored, ndim, shape, &in);
    if (s != LR_OK || stored == LR_F32) {
        *out = in;
        return s;
    }
    /* Widened once; a second request for the tensor gets the same copy. */
    lr_model *owner = (lr_model *)m;
    if (!owner->widened && (s = reserve_widened(ctx, owner)) != LR_OK)
        return s;
    const size_t i = (size_t)(t - m->tensors);
    float *data = owner->widened + owner->widened_at[i];
    if (!owner->widened_done[i]) {
        lr_tensor wide = lr_tensor_from(data, LR_F32, in.ndim, in.shape);
        if ((s = lr_tensor_copy(ctx, &in, &wide)) != LR_OK)
            return s;
        owner->widened_done[i] = true;
    }
    *out = lr_tensor_from(data, LR_F32, in.ndim, in.shape);
    return LR_OK;
}

/* ---- writer ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_buf;

static void put_text(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void put_str(text_buf *b, const char *s) { put_text(b, s, strlen(s)); }

static void put_json_string(text_buf *b, const char *s)
{
    put_text(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put_text(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put_str(b, esc);
        } else {
            put_text(b, s, 1);
        }
    }
    put_text(b, "\"", 1);
}

static bool write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

typedef struct {
    size_t index;
    size_t elem_size;
} data_slot;

static int compare_slots(const void *a, const void *b)
{
    const data_slot *x = a, *y = b;
    if (x->elem_size != y->elem_size)
        return x->elem_size > y->elem_size ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static lr_status check_tensor_arg(lr_ctx *ctx, const char *path, const lr_named_tensor *nt,
                                  size_t *nbytes)
{
    const lr_tensor *t = &nt->tensor;
    if (!nt->name || strcmp(nt->name, "__metadata__") == 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: cannot write a tensor named %s", path,
                       nt->name ? "__metadata__" : "NULL");
    if ((unsigned)t->dtype >= LR_DTYPE_COUNT || t->ndim < 0 || t->ndim > LR_MAX_DIMS ||
        !lr_shape_nbytes(t->dtype, t->ndim, t->shape, nbytes))
        return lr_fail(ctx, LR_ERR_ARG, "%s: tensor '%s': invalid dtype or shape", path, nt->name);
    if (!lr_tensor_is_contiguous(t) || (*nbytes > 0 && !t->data))
        return lr_fail(ctx, LR_ERR_ARG, "%s: tensor '%s': not contiguous or without data", path,
                       nt->name);
    return LR_OK;
}

/* Data goes out in order of decreasing element size, so with a header padded to a multiple
 * of 8 every tensor lands aligned for its dtype; the header lists tensors in caller order. */
static lr_status build_header(lr_ctx *ctx, const char *path, const char *const *meta,
                              const lr_named_tensor *tensors, size_t n, data_slot *slots,
                              text_buf *h)
{
    size_t *begin = malloc((n ? n : 1) * sizeof *begin);
    if (!begin)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        size_t nbytes;
        lr_status s = check_tensor_arg(ctx, path, &tensors[i], &nbytes);
        if (s != LR_OK) {
            free(begin);
            return s;
        }
        slots[i] = (data_slot){i, lr_dtype_size(tensors[i].tensor.dtype)};
    }
    qsort(slots, n, sizeof *slots, compare_slots);
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nbytes;
        const lr_tensor *t = &tensors[slots[i].index].tensor;
        lr_shape_nbytes(t->dtype, t->ndim, t->shape, &nbytes);
        begin[slots[i].index] = offset;
        if (!lr_add_size(offset, nbytes, &offset)) {
            free(begin);
            return lr_fail(ctx, LR_ERR_ARG, "%s: tensors too large", path);
        }
    }

    put_str(h, "{");
    if (meta && meta[0]) {
        put_str(h, "\"__metadata__\":{");
        for (size_t i = 0; meta[i]; i += 2) {
            if (!meta[i + 1]) {
                free(begin);
                return lr_fail(ctx, LR_ERR_ARG, "%s: metadata key '%s' has no value", path, meta[i]);
            }
            put_str(h, i ? "," : "");
            put_json_string(h, meta[i]);
            put_str(h, ":");
            put_json_string(h, meta[i + 1]);
        }
        put_str(h, n ? "}," : "}");
    }
    for (size_t i = 0; i < n; i++) {
        const lr_tensor *t = &tensors[i].tensor;
        size_t nbytes;
        lr_shape_nbytes(t->dtype, t->ndim, t->shape, &nbytes);
        char num[64];
        put_str(h, i ? "," : "");
        put_json_string(h, tensors[i].name);
        put_str(h, ":{\"dtype\":\"");
        put_str(h, st_dtype_name(t->dtype));
        put_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            put_str(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", begin[i], begin[i] + nbytes);
        put_str(h, num);
    }
    put_str(h, "}");
    free(begin);
    while (!h->failed && (8 + h->len) % 8)
        put_str(h, " ");
    if (h->failed)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for the header", path);
    if (h->len > LR_SAFETENSORS_MAX_HEADER)
        return lr_fail(ctx, LR_ERR_ARG, "%s: header of %zu bytes exceeds the limit of %u", path,
                       h->len, LR_SAFETENSORS_MAX_HEADER);
    /* Reading our own header back catches what a reader would reject: invalid UTF-8 in a
     * name or value, and duplicate names or keys. */
    lr_json_doc *doc;
    if (lr_json_parse(ctx, h->buf, h->len, &doc) != LR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lr_ctx_last_error(ctx));
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: tensor names and metadata must be unique valid UTF-8: %s", path, why);
    }
    lr_json_free(doc);
    return LR_OK;
}

lr_status lr_safetensors_write(lr_ctx *ctx, const char *path, const char *const *meta,
                               const lr_named_tensor *tensors, size_t n)
{
    data_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    text_buf h = {0};
    if (!slots)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
    lr_status s = build_header(ctx, path, meta, tensors, n, slots, &h);
    if (s != LR_OK) {
        free(slots);
        free(h.buf);
        return s;
    }

    /* A unique temporary beside the target, so that rename() replaces it atomically. */
    static atomic_uint counter;
    size_t tmp_size = strlen(path) + 64;
    char *tmp = malloc(tmp_size);
    int fd = -1;
    for (int attempt = 0; tmp && fd < 0 && attempt < 100; attempt++) {
        snprintf(tmp, tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        s = tmp ? lr_fail(ctx, LR_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno))
                : lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory", path);
        free(tmp);
        free(slots);
        free(h.buf);
        return s;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    bool ok = write_all(fd, len8, 8) && write_all(fd, h.buf, h.len);
    for (size_t i = 0; ok && i < n; i++) {
        const lr_tensor *t = &tensors[slots[i].index].tensor;
        size_t nbytes;
        lr_shape_nbytes(t->dtype, t->ndim, t->shape, &nbytes);
        ok = write_all(fd, t->data, nbytes);
    }
    int e = ok ? 0 : errno;
    if (ok && fsync(fd) != 0)
        ok = false, e = errno;
    if (close(fd) != 0 && ok)
        ok = false, e = errno;
    if (ok && rename(tmp, path) != 0)
        ok = false, e = errno;
    if (!ok) {
        unlink(tmp);
        s = lr_fail(ctx, LR_ERR_IO, "%s: %s", path, e ? strerror(e) : "write failed");
    }
    free(tmp);
    free(slots);
    free(h.buf);
    return s;
}
