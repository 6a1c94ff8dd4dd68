#!/usr/bin/python3
"""ESRGAN-slim (idealo RDN) and Real-ESRGAN SRVGGNetCompact in PyTorch: the independent
references for sr-run's cmd/sr-run/rdn.c and cmd/sr-run/srvgg.c, their parity fixtures and
their speed comparison. Both read our model files (tools/convert_esrgan_slim.py,
tools/convert_ncnn_srvgg.py).

  * RDN: written from idealo/image-super-resolution (ISR/models/rdn.py) as the Keras graph in
    UpscalerJS's model.json shows it: 'same' zero-padded convs, ReLU, channel concats, adds,
    nearest UpSampling2D by the scale before the last 3x3 conv; pixels in 0..255
    (metadata value_range), so the net sees 255 * x and its output is divided by 255.
  * SRVGG: xinntao/Real-ESRGAN realesrgan/archs/srvgg_arch.py, same module names (a body
    ModuleList of Conv2d/PReLU, PixelShuffle), so load_state_dict(strict=True) checks our
    tensor names; output = pixel_shuffle(body(x)) + nearest-upsampled x, in 0..1.

    /usr/bin/python3 tools/esrgan_torch.py fixtures [--out tests/fixtures/esrgan]
    /usr/bin/python3 tools/esrgan_torch.py upscalerjs [--data ../shared/data/sr/upscalerjs-fixture]
    /usr/bin/python3 tools/esrgan_torch.py run MODEL IN.png OUT.npy
    /usr/bin/python3 tools/esrgan_torch.py bench MODEL [--size 256] [--threads 2] [--repeat 3]

fixtures writes input.png (a 16-bit RGB 13x11 PNG, values v/65535) and, per shipped model
NAME, NAME.npy: float32 [3, H*s, W*s], the network output in 0..1 before any clamping,
computed in float64 from the stored weights.
"""

import argparse
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ["esrgan-slim-x2", "esrgan-slim-x4", "realesr-animevideov3-x4"]


# ---- PNG (zlib + struct; no PIL here) -----------------------------------------------------

def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def read_png(path):
    """float64 [C, H, W] in 0..1 of a non-interlaced 8/16-bit grey/RGB(A) PNG (alpha kept)."""
    blob = open(path, "rb").read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, ihdr = 8, [], None
    while pos < len(blob):
        n, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    if depth not in (8, 16) or interlace:
        raise ValueError("%s: only 8/16-bit non-interlaced PNGs" % path)
    bpp = chans * depth // 8
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), np.uint8)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                line[x] = (line[x] + _paeth(a, b, c)) & 255
        out[y] = np.frombuffer(bytes(line), np.uint8)
        prev = line
    if depth == 16:
        px = out.view(">u2").reshape(h, w, chans).astype(np.float64) / 65535.0
    else:
        px = out.reshape(h, w, chans).astype(np.float64) / 255.0
    return px.transpose(2, 0, 1)


def write_png16(path, rgb):
    """rgb: uint16 [3, H, W] -> a 16-bit RGB PNG (filter 0)."""
    _, h, w = rgb.shape
    rows = rgb.transpose(1, 2, 0).astype(">u2").reshape(h, w * 6 // 2)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


# ---- networks -----------------------------------------------------------------------------

class RDN(nn.Module):
    """idealo RDN with Keras layer names as attributes (F_m1, F_0, F_d_c, LFF_d, GFF_1/2, UPN1-3,
    SR); tensor names in our files are '<layer>.weight' / '<layer>.bias'."""

    def __init__(self, D, C, G, G0, scale, value_range):
        super().__init__()
        self.D, self.C, self.scale, self.value_range = D, C, scale, value_range
        self.convs = nn.ModuleDict()
        self.convs["F_m1"] = nn.Conv2d(3, G0, 3, padding=1)
        self.convs["F_0"] = nn.Conv2d(G0, G0, 3, padding=1)
        for d in range(1, D + 1):
            for c in range(1, C + 1):
                self.convs["F_%d_%d" % (d, c)] = nn.Conv2d(G0 + (c - 1) * G, G, 3, padding=1)
            self.convs["LFF_%d" % d] = nn.Conv2d(G0 + C * G, G0, 1)
        self.convs["GFF_1"] = nn.Conv2d(D * G0, G0, 1)
        self.convs["GFF_2"] = nn.Conv2d(G0, G0, 3, padding=1)
        self.convs["UPN1"] = nn.Conv2d(G0, 64, 5, padding=2)
        self.convs["UPN2"] = nn.Conv2d(64, 32, 3, padding=1)
        self.convs["UPN3"] = nn.Conv2d(32, 3 * scale * scale, 3, padding=1)
        self.convs["SR"] = nn.Conv2d(3 * scale * scale, 3, 3, padding=1)

    def load(self, tensors):
        sd = {"convs." + k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in tensors.items()}
        self.load_state_dict(sd, strict=True)

    def forward(self, x):
        cv = self.convs
        x = x * self.value_range
        f_m1 = cv["F_m1"](x)
        rdb_in = cv["F_0"](f_m1)
        lrls = []
        for d in range(1, self.D + 1):
            h = rdb_in
            for c in range(1, self.C + 1):
                h = torch.cat([h, F.relu(cv["F_%d_%d" % (d, c)](h))], 1)
            rdb_in = cv["LFF_%d" % d](h) + rdb_in
            lrls.append(rdb_in)
        fdf = cv["GFF_2"](cv["GFF_1"](torch.cat(lrls, 1))) + f_m1
        u = F.relu(cv["UPN2"](F.relu(cv["UPN1"](fdf))))
        u = F.interpolate(cv["UPN3"](u), scale_factor=self.scale, mode="nearest")
        return cv["SR"](u) / self.value_range


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList()
        self.body.append(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        self.body.append(nn.PReLU(num_parameters=num_feat))
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(nn.PReLU(num_parameters=num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def load(self, tensors):
        sd = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in tensors.items()}
        self.load_state_dict(sd, strict=True)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def load_net(path, dtype=torch.float64):
    tensors, meta = st.load(path, bf16_as_float=True)
    if meta.get("arch") == "esrgan-slim":
        net = RDN(int(meta["D"]), int(meta["C"]), int(meta["G"]), int(meta["G0"]),
                  int(meta["scale"]), float(meta["value_range"]))
    elif meta.get("arch") == "srvgg":
        if meta.get("act") != "prelu":
            raise SystemExit("only act prelu")
        net = SRVGGNetCompact(int(meta["num_in_ch"]), int(meta["num_out_ch"]),
                              int(meta["num_feat"]), int(meta["num_conv"]), int(meta["scale"]))
    else:
        raise SystemExit("%s: arch %r is neither esrgan-slim nor srvgg" % (path, meta.get("arch")))
    net = net.double()
    net.load(tensors)
    return net.to(dtype).eval()


def forward(net, img):
    """img float64 [3, H, W] in 0..1 -> numpy float64 [3, H*s, W*s], unclamped."""
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img)).to(next(net.parameters()).dtype)
        return net(x[None])[0].double().numpy()


# ---- commands -----------------------------------------------------------------------------

def fixture_image(h=11, w=13, seed=6):
    """A 16-bit RGB image with edges, gradients and noise, so every layer matters."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([0.5 + 0.4 * np.sin(xx * 0.9 + yy * 0.3),
                     (xx > w / 2).astype(np.float64) * 0.7 + 0.1,
                     0.3 + 0.05 * yy])
    img = np.clip(base + 0.08 * rng.standard_normal((3, h, w)), 0, 1)
    return np.round(img * 65535).astype(np.uint16)


def cmd_fixtures(args):
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    img16 = fixture_image()
    write_png16(os.path.join(args.out, "input.png"), img16)
    img = read_png(os.path.join(args.out, "input.png"))
    assert np.array_equal(np.round(img * 65535).astype(np.uint16), img16)
    for name in SHIPPED:
        net = load_net(os.path.join(ROOT, "models", name + ".safetensors"))
        y = forward(net, img).astype(np.float32)
        np.save(os.path.join(args.out, name + ".npy"), y)
        print("%s: %s, range %.4f..%.4f" % (name, y.shape, y.min(), y.max()))


def cmd_upscalerjs(args):
    """Our RDN on the package's fixture against the package's own result PNGs."""
    torch.set_num_threads(1)
    img = read_png(os.path.join(args.data, "fixture.png"))[:3]
    for s in (2, 4):
        net = load_net(os.path.join(ROOT, "models", "esrgan-slim-x%d.safetensors" % s))
        ours = np.clip(np.round(forward(net, img) * 255), 0, 255)
        want = read_png(os.path.join(args.data, "esrgan-slim-%dx-result.png" % s))[:3] * 255
        err = np.abs(ours - np.round(want))
        print("esrgan-slim-x%d vs upscalerjs: max %d levels, mean %.3g, %d of %d values differ"
              % (s, err.max(), err.mean(), (err > 0).sum(), err.size))


def cmd_run(args):
    torch.set_num_threads(1)
    net = load_net(args.model)
    img = read_png(args.input)[:3]
    np.save(args.output, forward(net, img).astype(np.float32))


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    net = load_net(args.model, torch.float32)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    best, best_cpu = float("inf"), float("inf")
    with torch.no_grad():
        net(x)
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            net(x)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
    with torch.no_grad():
        scale = net(x[:, :, :1, :1]).shape[-1]
    mp = args.size * args.size * scale * scale / 1e6  # output megapixels, as make bench counts
    # CPU seconds (all threads) as well: on a shared machine wall time mostly measures the load.
    print("pytorch %s %dx%d input threads %d: best %.4f s wall, %.4f s CPU = %.4f MP/s"
          % (os.path.basename(args.model), args.size, args.size, args.threads, best, best_cpu,
             mp / best))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fixtures")
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "esrgan"))
    p = sub.add_parser("upscalerjs")
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "sr",
                                                  "upscalerjs-fixture"))
    p = sub.add_parser("run")
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("output")
    p = sub.add_parser("bench")
    p.add_argument("model")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    {"fixtures": cmd_fixtures, "upscalerjs": cmd_upscalerjs, "run": cmd_run,
     "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
