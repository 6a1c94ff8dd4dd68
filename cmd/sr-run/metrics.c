/* PSNR and SSIM (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

enum { WINDOW = 11 };

double sr_psnr(const float *a, const float *b, int h, int w, int crop)
{
    if (h - 2 * crop < 1 || w - 2 * crop < 1)
        return NAN;
    double sum = 0;
    for (int y = crop; y < h - crop; y++)
        for (int x = crop; x < w - crop; x++) {
            double d = (double)a[(int64_t)y * w + x] - b[(int64_t)y * w + x];
            sum += d * d;
        }
    double mse = sum / ((double)(h - 2 * crop) * (w - 2 * crop));
    return mse == 0 ? INFINITY : 10.0 * log10(255.0 * 255.0 / mse);
}

/* The horizontal pass of the five moments (a, b, a^2, b^2, ab) for one row: out[k][x] for the
 * window starting at column x. */
static void row_moments(const float *a, const float *b, int n_out, const double *g, double *out)
{
    for (int x = 0; x < n_out; x++) {
        double m[5] = {0, 0, 0, 0, 0};
        for (int k = 0; k < WINDOW; k++) {
            double u = a[x + k], v = b[x + k];
            m[0] += g[k] * u;
            m[1] += g[k] * v;
            m[2] += g[k] * u * u;
            m[3] += g[k] * v * v;
            m[4] += g[k] * u * v;
        }
        for (int i = 0; i < 5; i++)
            out[(int64_t)i * n_out + x] = m[i];
    }
}

double sr_ssim(const float *a, const float *b, int h, int w, int crop)
{
    const int ch = h - 2 * crop, cw = w - 2 * crop;
    if (ch < WINDOW || cw < WINDOW)
        return NAN;
    double g[WINDOW], total = 0;
    for (int k = 0; k < WINDOW; k++) {
        double d = k - (WINDOW - 1) / 2.0;
        g[k] = exp(-d * d / (2 * 1.5 * 1.5));
        total += g[k];
    }
    for (int k = 0; k < WINDOW; k++)
        g[k] /= total; /* the 2-D window is the outer product, so it sums to 1 as well */
    const int oh = ch - WINDOW + 1, ow = cw - WINDOW + 1;
    double *rows = malloc((size_t)WINDOW * 5 * (size_t)ow * sizeof *rows);
    if (!rows)
        return NAN;
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
    double sum = 0;
    for (int y = 0; y < ch; y++) {
        const int64_t at = (int64_t)(y + crop) * w + crop;
        row_moments(a + at, b + at, ow, g, rows + (int64_t)(y % WINDOW) * 5 * ow);
        if (y < WINDOW - 1)
            continue;
        const int top = y - (WINDOW - 1);
        for (int x = 0; x < ow; x++) {
            double m[5] = {0, 0, 0, 0, 0};
            for (int k = 0; k < WINDOW; k++) {
                const double *r = rows + (int64_t)((top + k) % WINDOW) * 5 * ow + x;
                for (int i = 0; i < 5; i++)
                    m[i] += g[k] * r[(int64_t)i * ow];
            }
            double mu1 = m[0], mu2 = m[1];
            double s11 = m[2] - mu1 * mu1, s22 = m[3] - mu2 * mu2, s12 = m[4] - mu1 * mu2;
            sum += (2 * mu1 * mu2 + c1) * (2 * s12 + c2) /
                   ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2));
        }
    }
    free(rows);
    return sum / ((double)oh * ow);
}
