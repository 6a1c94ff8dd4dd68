#!/usr/bin/env python3
"""DiNAT-Mini (Hassani & Shi, "Dilated Neighborhood Attention Transformer") with mmseg's
Semantic FPN head, in plain PyTorch: the reference cmd/seg-run/dinat.c (arch "dinat-fpn") is
tested against.

Written from SHI-Labs/Neighborhood-Attention-Transformer (segmentation/nat.py, dinat.py and
configs/dinat/upernet_dinat_mini_512x512_160k_ade20k.py) so that module and parameter names
are the official ones under "backbone." (patch_embed.proj.{0,1}, patch_embed.norm,
levels.i.blocks.j.{norm1,attn.qkv,attn.rpb,attn.proj,norm2,mlp.fc1,mlp.fc2},
levels.i.downsample.{reduction,norm}, norm0..norm3); the head is tools/semantic_fpn_torch.py
("neck.", "decode_head."). The official DiNAT configs pair the backbone with UPerNet; seg-run
uses the Semantic FPN head instead (see the issue), so a DiNAT-Mini checkpoint's backbone loads
1:1 and the head is this FPN.

Neighbourhood attention is NATTEN's, implemented here from its definition (no natten package):
NATTEN's own index functions get_window_start / get_pb_start (csrc/cpu/natten_cpu_commons.h)
give each query's k neighbours per axis (stride d, a window clamped inside the query's dilation
sub-grid) and its rpb offsets; logits (q * head_dim^-0.5) . k + rpb, softmax, sum p v. Small
maps follow the NATTEN <= 0.14 module DiNAT was trained with: when H or W < k * d, the
normalised input is zero-padded on the right/bottom to k * d before qkv and the attention output
is cropped back before proj; the dilation is never reduced (only the module's "dilation as a
string" mode does that, which DiNAT does not use).

Subcommands:
  fixtures [DIR]   a small random-weight model (reduced widths/depths, the padding path and
                   dilated border queries exercised), 8-bit RGB PNG inputs and float32 NPY
                   logits computed in float64 (default tests/fixtures/dinat)
  model OUT        a full-size DiNAT-Mini + Semantic FPN (150 classes) with random weights
  bench [--size 512] [--threads 2]   the float32 forward's time at size x size
"""

import argparse
import math
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
from semantic_fpn_torch import SemanticFPN, randomize  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MINI = dict(embed_dim=64, depths=[3, 4, 6, 5], num_heads=[2, 4, 8, 16], kernel_size=7,
            mlp_ratio=3.0, dilations=[[1, 16, 1], [1, 4, 1, 8], [1, 2, 1, 3, 1, 4],
                                      [1, 2, 1, 2, 1]])


# ---------------------------------------------------------------------------------------------
# neighbourhood attention (NATTEN's definition)

def natten_window_start(index, length, kernel_size, nb, dilation):
    """NATTEN get_window_start: the first neighbour of `index` (nb = kernel_size // 2)."""
    if dilation <= 1:
        return max(index - nb, 0) + (index + nb >= length) * (length - index - nb - 1)
    ni = index - nb * dilation
    if ni < 0:
        return index % dilation
    if index + nb * dilation >= length:
        imodd = index % dilation
        a = (length // dilation) * dilation
        b = length - a
        if imodd < b:
            return length - b + imodd - 2 * nb * dilation
        return a + imodd - kernel_size * dilation
    return ni


def natten_pb_start(index, length, kernel_size, nb, dilation):
    """NATTEN get_pb_start: the rpb offset of the first neighbour."""
    if dilation <= 1:
        return nb + (index < nb) * (nb - index) + (index + nb >= length) * (length - index - 1 - nb)
    if index - nb * dilation < 0:
        return kernel_size - 1 - (index // dilation)
    if index + nb * dilation >= length:
        return (length - index - 1) // dilation
    return nb


def axis_neighbours(length, k, d):
    """[length, k] key positions and rpb indices, checked against the sub-grid clamp rule."""
    assert length >= k * d, (length, k, d)
    idx = np.zeros((length, k), np.int64)
    pb = np.zeros((length, k), np.int64)
    for i in range(length):
        s = natten_window_start(i, length, k, k // 2, d)
        p = natten_pb_start(i, length, k, k // 2, d)
        idx[i] = s + d * np.arange(k)
        pb[i] = p + np.arange(k)
        # the same window as clamp(i' - r, 0, L' - k) on i's sub-grid
        rho, sub = i % d, i // d
        sub_len = -(-(length - rho) // d)
        start = min(max(sub - k // 2, 0), sub_len - k)
        assert list(idx[i]) == [(start + a) * d + rho for a in range(k)], (i, length, k, d)
        assert list(pb[i]) == [start + a - sub + k - 1 for a in range(k)], (i, length, k, d)
    return torch.from_numpy(idx), torch.from_numpy(pb)


def na2d(q, k, v, rpb, kernel, dilation):
    """q, k, v: [B, heads, H, W, D] (q already scaled); rpb [heads, 2k-1, 2k-1]."""
    B, heads, H, W, D = q.shape
    ny, py = axis_neighbours(H, kernel, dilation)
    nx, px = axis_neighbours(W, kernel, dilation)
    # keys [B, heads, H, W, k, k, D]
    kn = k[:, :, ny[:, None, :, None], nx[None, :, None, :]]
    vn = v[:, :, ny[:, None, :, None], nx[None, :, None, :]]
    logits = torch.einsum('bnhwd,bnhwijd->bnhwij', q, kn)
    bias = rpb[:, py[:, None, :, None], px[None, :, None, :]]  # [heads, H, W, k, k]
    logits = logits + bias[None]
    p = logits.reshape(B, heads, H, W, -1).softmax(-1).reshape(logits.shape)
    return torch.einsum('bnhwij,bnhwijd->bnhwd', p, vn)


class NeighborhoodAttention2D(nn.Module):
    def __init__(self, dim, kernel_size, num_heads, dilation=1):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.kernel_size, self.dilation = kernel_size, dilation
        self.window_size = kernel_size * dilation
        self.qkv = nn.Linear(dim, dim * 3)
        self.rpb = nn.Parameter(torch.zeros(num_heads, 2 * kernel_size - 1, 2 * kernel_size - 1))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # [B, H, W, C]
        B, Hp, Wp, C = x.shape
        H, W = Hp, Wp
        if H < self.window_size or W < self.window_size:
            x = F.pad(x, (0, 0, 0, max(0, self.window_size - W), 0, max(0, self.window_size - H)))
            _, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H, W, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(3, 0, 4, 1, 2, 5)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        x = na2d(q, k, v, self.rpb, self.kernel_size, self.dilation)  # [B, heads, H, W, D]
        x = x.permute(0, 2, 3, 1, 4).reshape(B, H, W, C)
        return self.proj(x[:, :Hp, :Wp, :])


# ---------------------------------------------------------------------------------------------
# the backbone (official names)

class ConvTokenizer(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(3, embed_dim // 2, 3, 2, 1),
                                  nn.Conv2d(embed_dim // 2, embed_dim, 3, 2, 1))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class ConvDownsampler(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Conv2d(dim, 2 * dim, 3, 2, 1, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x):
        return self.norm(self.reduction(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class NATLayer(nn.Module):
    def __init__(self, dim, heads, kernel_size, dilation, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NeighborhoodAttention2D(dim, kernel_size, heads, dilation)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class NATBlock(nn.Module):
    def __init__(self, dim, depth, heads, kernel_size, dilations, mlp_ratio, downsample):
        super().__init__()
        self.blocks = nn.ModuleList(NATLayer(dim, heads, kernel_size, dilations[i], mlp_ratio)
                                    for i in range(depth))
        self.downsample = ConvDownsampler(dim) if downsample else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return (x if self.downsample is None else self.downsample(x)), x


class DiNAT(nn.Module):
    def __init__(self, embed_dim, depths, num_heads, kernel_size, mlp_ratio, dilations):
        super().__init__()
        self.patch_embed = ConvTokenizer(embed_dim)
        self.levels = nn.ModuleList(
            NATBlock(embed_dim << i, depths[i], num_heads[i], kernel_size, dilations[i],
                     mlp_ratio, i < len(depths) - 1) for i in range(len(depths)))
        for i in range(len(depths)):
            self.add_module(f'norm{i}', nn.LayerNorm(embed_dim << i))

    def forward(self, x):
        x = self.patch_embed(x)
        outs = []
        for i, level in enumerate(self.levels):
            x, xo = level(x)
            outs.append(getattr(self, f'norm{i}')(xo).permute(0, 3, 1, 2).contiguous())
        return outs


class DiNATFPN(nn.Module):
    """backbone + neck + decode_head (mmseg EncoderDecoder names); input RGB 0..1."""

    def __init__(self, cfg, num_classes, neck_channels=256, channels=128):
        super().__init__()
        self.cfg = cfg
        self.backbone = DiNAT(**cfg)
        fpn = SemanticFPN([cfg['embed_dim'] << i for i in range(4)], num_classes,
                          neck_channels, channels)
        self.neck, self.decode_head = fpn.neck, fpn.decode_head

    def forward(self, rgb):
        mean = torch.tensor(MEAN, dtype=rgb.dtype).view(1, 3, 1, 1)
        std = torch.tensor(STD, dtype=rgb.dtype).view(1, 3, 1, 1)
        return self.decode_head(self.neck(self.backbone((rgb - mean) / std)))


def randomize_backbone(model, gen):
    """Fan-in scaled weights, visible LayerNorm affines and rpb, so every term matters."""
    with torch.no_grad():
        for name, p in model.backbone.named_parameters():
            if name.endswith('rpb'):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif p.dim() == 1 and 'norm' in name:
                p.copy_((1.0 if name.endswith('weight') else 0.0)
                        + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def model_file(model, path, dtype=np.float16):
    """Writes the model file (every tensor as dtype) and rounds the module's weights to what
    the file holds, so the reference computes with exactly the file's values."""
    cfg = model.cfg
    tensors = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            a = p.detach().cpu().numpy().astype(dtype)
            p.copy_(torch.from_numpy(a.astype(np.float64)))
            tensors[name] = a
    meta = {
        'arch': 'dinat-fpn',
        'embed_dim': str(cfg['embed_dim']),
        'depths': ','.join(map(str, cfg['depths'])),
        'num_heads': ','.join(map(str, cfg['num_heads'])),
        'kernel_size': str(cfg['kernel_size']),
        'dilations': ';'.join(','.join(map(str, d)) for d in cfg['dilations']),
    }
    st.save(path, tensors, meta)


# ---------------------------------------------------------------------------------------------
# files

def write_png8(path, rgb):
    """rgb: uint8 [h, w, 3] -> an 8-bit RGB PNG (zlib alone)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\x00' + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
        f.write(chunk(b'IEND', b''))


# The fixture model: DiNAT's structure at reduced widths and depths, MLP ratio 1, F16 weights
# (the file stays ~150 KB). Dilations chosen so that the inputs below see (a) maps smaller than
# k * d on both axes (zero padding: d = 16 and 3 at level 0, d = 2 and 1 further down) and on
# one axis only (d = 3 on the 18 x 24 level-0 map pads 18 -> 21 rows, keeps 24 columns), (b)
# dilated sub-grids with clamped border windows (d = 3 along those 24 columns), (c) plain NA
# with border queries (d = 1 at 16 x 16 and 18 x 24).
FIXTURE = dict(embed_dim=8, depths=[3, 2, 2, 1], num_heads=[1, 2, 2, 4], kernel_size=7,
               mlp_ratio=1.0, dilations=[[1, 3, 16], [1, 2], [2, 1], [1]])
FIXTURE_INPUTS = [(64, 64), (72, 96)]  # (height, width): the size the network sees


def cmd_fixtures(args):
    torch.set_num_threads(1)
    out = args.dir
    os.makedirs(out, exist_ok=True)
    model = DiNATFPN(FIXTURE, num_classes=3, neck_channels=16, channels=8).double().eval()
    randomize_backbone(model, torch.Generator().manual_seed(7))
    randomize(nn.ModuleDict({'n': model.neck, 'd': model.decode_head}),
              torch.Generator().manual_seed(8))
    path = os.path.join(out, 'dinat-tiny.safetensors')
    model_file(model, path)
    print(path, os.path.getsize(path), 'bytes')
    # Unusable files (open must refuse them, exit 3): the first stem conv stored as
    # [in, out, kh, kw], and dilations that do not match the depths.
    meta = {'arch': 'dinat-fpn', 'embed_dim': '8', 'depths': '3,2,2,1', 'num_heads': '1,2,2,4',
            'dilations': '1,3,16;1,2;2,1;1'}
    st.save(os.path.join(out, 'bad-shape.safetensors'),
            {'backbone.patch_embed.proj.0.weight': np.zeros((3, 4, 3, 3), np.float16)}, meta)
    st.save(os.path.join(out, 'bad-dilations.safetensors'),
            {'backbone.patch_embed.proj.0.weight': np.zeros((4, 3, 3, 3), np.float16)},
            dict(meta, dilations='1,3;1,2;2,1;1'))
    rng = np.random.default_rng(3)
    for h, w in FIXTURE_INPUTS:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        # smooth regions too, so the logits are not all noise
        yy, xx = np.mgrid[0:h, 0:w]
        rgb[: h // 2, : w // 2, 0] = (255 * xx[: h // 2, : w // 2] / w).astype(np.uint8)
        base = f'in-{h}x{w}'
        write_png8(os.path.join(out, base + '.png'), rgb)
        x = torch.from_numpy(rgb.astype(np.float64) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            logits = model(x)[0].numpy()
        np.save(os.path.join(out, f'logits-{h}x{w}.npy'), logits.astype('<f4'))
        print(base, 'logits', logits.shape, 'max |logit| %.3f' % np.abs(logits).max())


def full_model(dtype=torch.float32):
    model = DiNATFPN(MINI, num_classes=150).to(dtype).eval()
    randomize_backbone(model, torch.Generator().manual_seed(1))
    randomize(nn.ModuleDict({'n': model.neck, 'd': model.decode_head}),
              torch.Generator().manual_seed(2))
    return model


def cmd_model(args):
    torch.set_num_threads(1)
    model = full_model(torch.float64)
    model_file(model, args.out, np.float32)
    print(args.out, os.path.getsize(args.out), 'bytes')


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    model = full_model()
    x = torch.rand(1, 3, args.size, args.size)
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    print('dinat-fpn torch float32 %dx%d, %d threads: %.1f ms (best of %d)'
          % (args.size, args.size, args.threads, 1000 * min(times), args.repeat))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('fixtures')
    p.add_argument('dir', nargs='?', default='tests/fixtures/dinat')
    p.set_defaults(fn=cmd_fixtures)
    p = sub.add_parser('model')
    p.add_argument('out')
    p.set_defaults(fn=cmd_model)
    p = sub.add_parser('bench')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeat', type=int, default=2)
    p.set_defaults(fn=cmd_bench)
    args = ap.parse_args()
    args.fn(args)


if __name__ == '__main__':
    main()
