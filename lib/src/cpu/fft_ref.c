/* The portable FFT kernels: one lane of plain floats. They serve the general real FFT
 * (fft.c) at every CPU level and the long convolution at LR_CPU_REF. */
#include "fft_internal.h"

typedef float vf;
#define VL 1

static inline vf vload(const float *p) { return *p; }
static inline void vstore(float *p, vf v) { *p = v; }
static inline vf vset1(float x) { return x; }
static inline vf vzero(void) { return 0.0f; }
static inline vf vadd(vf a, vf b) { return a + b; }
static inline vf vsub(vf a, vf b) { return a - b; }
static inline vf vmul(vf a, vf b) { return a * b; }
static inline vf vfmadd(vf a, vf b, vf c) { return a * b + c; }
static inline vf vfmsub(vf a, vf b, vf c) { return a * b - c; }
static inline vf vfnmadd(vf a, vf b, vf c) { return c - a * b; }
/* With one lane a partial count is never asked for. */
static inline vf vload_part(const float *p, int64_t n) { return n > 0 ? *p : 0.0f; }
static inline void vstore_part(float *p, vf v, int64_t n)
{
    if (n > 0)
        *p = v;
}
static inline void vstore_stream(float *p, vf v) { *p = v; }
static inline void vstream_fence(void) {}
static inline vf vreverse(vf v) { return v; }
static inline void vtranspose(vf *r) { (void)r; }

#define FFT_KERNELS_NAME lr_fft_kernels_ref
#include "fft_kernels.h"
