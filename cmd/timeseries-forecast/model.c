/* Model files to forecasting models: the metadata's "arch" picks the implementation. */
#include <string.h>

#include "forecast.h"

lr_status ts_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out)
{
    static const struct {
        const char *arch;
        lr_status (*open)(lr_ctx *, const lr_model *, ts_model **);
    } archs[] = {
        {"seasonal-autocorr", seasonal_model_open},
        {"autoformer", autoformer_model_open},
        {"informer", informer_model_open},
    };
    const char *arch = lr_model_meta(file, "arch");
    for (size_t i = 0; arch && i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(arch, archs[i].arch) == 0)
            return archs[i].open(ctx, file, out);
    return lr_fail(ctx, LR_ERR_MODEL, "%s: %s%s%s is not a forecasting model (known: seasonal-autocorr, autoformer, informer)",
                   lr_model_path(file), arch ? "arch '" : "no arch in the metadata",
                   arch ? arch : "", arch ? "'" : "");
}

void ts_model_destroy(ts_model *m)
{
    if (m)
        m->destroy(m);
}
