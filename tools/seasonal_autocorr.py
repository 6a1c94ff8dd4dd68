#!/usr/bin/python3
"""The weight-free forecaster of timeseries-forecast ("seasonal-autocorr"), written again from
its definition in numpy (float64), independently of the C code: the reference its tests
compare with, and the tool that wrote models/seasonal-autocorr.safetensors and measured it.

    /usr/bin/python3 tools/seasonal_autocorr.py model models/seasonal-autocorr.safetensors
    /usr/bin/python3 tools/seasonal_autocorr.py fixtures        (tests/fixtures/timeseries)
    /usr/bin/python3 tools/seasonal_autocorr.py ett ../shared/data/timeseries/ETDataset/ETTh1.csv

`ett` scores it on ETTh1 with the papers' protocol (first 20 months; 12/4/4 months train,
validation, test; standardised with the training split's mean and deviation; every window of
the split, stride 1; horizon 96, multivariate) next to last-value and seasonal-naive.

The definition (see cmd/timeseries-forecast/seasonal.c): on the last seq_len steps, each
channel standardised by the window's mean and deviation; seasonal part = x - moving average
(kernel 25, ends repeated); R(tau) = mean over channels of sum_t s[(t+tau) mod L] s[t] / L;
the top (int)(factor ln L) delays in [min_lag, L/2] (ties to the shorter), softmax(R) weights;
forecast = mean of the last p* steps + sum_j w_j (last cycle of period p_j, centred).
"""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULTS = {"seq_len": 720, "moving_avg": 25, "factor": 3.0, "min_lag": 2}


def decompose(x, k):
    h = (k - 1) // 2
    padded = np.concatenate([np.repeat(x[:1], h, 0), x, np.repeat(x[-1:], h, 0)])
    sums = np.cumsum(np.concatenate([np.zeros((1, x.shape[1])), padded]), 0)
    trend = (sums[k:] - sums[:-k]) / k
    return x - trend


def forecast(x, horizon, seq_len=720, moving_avg=25, factor=3.0, min_lag=2):
    """x: [steps, channels] -> [horizon, channels]."""
    x = np.asarray(x, np.float64)[-seq_len:]
    L, C = x.shape
    mean = x.mean(0)
    sd = x.std(0)
    sd = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(mean)), sd, 1.0)
    z = (x - mean) / sd
    s = decompose(z, moving_avg)
    top_k = int(factor * math.log(L))
    delays = []
    if top_k >= 1 and min_lag <= L // 2:
        # circular autocorrelation through numpy's FFT, averaged over channels
        S = np.fft.rfft(s, axis=0)
        R = np.fft.irfft(S * np.conj(S), n=L, axis=0).mean(1) / L
        candidates = list(range(min_lag, L // 2 + 1))
        candidates.sort(key=lambda tau: (-R[tau], tau))
        delays = candidates[:top_k]
    out = np.zeros((horizon, C))
    pstar = delays[0] if delays else 1
    level = z[L - pstar:].mean(0)
    if delays:
        w = np.exp(R[delays] - R[delays[0]])
        w /= w.sum()
        h = np.arange(horizon)
        for wj, p in zip(w, delays):
            cycle = s[L - p:]
            out += wj * (cycle[h % p] - cycle.mean(0))
    return (level + out) * sd + mean


def write_model(path):
    meta = {"arch": "seasonal-autocorr", "seq_len": "720", "moving_avg": "25", "factor": "3",
            "min_lag": "2",
            "description": "weight-free: series decomposition + auto-correlation periods "
                           "(Autoformer's mechanics), seasonal and level extrapolation"}
    st.save(path, {}, meta)


def synthetic(steps, channels, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    x = (10 + 0.01 * t + 3 * np.sin(2 * np.pi * t / 24 + np.arange(channels))
         + np.cos(2 * np.pi * t / 7) + 0.3 * rng.standard_normal((steps, channels)))
    return x


def write_fixtures():
    out = os.path.join(ROOT, "tests", "fixtures", "timeseries")
    os.makedirs(out, exist_ok=True)
    x = synthetic(300, 3, 1)
    # hourly wide table
    with open(os.path.join(out, "hourly.csv"), "w") as f:
        f.write("date,a,b,c\n")
        for i, row in enumerate(x):
            day, hour = divmod(i, 24)
            f.write("2020-01-%02d %02d:00:00,%s\n" % (1 + day, hour, ",".join("%.6f" % v for v in row)))
    xs = np.array([[float("%.6f" % v) for v in row] for row in x])
    fc = forecast(xs, 48)
    with open(os.path.join(out, "hourly.expected.csv"), "w") as f:
        f.write("a,b,c\n")
        for row in fc:
            f.write(",".join("%.9g" % v for v in row) + "\n")


def ett(path, horizon=96, seq_len=720):
    d = np.genfromtxt(path, delimiter=",", skip_header=1)[:, 1:][:14400]
    train = d[:8640]
    z = (d - train.mean(0)) / train.std(0)
    splits = {"validation": (8640, 11520), "test": (11520, 14400)}

    def last_value(x):
        return np.repeat(x[-1:], horizon, 0)

    def seasonal_naive(x, m=24):
        return np.tile(x[-m:], (math.ceil(horizon / m), 1))[:horizon]

    for split, (lo, hi) in splits.items():
        for name, fn, need in [("last-value", last_value, 1), ("seasonal-naive-24", seasonal_naive, 24),
                               ("seasonal-autocorr", lambda x: forecast(x, horizon, seq_len), seq_len)]:
            se = ae = n = 0
            for s in range(lo - need, hi - need - horizon + 1):
                x, y = z[s:s + need], z[s + need:s + need + horizon]
                f = fn(x)
                se += ((f - y) ** 2).sum()
                ae += np.abs(f - y).sum()
                n += y.size
            print("%s\t%s\tMSE %.4f\tMAE %.4f" % (split, name, se / n, ae / n), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "model":
        write_model(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "fixtures":
        write_fixtures()
    elif len(sys.argv) >= 3 and sys.argv[1] == "ett":
        ett(sys.argv[2])
    else:
        sys.exit(__doc__)
