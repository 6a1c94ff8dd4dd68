/* The FFT kernels, written once over a small vector vocabulary and compiled per instruction
 * set: cpu/fft_ref.c (1 lane, plain floats), cpu/fft_avx2.c (8 lanes), cpu/fft_avx512.c
 * (16 lanes). The including file defines
 *   vf, VL                      the vector type and its number of float lanes
 *   vload vstore vset1 vzero    unaligned load/store, broadcast, zero
 *   vadd vsub vmul              elementwise arithmetic
 *   vfmadd(a, b, c) = a b + c   vfmsub(a, b, c) = a b - c   vfnmadd(a, b, c) = c - a b
 *   vload_part(p, n) vstore_part(p, v, n)   the first 0 < n < VL lanes (the rest read as 0)
 *   vstore_stream(p, v)         a store that bypasses the caches (p aligned to the vector)
 *   vstream_fence()             orders streaming stores before later stores
 *   vreverse(v)                 lanes in reverse order
 *   vtranspose(vf r[VL])        r[i] lane j <-> r[j] lane i
 *   FFT_KERNELS_NAME            the name of the lr_fft_kernels table to define
 * Rows hold VL real parts then VL imaginary parts (see fft_internal.h). */
#include <stdint.h>

#include "fft_internal.h"

#define ST (2 * VL) /* floats per row */
/* Pass C asks for the tile this many tiles ahead: each is 2 KB in one place, the next one
 * far away, which the hardware prefetchers do not guess. */
#define PREFETCH_TILES 2

static inline void cmul(vf ar, vf ai, vf br, vf bi, vf *cr, vf *ci)
{
    *cr = vfmsub(ar, br, vmul(ai, bi));
    *ci = vfmadd(ar, bi, vmul(ai, br));
}

/* a * conj(b) */
static inline void cmul_conj(vf ar, vf ai, vf br, vf bi, vf *cr, vf *ci)
{
    *cr = vfmadd(ar, br, vmul(ai, bi));
    *ci = vfmsub(ai, br, vmul(ar, bi));
}

/* ---- Stockham passes: element e of the input is (xr, xi) + e * ST ---- */

static void pass_radix2(const lr_fft_pass *ps, const float *tw, const float *xr, const float *xi,
                        float *yr, float *yi)
{
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    for (int64_t q = 0; q < m; q++) {
        const vf w1r = vset1(tw[2 * q]), w1i = vset1(tw[2 * q + 1]);
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * 2 * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            vf a0r = vload(xr + i), a0i = vload(xi + i);
            vf a1r = vload(xr + i + in_step), a1i = vload(xi + i + in_step);
            vstore(yr + o, vadd(a0r, a1r));
            vstore(yi + o, vadd(a0i, a1i));
            vf br, bi;
            cmul(vsub(a0r, a1r), vsub(a0i, a1i), w1r, w1i, &br, &bi);
            vstore(yr + o + out_step, br);
            vstore(yi + o + out_step, bi);
        }
    }
}

static void pass_radix3(const lr_fft_pass *ps, const float *tw, const float *xr, const float *xi,
                        float *yr, float *yi)
{
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    const vf half = vset1(0.5f), sin60 = vset1(0.86602540378443864676f);
    for (int64_t q = 0; q < m; q++) {
        const float *w = tw + 4 * q;
        const vf w1r = vset1(w[0]), w1i = vset1(w[1]), w2r = vset1(w[2]), w2i = vset1(w[3]);
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * 3 * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            vf a0r = vload(xr + i), a0i = vload(xi + i);
            vf a1r = vload(xr + i + in_step), a1i = vload(xi + i + in_step);
            vf a2r = vload(xr + i + 2 * in_step), a2i = vload(xi + i + 2 * in_step);
            vf tr = vadd(a1r, a2r), ti = vadd(a1i, a2i);
            vf dr = vmul(sin60, vsub(a1r, a2r)), di = vmul(sin60, vsub(a1i, a2i));
            vf mr = vfnmadd(half, tr, a0r), mi = vfnmadd(half, ti, a0i);
            vstore(yr + o, vadd(a0r, tr));
            vstore(yi + o, vadd(a0i, ti));
            vf br, bi;
            /* b1 = m - i d, b2 = m + i d */
            cmul(vadd(mr, di), vsub(mi, dr), w1r, w1i, &br, &bi);
            vstore(yr + o + out_step, br);
            vstore(yi + o + out_step, bi);
            cmul(vsub(mr, di), vadd(mi, dr), w2r, w2i, &br, &bi);
            vstore(yr + o + 2 * out_step, br);
            vstore(yi + o + 2 * out_step, bi);
        }
    }
}

static void pass_radix4(const lr_fft_pass *ps, const float *tw, const float *xr, const float *xi,
                        float *yr, float *yi)
{
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    for (int64_t q = 0; q < m; q++) {
        const float *w = tw + 6 * q;
        const vf w1r = vset1(w[0]), w1i = vset1(w[1]), w2r = vset1(w[2]), w2i = vset1(w[3]);
        const vf w3r = vset1(w[4]), w3i = vset1(w[5]);
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * 4 * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            vf a0r = vload(xr + i), a0i = vload(xi + i);
            vf a1r = vload(xr + i + in_step), a1i = vload(xi + i + in_step);
            vf a2r = vload(xr + i + 2 * in_step), a2i = vload(xi + i + 2 * in_step);
            vf a3r = vload(xr + i + 3 * in_step), a3i = vload(xi + i + 3 * in_step);
            vf s02r = vadd(a0r, a2r), s02i = vadd(a0i, a2i), d02r = vsub(a0r, a2r), d02i = vsub(a0i, a2i);
            vf s13r = vadd(a1r, a3r), s13i = vadd(a1i, a3i), d13r = vsub(a1r, a3r), d13i = vsub(a1i, a3i);
            vstore(yr + o, vadd(s02r, s13r));
            vstore(yi + o, vadd(s02i, s13i));
            vf br, bi;
            /* b1 = d02 - i d13, b2 = s02 - s13, b3 = d02 + i d13 */
            cmul(vadd(d02r, d13i), vsub(d02i, d13r), w1r, w1i, &br, &bi);
            vstore(yr + o + out_step, br);
            vstore(yi + o + out_step, bi);
            cmul(vsub(s02r, s13r), vsub(s02i, s13i), w2r, w2i, &br, &bi);
            vstore(yr + o + 2 * out_step, br);
            vstore(yi + o + 2 * out_step, bi);
            cmul(vsub(d02r, d13i), vadd(d02i, d13r), w3r, w3i, &br, &bi);
            vstore(yr + o + 3 * out_step, br);
            vstore(yi + o + 3 * out_step, bi);
        }
    }
}

/* Radix 8 as a radix-2 step (a_j +- a_(j+4), the difference turned by e^(-i pi j / 4)) and two
 * radix-4 butterflies: the sums give the even outputs, the differences the odd ones. Written
 * out in full so that everything stays in registers. */
#define DFT4(x0r, x0i, x1r, x1i, x2r, x2i, x3r, x3i, y0r, y0i, y1r, y1i, y2r, y2i, y3r, y3i)        \
    do {                                                                                          \
        vf s02r_ = vadd(x0r, x2r), s02i_ = vadd(x0i, x2i), d02r_ = vsub(x0r, x2r), d02i_ = vsub(x0i, x2i); \
        vf s13r_ = vadd(x1r, x3r), s13i_ = vadd(x1i, x3i), d13r_ = vsub(x1r, x3r), d13i_ = vsub(x1i, x3i); \
        y0r = vadd(s02r_, s13r_);                                                                 \
        y0i = vadd(s02i_, s13i_);                                                                 \
        y1r = vadd(d02r_, d13i_);                                                                 \
        y1i = vsub(d02i_, d13r_);                                                                 \
        y2r = vsub(s02r_, s13r_);                                                                 \
        y2i = vsub(s02i_, s13i_);                                                                 \
        y3r = vsub(d02r_, d13i_);                                                                 \
        y3i = vadd(d02i_, d13r_);                                                                 \
    } while (0)

static inline void store_twiddled(float *yr, float *yi, ptrdiff_t o, vf br, vf bi, const float *w)
{
    vf cr, ci;
    cmul(br, bi, vset1(w[0]), vset1(w[1]), &cr, &ci);
    vstore(yr + o, cr);
    vstore(yi + o, ci);
}

static void pass_radix8(const lr_fft_pass *ps, const float *tw, const float *xr, const float *xi,
                        float *yr, float *yi)
{
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    const vf h = vset1(0.70710678118654752440f);
    for (int64_t q = 0; q < m; q++) {
        const float *w = tw + 14 * q;
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * 8 * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            const float *pr = xr + i, *pi = xi + i;
            vf a0r = vload(pr), a0i = vload(pi), a4r = vload(pr + 4 * in_step), a4i = vload(pi + 4 * in_step);
            vf a1r = vload(pr + in_step), a1i = vload(pi + in_step);
            vf a5r = vload(pr + 5 * in_step), a5i = vload(pi + 5 * in_step);
            vf a2r = vload(pr + 2 * in_step), a2i = vload(pi + 2 * in_step);
            vf a6r = vload(pr + 6 * in_step), a6i = vload(pi + 6 * in_step);
            vf a3r = vload(pr + 3 * in_step), a3i = vload(pi + 3 * in_step);
            vf a7r = vload(pr + 7 * in_step), a7i = vload(pi + 7 * in_step);
            vf s0r = vadd(a0r, a4r), s0i = vadd(a0i, a4i), d0r = vsub(a0r, a4r), d0i = vsub(a0i, a4i);
            vf s1r = vadd(a1r, a5r), s1i = vadd(a1i, a5i), d1r = vsub(a1r, a5r), d1i = vsub(a1i, a5i);
            vf s2r = vadd(a2r, a6r), s2i = vadd(a2i, a6i), d2r = vsub(a2r, a6r), d2i = vsub(a2i, a6i);
            vf s3r = vadd(a3r, a7r), s3i = vadd(a3i, a7i), d3r = vsub(a3r, a7r), d3i = vsub(a3i, a7i);
            /* d1 e^(-i pi / 4), d2 (-i), d3 e^(-3 i pi / 4) */
            vf t1r = vmul(h, vadd(d1r, d1i)), t1i = vmul(h, vsub(d1i, d1r));
            vf t2r = d2i, t2i = vsub(vzero(), d2r);
            vf t3r = vmul(h, vsub(d3i, d3r)), t3i = vsub(vzero(), vmul(h, vadd(d3r, d3i)));
            vf b0r, b0i, b2r, b2i, b4r, b4i, b6r, b6i, b1r, b1i, b3r, b3i, b5r, b5i, b7r, b7i;
            DFT4(s0r, s0i, s1r, s1i, s2r, s2i, s3r, s3i, b0r, b0i, b2r, b2i, b4r, b4i, b6r, b6i);
            DFT4(d0r, d0i, t1r, t1i, t2r, t2i, t3r, t3i, b1r, b1i, b3r, b3i, b5r, b5i, b7r, b7i);
            vstore(yr + o, b0r);
            vstore(yi + o, b0i);
            store_twiddled(yr, yi, o + out_step, b1r, b1i, w);
            store_twiddled(yr, yi, o + 2 * out_step, b2r, b2i, w + 2);
            store_twiddled(yr, yi, o + 3 * out_step, b3r, b3i, w + 4);
            store_twiddled(yr, yi, o + 4 * out_step, b4r, b4i, w + 6);
            store_twiddled(yr, yi, o + 5 * out_step, b5r, b5i, w + 8);
            store_twiddled(yr, yi, o + 6 * out_step, b6r, b6i, w + 10);
            store_twiddled(yr, yi, o + 7 * out_step, b7r, b7i, w + 12);
        }
    }
}

static void pass_radix5(const lr_fft_pass *ps, const float *tw, const float *xr, const float *xi,
                        float *yr, float *yi)
{
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    /* cos and sin of 2 pi / 5 and 4 pi / 5 */
    const vf c1 = vset1(0.30901699437494742410f), c2 = vset1(-0.80901699437494742410f);
    const vf s1 = vset1(0.95105651629515357212f), s2 = vset1(0.58778525229247312917f);
    for (int64_t q = 0; q < m; q++) {
        const float *w = tw + 8 * q;
        const vf w1r = vset1(w[0]), w1i = vset1(w[1]), w2r = vset1(w[2]), w2i = vset1(w[3]);
        const vf w3r = vset1(w[4]), w3i = vset1(w[5]), w4r = vset1(w[6]), w4i = vset1(w[7]);
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * 5 * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            vf a0r = vload(xr + i), a0i = vload(xi + i);
            vf a1r = vload(xr + i + in_step), a1i = vload(xi + i + in_step);
            vf a2r = vload(xr + i + 2 * in_step), a2i = vload(xi + i + 2 * in_step);
            vf a3r = vload(xr + i + 3 * in_step), a3i = vload(xi + i + 3 * in_step);
            vf a4r = vload(xr + i + 4 * in_step), a4i = vload(xi + i + 4 * in_step);
            vf t1r = vadd(a1r, a4r), t1i = vadd(a1i, a4i), d1r = vsub(a1r, a4r), d1i = vsub(a1i, a4i);
            vf t2r = vadd(a2r, a3r), t2i = vadd(a2i, a3i), d2r = vsub(a2r, a3r), d2i = vsub(a2i, a3i);
            vstore(yr + o, vadd(a0r, vadd(t1r, t2r)));
            vstore(yi + o, vadd(a0i, vadd(t1i, t2i)));
            vf m1r = vfmadd(c2, t2r, vfmadd(c1, t1r, a0r)), m1i = vfmadd(c2, t2i, vfmadd(c1, t1i, a0i));
            vf m2r = vfmadd(c1, t2r, vfmadd(c2, t1r, a0r)), m2i = vfmadd(c1, t2i, vfmadd(c2, t1i, a0i));
            vf n1r = vfmadd(s2, d2r, vmul(s1, d1r)), n1i = vfmadd(s2, d2i, vmul(s1, d1i));
            vf n2r = vfnmadd(s1, d2r, vmul(s2, d1r)), n2i = vfnmadd(s1, d2i, vmul(s2, d1i));
            vf br, bi;
            /* b1 = m1 - i n1, b4 = m1 + i n1, b2 = m2 - i n2, b3 = m2 + i n2 */
            cmul(vadd(m1r, n1i), vsub(m1i, n1r), w1r, w1i, &br, &bi);
            vstore(yr + o + out_step, br);
            vstore(yi + o + out_step, bi);
            cmul(vadd(m2r, n2i), vsub(m2i, n2r), w2r, w2i, &br, &bi);
            vstore(yr + o + 2 * out_step, br);
            vstore(yi + o + 2 * out_step, bi);
            cmul(vsub(m2r, n2i), vadd(m2i, n2r), w3r, w3i, &br, &bi);
            vstore(yr + o + 3 * out_step, br);
            vstore(yi + o + 3 * out_step, bi);
            cmul(vsub(m1r, n1i), vadd(m1i, n1r), w4r, w4i, &br, &bi);
            vstore(yr + o + 4 * out_step, br);
            vstore(yi + o + 4 * out_step, bi);
        }
    }
}

/* Radix 7, 11 or 13: inputs j and p - j in pairs, t_j = a_j + a_(p-j), d_j = a_j - a_(p-j),
 * then b_r = a_0 + sum_j cos(2 pi j r / p) t_j - i sin(2 pi j r / p) d_j and b_(p-r) the same
 * with + i. */
static void pass_odd(const lr_fft_pass *ps, const float *tw, const float *dft, const float *xr,
                     const float *xi, float *yr, float *yi)
{
    const int p = ps->radix, half = (p - 1) / 2;
    const int64_t m = ps->m, s = ps->s;
    const ptrdiff_t in_step = (ptrdiff_t)(s * m) * ST, out_step = (ptrdiff_t)s * ST;
    vf tr[LR_FFT_MAX_RADIX / 2], ti[LR_FFT_MAX_RADIX / 2], dr[LR_FFT_MAX_RADIX / 2], di[LR_FFT_MAX_RADIX / 2];
    for (int64_t q = 0; q < m; q++) {
        const float *w = tw + 2 * (p - 1) * q;
        ptrdiff_t i = (ptrdiff_t)(s * q) * ST, o = (ptrdiff_t)(s * p * q) * ST;
        for (int64_t k = 0; k < s; k++, i += ST, o += ST) {
            vf a0r = vload(xr + i), a0i = vload(xi + i), sumr = a0r, sumi = a0i;
            for (int j = 1; j <= half; j++) {
                vf ar = vload(xr + i + j * in_step), ai = vload(xi + i + j * in_step);
                vf br = vload(xr + i + (p - j) * in_step), bi = vload(xi + i + (p - j) * in_step);
                tr[j - 1] = vadd(ar, br);
                ti[j - 1] = vadd(ai, bi);
                dr[j - 1] = vsub(ar, br);
                di[j - 1] = vsub(ai, bi);
                sumr = vadd(sumr, tr[j - 1]);
                sumi = vadd(sumi, ti[j - 1]);
            }
            vstore(yr + o, sumr);
            vstore(yi + o, sumi);
            for (int r = 1; r <= half; r++) {
                const float *cs = dft + 2 * half * (r - 1);
                vf mr = a0r, mi = a0i, nr = vzero(), ni = vzero();
                for (int j = 0; j < half; j++) {
                    vf c = vset1(cs[2 * j]), sn = vset1(cs[2 * j + 1]);
                    mr = vfmadd(c, tr[j], mr);
                    mi = vfmadd(c, ti[j], mi);
                    nr = vfmadd(sn, dr[j], nr);
                    ni = vfmadd(sn, di[j], ni);
                }
                vf br, bi;
                cmul(vadd(mr, ni), vsub(mi, nr), vset1(w[2 * (r - 1)]), vset1(w[2 * (r - 1) + 1]), &br, &bi);
                vstore(yr + o + r * out_step, br);
                vstore(yi + o + r * out_step, bi);
                cmul(vsub(mr, ni), vadd(mi, nr), vset1(w[2 * (p - r - 1)]), vset1(w[2 * (p - r - 1) + 1]), &br, &bi);
                vstore(yr + o + (p - r) * out_step, br);
                vstore(yi + o + (p - r) * out_step, bi);
            }
        }
    }
}

/* The inverse swaps real and imaginary parts on the way in and out:
 * IDFT(x) = swap(DFT(swap(x))). */
static float *fft_rows(const lr_fft_steps *st, float *x, float *y, int inverse)
{
    const int re = inverse ? VL : 0, im = inverse ? 0 : VL;
    for (int p = 0; p < st->n_passes; p++) {
        const lr_fft_pass *ps = &st->pass[p];
        const float *tw = st->tw + ps->tw;
        switch (ps->radix) {
        case 2: pass_radix2(ps, tw, x + re, x + im, y + re, y + im); break;
        case 3: pass_radix3(ps, tw, x + re, x + im, y + re, y + im); break;
        case 4: pass_radix4(ps, tw, x + re, x + im, y + re, y + im); break;
        case 5: pass_radix5(ps, tw, x + re, x + im, y + re, y + im); break;
        case 8: pass_radix8(ps, tw, x + re, x + im, y + re, y + im); break;
        default: pass_odd(ps, tw, st->tw + ps->dft, x + re, x + im, y + re, y + im); break;
        }
        float *t = x;
        x = y;
        y = t;
    }
    return x;
}

/* ---- the long convolution's passes (see fft_internal.h and longconv.c) ---- */

static inline vf load_count(const float *p, int64_t count)
{
    return count >= VL ? vload(p) : vload_part(p, count);
}

static void conv_forward(const lr_conv_geom *g, const float *ua, const float *ub, int64_t length,
                         float *work, float *scratch)
{
    const int64_t n1 = g->n1, n2 = g->n2;
    float *x = scratch, *y = scratch + n1 * ST;
    for (int64_t col = 0; col < n2; col += VL) {
        /* Rows n1 of this block of columns, times e^(-i pi n1 / N1) for the odd frequencies. */
        int64_t r = 0;
        for (; r < n1 && r * n2 + col < length; r++) {
            int64_t t = r * n2 + col, count = length - t;
            vf ar = load_count(ua + t, count), ai = ub ? load_count(ub + t, count) : vzero();
            vf br, bi;
            cmul(ar, ai, vset1(g->odd_shift[2 * r]), vset1(g->odd_shift[2 * r + 1]), &br, &bi);
            vstore(x + r * ST, br);
            vstore(x + r * ST + VL, bi);
        }
        for (; r < n1; r++) {
            vstore(x + r * ST, vzero());
            vstore(x + r * ST + VL, vzero());
        }
        const float *f = fft_rows(&g->col, x, y, 0);

        /* Twiddle e^(-2 pi i n2 (k1 + 1/2) / N), then VL x VL tiles transposed into work. */
        const float *tw_block = g->tw_block + 2 * (col / VL) * n1;
        for (int64_t kb = 0; kb < g->blocks; kb++) {
            vf tr[VL], ti[VL];
            for (int i = 0; i < VL; i++) {
                int64_t k1 = kb * VL + i;
                const float *lane = g->tw_lane + k1 * ST;
                vf wr, wi;
                cmul(vload(lane), vload(lane + VL), vset1(tw_block[2 * k1]), vset1(tw_block[2 * k1 + 1]), &wr, &wi);
                cmul(vload(f + k1 * ST), vload(f + k1 * ST + VL), wr, wi, &tr[i], &ti[i]);
            }
            vtranspose(tr);
            vtranspose(ti);
            float *dst = work + (kb * n2 + col) * ST;
            if (g->stream) {
                for (int l = 0; l < VL; l++) {
                    vstore_stream(dst + l * ST, tr[l]);
                    vstore_stream(dst + l * ST + VL, ti[l]);
                }
            } else {
                for (int l = 0; l < VL; l++) {
                    vstore(dst + l * ST, tr[l]);
                    vstore(dst + l * ST + VL, ti[l]);
                }
            }
        }
    }
    if (g->stream)
        vstream_fence();
}

static void conv_spectrum(const lr_conv_geom *g, int64_t b, float *work, float *scratch,
                          const float **out_b, const float **out_mirror)
{
    const int64_t n2 = g->n2, bm = g->blocks - 1 - b;
    *out_b = fft_rows(&g->row, work + b * n2 * ST, scratch, 0);
    *out_mirror = bm == b ? *out_b : fft_rows(&g->row, work + bm * n2 * ST, scratch + n2 * ST, 0);
}

/* z1 and z2 are the spectra at k and at its mirror N - 1 - k (z2 lane-reversed so that lanes
 * line up); with Z = U_a + i U_b, Y(k) = P Z(k) + Q conj(Z(mirror)) is H_a U_a + i H_b U_b. */
static inline void pair_product(float *p1, float *p2, const float *pq, int both)
{
    vf z1r = vload(p1), z1i = vload(p1 + VL);
    vf z2r = vreverse(vload(p2)), z2i = vreverse(vload(p2 + VL));
    vf pr = vload(pq), pi = vload(pq + VL), qr = vload(pq + 2 * VL), qi = vload(pq + 3 * VL);
    vf y1r, y1i, y2r, y2i, tr, ti;
    cmul(pr, pi, z1r, z1i, &y1r, &y1i);
    cmul_conj(qr, qi, z2r, z2i, &tr, &ti);
    y1r = vadd(y1r, tr);
    y1i = vadd(y1i, ti);
    if (both) {
        cmul_conj(z2r, z2i, pr, pi, &y2r, &y2i);
        cmul(qr, qi, z1r, z1i, &tr, &ti);
        vstore(p2, vreverse(vadd(y2r, tr)));
        vstore(p2 + VL, vreverse(vsub(y2i, ti)));
    }
    vstore(p1, y1r);
    vstore(p1 + VL, y1i);
}

static void conv_multiply(const lr_conv_geom *g, int64_t b, const float *spectrum, float *work,
                          float *scratch)
{
    const int64_t n2 = g->n2, bm = g->blocks - 1 - b;
    float *xb = work + b * n2 * ST, *xm = work + bm * n2 * ST;
    float *yb = scratch, *ym = scratch + n2 * ST;
    float *fb = fft_rows(&g->row, xb, yb, 0);
    float *fm = bm == b ? fb : fft_rows(&g->row, xm, ym, 0);
    const float *pq = spectrum + b * n2 * 2 * ST;
    if (bm != b) {
        for (int64_t k2 = 0; k2 < n2; k2++)
            pair_product(fb + k2 * ST, fm + (n2 - 1 - k2) * ST, pq + k2 * 2 * ST, 1);
    } else {
        /* The middle block is its own mirror: visit each pair of rows once. */
        for (int64_t k2 = 0; k2 <= n2 - 1 - k2; k2++)
            pair_product(fb + k2 * ST, fb + (n2 - 1 - k2) * ST, pq + k2 * 2 * ST, k2 != n2 - 1 - k2);
    }
    /* The forward and inverse FFTs have the same number of passes, so the result is back in
     * work whichever buffer the product sat in. */
    fft_rows(&g->row, fb, fb == xb ? yb : xb, 1);
    if (bm != b)
        fft_rows(&g->row, fm, fm == xm ? ym : xm, 1);
}

static void conv_inverse(const lr_conv_geom *g, const float *work, int64_t length, float *ya,
                         float *yb, float *scratch)
{
    const int64_t n1 = g->n1, n2 = g->n2;
    float *x = scratch, *y = scratch + n1 * ST;
    /* Large outputs go around the caches too, where the vectors line up with them. */
    const uintptr_t misaligned = (uintptr_t)ya | (yb ? (uintptr_t)yb : 0);
    const int stream = g->stream && misaligned % (VL * sizeof(float)) == 0;
    for (int64_t col = 0; col < n2 && col < length; col += VL) {
        const float *tw_block = g->tw_block + 2 * (col / VL) * n1;
        for (int64_t kb = 0; kb < g->blocks; kb++) {
            vf tr[VL], ti[VL];
            const float *src = work + (kb * n2 + col) * ST;
            if (kb + PREFETCH_TILES < g->blocks)
                for (int l = 0; l < VL * ST; l += 16) /* one 64-byte line each */
                    __builtin_prefetch(src + PREFETCH_TILES * n2 * ST + l);
            for (int l = 0; l < VL; l++) {
                tr[l] = vload(src + l * ST);
                ti[l] = vload(src + l * ST + VL);
            }
            vtranspose(tr);
            vtranspose(ti);
            for (int i = 0; i < VL; i++) {
                int64_t k1 = kb * VL + i;
                const float *lane = g->tw_lane + k1 * ST;
                vf wr, wi, zr, zi;
                cmul(vload(lane), vload(lane + VL), vset1(tw_block[2 * k1]), vset1(tw_block[2 * k1 + 1]), &wr, &wi);
                cmul_conj(tr[i], ti[i], wr, wi, &zr, &zi);
                vstore(x + k1 * ST, zr);
                vstore(x + k1 * ST + VL, zi);
            }
        }
        const float *f = fft_rows(&g->col, x, y, 1);
        for (int64_t r = 0; r < n1 && r * n2 + col < length; r++) {
            int64_t t = r * n2 + col, count = length - t;
            vf zr, zi;
            cmul_conj(vload(f + r * ST), vload(f + r * ST + VL), vset1(g->odd_shift[2 * r]),
                      vset1(g->odd_shift[2 * r + 1]), &zr, &zi);
            if (count >= VL && stream) {
                vstore_stream(ya + t, zr);
                if (yb)
                    vstore_stream(yb + t, zi);
            } else if (count >= VL) {
                vstore(ya + t, zr);
                if (yb)
                    vstore(yb + t, zi);
            } else {
                vstore_part(ya + t, zr, count);
                if (yb)
                    vstore_part(yb + t, zi, count);
            }
        }
    }
    if (stream)
        vstream_fence();
}

const lr_fft_kernels FFT_KERNELS_NAME = {
    .lanes = VL,
    .radix8 = VL >= 16, /* a radix-8 butterfly needs 32 vector registers */
    .fft = fft_rows,
    .conv_forward = conv_forward,
    .conv_multiply = conv_multiply,
    .conv_inverse = conv_inverse,
    .conv_spectrum = conv_spectrum,
};
