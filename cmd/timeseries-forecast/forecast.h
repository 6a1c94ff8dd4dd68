/* timeseries-forecast: what a forecasting model offers the program. A model is opened from a
 * model file (its metadata "arch" picks the implementation) and forecasts windows of
 * time-major values, [steps][channels], in the data's own units (a trained model applies the
 * normalisation it was trained with itself). */
#ifndef TS_FORECAST_H
#define TS_FORECAST_H

#include <stdint.h>

#include "longrange/core.h"
#include "longrange/model.h"
#include "series.h"

/* The dates of a window: time[t] for each of its steps, and the step that dates the
 * horizon (step h of the forecast falls on series_step_advance(step, time[steps - 1], h + 1)).
 * season: the data's natural cycle in steps (24 for hourly data, 1 when it has none). */
typedef struct {
    const int64_t *time;
    series_step step;
    int64_t season;
} ts_calendar;

typedef struct ts_model ts_model;

struct ts_model {
    const char *arch;     /* "seasonal-autocorr", "autoformer", ... */
    int64_t seq_len;      /* history it looks at: the last seq_len steps of what it is given */
    int64_t min_history;  /* fewest steps it can forecast from */
    int64_t pred_len;     /* the horizon it was trained for (the default -H); 0: none */
    /* A trained model's input: its value columns in order (comma-separated) and feature mode
     * ("M", "S" or "MS", with the target column for S and MS). NULL: any table. */
    const char *columns, *features, *target;
    /* out[h][k] for h < horizon from x[t][c], t < steps (steps >= min_history; only the last
     * seq_len are used). channels: as given by the program (the model's columns when it has
     * them); k < out_channels, which is 1 for S and MS and channels otherwise. A model with a
     * fixed pred_len may refuse a longer horizon. */
    lr_status (*forecast)(lr_ctx *ctx, ts_model *m, int64_t steps, int64_t channels,
                          const float *x, const ts_calendar *cal, int64_t horizon, float *out);
    /* Optional (NULL: the program calls forecast once per window): `windows` forecasts at
     * once, all from the same series x [steps][channels] and calendar; window w forecasts from
     * the history x[0, origins[w]) (each origins[w] >= min_history) into
     * out + w * horizon * out_channels, laid out as forecast's out. A window's result does
     * not depend on the batch it is in: it equals forecast(origins[w], ...) to the bit. */
    lr_status (*forecast_batch)(lr_ctx *ctx, ts_model *m, int64_t windows, const int64_t *origins,
                                int64_t channels, const float *x, const ts_calendar *cal, int64_t horizon,
                                float *out);
    void (*destroy)(ts_model *m);
};

/* The implementation the file's "arch" names. LR_ERR_MODEL (with the reason in ctx) for an
 * unknown arch or bad hyper-parameters. */
lr_status ts_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out);
void ts_model_destroy(ts_model *m);

/* The implementations. */
lr_status seasonal_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out);
lr_status autoformer_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out);
lr_status informer_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out);

#endif
