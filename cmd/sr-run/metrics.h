/* Image-quality metrics as the super-resolution literature reports them (and BasicSR and
 * MATLAB compute them), on one plane of h x w values in 0..255, typically the studio-range
 * BT.601 luma (image_luma_studio * 255), after cropping `crop` pixels from every side. Sums in
 * double; tools/sr_metrics_fixture.py is an independent numpy version. */
#ifndef SR_RUN_METRICS_H
#define SR_RUN_METRICS_H

/* 10 log10(255^2 / MSE); +inf for identical planes, NaN when the crop leaves nothing. */
double sr_psnr(const float *a, const float *b, int h, int w, int crop);

/* SSIM (Wang, Bovik, Sheikh, Simoncelli 2004): an 11x11 Gaussian window (sigma 1.5, weights
 * summing to 1) at every position where it fits inside the cropped plane (no padding);
 * C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; the mean of the SSIM map. NaN when the cropped
 * plane is smaller than the window. Memory: 11 rows of window sums, not the whole map. */
double sr_ssim(const float *a, const float *b, int h, int w, int crop);

#endif
