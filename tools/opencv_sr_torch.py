#!/usr/bin/python3
"""An independent PyTorch implementation of the OpenCV dnn_superres FSRCNN and ESPCN graphs,
reading the safetensors files tools/convert_opencv_sr.py writes (the C side is
cmd/sr-run/fsrcnn.c and espcn.c).

    /usr/bin/python3 tools/opencv_sr_torch.py fixtures        # tests/fixtures/opencv-sr/
    /usr/bin/python3 tools/opencv_sr_torch.py bench -m models/fsrcnn-x2.safetensors \
        --size 512 --threads 2

The graphs, as the TensorFlow frozen graphs spell them (NHWC there, NCHW here):
  FSRCNN: conv kxk 1->d, PReLU; conv 1x1 d->s, PReLU; m x (conv 3x3 s->s, PReLU);
          conv 1x1 s->d, PReLU; conv kxk d->r*r (no bias); DepthToSpace(r); + bias (1 value)
  ESPCN:  conv 5x5 1->c1, ReLU; conv 3x3 c1->c2, ReLU; conv 3x3 c2->r*r + bias;
          DepthToSpace(r); tanh
every convolution with TF SAME padding (total k-1, the odd extra row/column at the
bottom/right). Input: [1][h][w] luma 0..1; output [1][h*r][w*r] unclamped. The file's last
convolution is already in pixel_shuffle channel order.

`fixtures` writes a 23x17 16-bit grey PNG (input.png; the program reads grey as luma v/65535)
and <model>.npy, the float64 result stored as float32 [1, 23*r, 17*r], for each shipped model,
and bad-shape.safetensors (fsrcnn-small-x2 with f3 left in HWIO order: the loader must refuse it).
`bench` prints "pytorch <model> <h>x<w> <n> threads = X MP/s" (output megapixels per second,
float32, best of a few runs).
"""

import argparse
import os
import struct
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["fsrcnn-x2", "fsrcnn-x4", "fsrcnn-small-x2", "espcn-x2", "espcn-x4"]


def load(path, dtype):
    import torch
    tensors, meta = st.load(path)
    return {k: torch.from_numpy(np.asarray(v)).to(dtype) for k, v in tensors.items()}, meta


def conv_same(x, w, b):
    """TF SAME, stride 1: pad (k-1)//2 before and the rest after, in each axis."""
    import torch.nn.functional as F
    kh, kw = w.shape[2], w.shape[3]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    x = F.pad(x, (left, kw - 1 - left, top, kh - 1 - top))
    return F.conv2d(x, w, b)


def forward(t, meta, x):
    """x: [1, 1, h, w] -> [1, 1, h*r, w*r]."""
    import torch
    import torch.nn.functional as F
    r = int(meta["scale"])
    if meta["arch"] == "fsrcnn":
        n = int(meta["m"]) + 4
        for i in range(1, n):
            x = F.prelu(conv_same(x, t["f%d" % i], t["b%d" % i]), t["alpha%d" % i])
        x = F.pixel_shuffle(conv_same(x, t["f%d" % n], None), r)
        return x + t["b%d" % n].view(1, -1, 1, 1)
    if meta["arch"] == "espcn":
        x = torch.relu(conv_same(x, t["f1"], t["b1"]))
        x = torch.relu(conv_same(x, t["f2"], t["b2"]))
        return torch.tanh(F.pixel_shuffle(conv_same(x, t["f3"], t["b3"]), r))
    raise SystemExit("opencv_sr_torch: arch %r is neither fsrcnn nor espcn" % meta["arch"])


def png_grey16(path, img):
    """img: uint16 [h][w] -> a 16-bit greyscale PNG (filter 0 on every row)."""
    h, w = img.shape
    raw = b"".join(b"\0" + img[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def npy_f32(path, a):
    a = np.ascontiguousarray(a, dtype="<f4")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(a.shape),)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + a.tobytes())


def fixture_image(h=23, w=17):
    """Edges, a gradient and noise, so every layer sees structure, spanning the full range."""
    rng = np.random.default_rng(20261128)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.5 + 0.35 * np.sin(xx * 0.7 + yy * 0.3) + 0.1 * (xx + yy > 20) + 0.05 * rng.standard_normal((h, w))
    img[0:3, 0:3] = 1.0
    img[-2:, -3:] = 0.0
    return np.round(np.clip(img, 0, 1) * 65535).astype(np.uint16)


def cmd_fixtures(args):
    import torch
    torch.set_num_threads(1)
    out = os.path.join(ROOT, "tests", "fixtures", "opencv-sr")
    os.makedirs(out, exist_ok=True)
    img = fixture_image()
    png_grey16(os.path.join(out, "input.png"), img)
    x = torch.from_numpy(img.astype(np.float64) / 65535.0).view(1, 1, *img.shape)
    for name in MODELS:
        t, meta = load(os.path.join(ROOT, "models", name + ".safetensors"), torch.float64)
        with torch.no_grad():
            y = forward(t, meta, x)[0].numpy()
        npy_f32(os.path.join(out, name + ".npy"), y)
        print("%s: %s, range %.4f..%.4f" % (name, list(y.shape), y.min(), y.max()))
    # A converter mistake the loader must catch: f3 left in TF's HWIO order (same byte count).
    tensors, meta = st.load(os.path.join(ROOT, "models", "fsrcnn-small-x2.safetensors"))
    tensors["f3"] = np.ascontiguousarray(np.transpose(tensors["f3"], (2, 3, 1, 0)))
    meta["description"] = "broken on purpose: f3 has shape [3, 3, 5, 5] instead of [5, 5, 3, 3]"
    st.save(os.path.join(out, "bad-shape.safetensors"), tensors, meta)


def cmd_bench(args):
    import torch
    torch.set_num_threads(args.threads)
    t, meta = load(args.model, torch.float32)
    r = int(meta["scale"])
    x = torch.rand(1, 1, args.size, args.size, generator=torch.Generator().manual_seed(1))
    best = float("inf")
    with torch.no_grad():
        forward(t, meta, x)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            forward(t, meta, x)
            best = min(best, time.perf_counter() - t0)
    mp = args.size * args.size * r * r / 1e6
    name = os.path.basename(args.model).replace(".safetensors", "")
    print("pytorch %s %dx%d %d threads = %.2f MP/s" % (name, args.size, args.size, args.threads,
                                                       mp / best))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fixtures", help="write tests/fixtures/opencv-sr/")
    b = sub.add_parser("bench", help="PyTorch float32 megapixels/s")
    b.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "fsrcnn-x2.safetensors"))
    b.add_argument("--size", type=int, default=512, help="input height and width")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    {"fixtures": cmd_fixtures, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
