#!/usr/bin/python3
"""Writes the PyTorch parity fixtures of lr_temporal_attention (tests/unit/test_temporal.c):

    /usr/bin/python3 tools/make_temporal_fixtures.py      (from the repository root)

tests/fixtures/temporal/<case>.safetensors holds q, k, v and out, F32 [F, P, C], with metadata
heads, window, stride and scale. out is the frame-token attention of AnimateDiff's motion
module ((b f) (h w) c -> (b h w) f c, heads split from c) computed with torch.softmax in float64,
and, for window < F, FreeNoise's fusion: windows [t, t + w) for t = 0, s, 2s, ... (plus one
ending at F when they stop short), each output added with the triangular weights
[1, 2, ..., w/2, w/2, ..., 1] and divided by the summed weights.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "temporal")

# name, F, P, C, heads, window, stride, scale (0: 1/sqrt(d))
CASES = [
    ("full", 16, 5, 24, 3, 0, 0, 0.0),
    ("freenoise", 24, 3, 16, 2, 16, 4, 0.0),
    ("uneven", 21, 4, 8, 1, 8, 3, 0.0),
    ("odd_window", 12, 2, 12, 3, 5, 2, 0.7),
    ("one_frame", 1, 3, 4, 2, 0, 0, 0.0),
]


def attention(q, k, v, heads, scale):
    """q, k, v [f, P, C] -> [f, P, C]: every pixel's frames attend to each other."""
    f, P, C = q.shape
    d = C // heads

    def split(x):  # [f, P, C] -> [P * heads, f, d]
        return x.reshape(f, P, heads, d).permute(1, 2, 0, 3).reshape(P * heads, f, d)

    s = torch.bmm(split(q), split(k).transpose(1, 2)) * scale
    o = torch.bmm(torch.softmax(s, dim=-1), split(v))
    return o.reshape(P, heads, f, d).permute(2, 0, 1, 3).reshape(f, P, C)


def fused(q, k, v, heads, window, stride, scale):
    F_ = q.shape[0]
    if window == 0 or window >= F_:
        return attention(q, k, v, heads, scale)
    starts = list(range(0, F_ - window + 1, stride))
    if starts[-1] + window < F_:
        starts.append(F_ - window)
    weight = torch.tensor([min(i + 1, window - i) for i in range(window)], dtype=q.dtype)
    value = torch.zeros_like(q)
    count = torch.zeros(F_, 1, 1, dtype=q.dtype)
    for t in starts:
        o = attention(q[t:t + window], k[t:t + window], v[t:t + window], heads, scale)
        value[t:t + window] += o * weight[:, None, None]
        count[t:t + window] += weight[:, None, None]
    return value / count


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261128)
    for name, F_, P, C, heads, window, stride, scale in CASES:
        q, k, v = (rng.standard_normal((F_, P, C)).astype(np.float32) for _ in range(3))
        s = scale if scale > 0 else 1.0 / np.sqrt(C // heads)
        out = fused(*(torch.from_numpy(x).double() for x in (q, k, v)), heads, window, stride, s)
        st.save(os.path.join(OUT, name + ".safetensors"),
                {"q": q, "k": k, "v": v, "out": out.float().numpy()},
                metadata={"heads": str(heads), "window": str(window), "stride": str(stride),
                          "scale": repr(scale)})
        print(name, tuple(q.shape))


if __name__ == "__main__":
    main()
