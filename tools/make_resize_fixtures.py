#!/usr/bin/python3
"""Writes the PyTorch parity fixtures of lr_resize (tests/unit/test_resize.c):

    /usr/bin/python3 tools/make_resize_fixtures.py      (from the repository root)

tests/fixtures/resize/<case>.safetensors holds
    in   F32 [C, H_in, W_in]     seeded uniform values in [0, 1)
    out  F32 [C, H_out, W_out]   torch.nn.functional.interpolate(in[None], size=(H_out, W_out),
                                 mode=filter, align_corners=False, antialias=...)[0]
with metadata filter ("bilinear" | "bicubic"), antialias ("0" | "1") and cubic_a: the Keys
parameter PyTorch uses, -0.75 for plain bicubic and -0.5 for antialiased bicubic (PyTorch 1.13's
_upsample_bicubic2d_aa, like PIL). Computed in float64 so the fixture is the definition, not
PyTorch's float32 rounding. Antialiased cases are downscales along at least one axis; along an
axis that is upscaled PyTorch's antialiased bicubic cuts the kernel at the border instead of
replicating the border pixel, which lr_resize does not do (resize.h), so those cases keep
bicubic antialias to axes that shrink or stay.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "resize")

# name, C, H_in, W_in, H_out, W_out, filter, antialias
CASES = [
    ("bilinear_up", 3, 7, 9, 16, 20, "bilinear", False),
    ("bilinear_down", 1, 17, 23, 6, 10, "bilinear", False),
    ("bilinear_mixed", 2, 5, 30, 13, 7, "bilinear", False),
    ("bicubic_up", 3, 6, 8, 13, 19, "bicubic", False),
    ("bicubic_down", 4, 19, 21, 7, 8, "bicubic", False),
    ("bicubic_row", 1, 1, 12, 1, 29, "bicubic", False),
    ("bilinear_aa_down", 3, 24, 31, 7, 9, "bilinear", True),
    ("bilinear_aa_mixed", 1, 9, 40, 20, 11, "bilinear", True),
    ("bicubic_aa_down", 3, 25, 33, 8, 10, "bicubic", True),
    ("bicubic_aa_same_h", 2, 10, 41, 10, 13, "bicubic", True),
]


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261128)
    for name, c, hi, wi, ho, wo, mode, aa in CASES:
        x = rng.random((c, hi, wi)).astype(np.float32)
        y = F.interpolate(torch.from_numpy(x).double()[None], size=(ho, wo), mode=mode,
                          align_corners=False, antialias=aa)[0]
        a = -0.5 if aa else -0.75
        meta = {"filter": mode, "antialias": "1" if aa else "0", "cubic_a": repr(a)}
        st.save(os.path.join(OUT, name + ".safetensors"),
                {"in": x, "out": y.float().numpy()}, meta)
        print(name, tuple(y.shape))


if __name__ == "__main__":
    main()
