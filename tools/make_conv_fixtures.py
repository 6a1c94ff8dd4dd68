"""Writes tests/fixtures/conv/*.safetensors: small PyTorch Conv2d, ConvTranspose2d and
pixel_shuffle cases that pin libcore's conv.h definitions to PyTorch's (test_conv.c checks them
within 1e-5).

Each file holds `input` [cin, h, w], `weight` (PyTorch's layout), `bias` (optional) and
`output` [cout, ho, wo], all float32, and the desc in its metadata: op (conv2d,
conv_transpose2d or pixel_shuffle), stride_h/w, pad_h/w (symmetric, PyTorch's `padding`),
dil_h/w, out_pad_h/w, groups, upscale.

    /usr/bin/python3 tools/make_conv_fixtures.py   # from the repository root
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from longrange import safetensors as st  # noqa: E402

OUT_DIR = os.path.join("tests", "fixtures", "conv")


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_case(name, cin, cout, hw, k, stride=1, padding=0, dilation=1, groups=1, bias=True,
              transposed=False, output_padding=0):
    h, w = hw
    x = torch.randn(1, cin, h, w)
    if transposed:
        m = torch.nn.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, groups, bias, dilation)
    else:
        m = torch.nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, bias)
    with torch.no_grad():
        y = m(x)
    s, p, d, op = pair(stride), pair(padding), pair(dilation), pair(output_padding)
    meta = {"op": "conv_transpose2d" if transposed else "conv2d",
            "stride_h": str(s[0]), "stride_w": str(s[1]), "pad_h": str(p[0]), "pad_w": str(p[1]),
            "dil_h": str(d[0]), "dil_w": str(d[1]), "out_pad_h": str(op[0]), "out_pad_w": str(op[1]),
            "groups": str(groups)}
    tensors = {"input": x[0].numpy(), "weight": m.weight.detach().numpy(), "output": y[0].numpy()}
    if bias:
        tensors["bias"] = m.bias.detach().numpy()
    save(name, tensors, meta)


def save(name, tensors, meta):
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    st.save(os.path.join(OUT_DIR, name + ".safetensors"), tensors, meta)


def main():
    torch.manual_seed(2024)
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    conv_case("conv_basic", 3, 5, (7, 9), 3, padding=1)
    conv_case("conv_stride2_pad", 4, 6, (9, 8), (5, 3), stride=2, padding=(2, 1))
    conv_case("conv_dilation", 3, 4, (11, 10), 3, padding=(2, 3), dilation=(2, 3))
    conv_case("conv_groups", 6, 4, (6, 7), 3, stride=(1, 2), padding=1, groups=2)
    conv_case("conv_depthwise", 8, 8, (9, 10), 5, padding=2, groups=8)
    conv_case("conv_1x1", 16, 12, (5, 6), 1, bias=False)
    conv_case("convt_k2s2", 16, 8, (4, 5), 2, stride=2, transposed=True)
    conv_case("convt_k4s2p1", 6, 5, (5, 4), 4, stride=2, padding=1, transposed=True)
    conv_case("convt_outpad", 4, 6, (4, 5), 3, stride=2, padding=1, output_padding=1, groups=2,
              transposed=True)
    x = torch.randn(1, 12, 3, 4)
    save("pixel_shuffle", {"input": x[0].numpy(), "output": torch.nn.functional.pixel_shuffle(x, 2)[0].numpy()},
         {"op": "pixel_shuffle", "upscale": "2"})


if __name__ == "__main__":
    main()
