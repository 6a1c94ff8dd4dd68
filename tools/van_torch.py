"""VAN (Visual Attention Network) + mmseg Semantic FPN in plain PyTorch: the independent
reference for seg-run's "van-fpn" network (cmd/seg-run/van.c).

Written from the semantics of Visual-Attention-Network/VAN-Classification `models/van.py` and
VAN-Segmentation `van.py` (configs fpn_van_b0: dims [32, 64, 160, 256], depths [3, 3, 5, 2],
mlp ratios [8, 8, 4, 4], Semantic FPN neck 256, head 128); module names follow the official
code, so state_dict names are the checkpoint's ("backbone.patch_embed1.proj.weight",
"backbone.block1.0.attn.spatial_gating_unit.conv0.weight", "neck.lateral_convs.0.conv.weight",
"decode_head.scale_heads.3.4.conv.weight", ...).
  OverlapPatchEmbed: conv k7 s4 p3 (stage 1) or k3 s2 p1, with bias; BatchNorm.
  Block: x += ls1 * (proj_2(LKA(GELU(proj_1(n)))) + n), n = BN1(x);
         LKA(u) = u * conv1(conv_spatial(conv0(u))), conv0 dw 5x5 p2, conv_spatial dw 7x7 d3 p9;
         x += ls2 * fc2(GELU(dwconv3x3(fc1(BN2(x))))); GELU exact (erf).
  Stage end: LayerNorm over channels (eps 1e-5, nn.LayerNorm's default, as in the
  segmentation backbone; the metadata "layer_norm_eps" carries it).
Input: RGB 0..1, normalised with ImageNet mean/std inside the model; output: the head's
stride-4 logits, or (full) those resized to the input size (bilinear, align_corners=False), as
mmseg's EncoderDecoder.encode_decode; `slide` is mmseg's slide inference on the latter.

  fixtures [DIR]   random-weight small model(s), 8-bit RGB PNGs and float32 NPY logits computed
                   in float64 (default tests/fixtures/van)
  model OUT        a random-weight full-size VAN-B0 + FPN (150 classes) for timing
  bench            ms per 512x512 forward in float32 (threads from --threads)
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
from semantic_fpn_torch import SemanticFPN, randomize as randomize_fpn  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class DWConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x):
        return self.dwconv(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = DWConv(hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.dwconv(self.fc1(x))))


class LKA(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, stride=1, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, u):
        return u * self.conv1(self.conv_spatial(self.conv0(u)))


class SpatialAttention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.spatial_gating_unit = LKA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        return self.proj_2(self.spatial_gating_unit(F.gelu(self.proj_1(x)))) + x


class Block(nn.Module):
    def __init__(self, dim, mlp_ratio):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.layer_scale_1 = nn.Parameter(1e-2 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-2 * torch.ones(dim))

    def forward(self, x):
        x = x + self.layer_scale_1[:, None, None] * self.attn(self.norm1(x))
        return x + self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    def __init__(self, k, stride, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, k, stride, k // 2)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x):
        return self.norm(self.proj(x))


class VAN(nn.Module):
    def __init__(self, dims, depths, mlp_ratios, ln_eps=1e-5):
        super().__init__()
        for i in range(4):
            setattr(self, 'patch_embed%d' % (i + 1),
                    OverlapPatchEmbed(7 if i == 0 else 3, 4 if i == 0 else 2,
                                      3 if i == 0 else dims[i - 1], dims[i]))
            setattr(self, 'block%d' % (i + 1),
                    nn.ModuleList(Block(dims[i], mlp_ratios[i]) for _ in range(depths[i])))
            setattr(self, 'norm%d' % (i + 1), nn.LayerNorm(dims[i], eps=ln_eps))

    def forward(self, x):
        outs = []
        for i in range(1, 5):
            x = getattr(self, 'patch_embed%d' % i)(x)
            for blk in getattr(self, 'block%d' % i):
                x = blk(x)
            x = getattr(self, 'norm%d' % i)(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            outs.append(x)
        return outs


class VANFPN(nn.Module):
    def __init__(self, dims=(32, 64, 160, 256), depths=(3, 3, 5, 2), mlp_ratios=(8, 8, 4, 4),
                 num_classes=150, neck=256, channels=128, ln_eps=1e-5):
        super().__init__()
        self.backbone = VAN(dims, depths, mlp_ratios, ln_eps)
        head = SemanticFPN(list(dims), num_classes, neck, channels)
        self.neck, self.decode_head = head.neck, head.decode_head
        self.ln_eps = ln_eps

    def forward(self, rgb, full=True):
        """full: logits resized to the input (mmseg's encode_decode), else the head's stride-4
        logits (seg-run's network output)."""
        mean = torch.tensor(MEAN, dtype=rgb.dtype)[None, :, None, None]
        std = torch.tensor(STD, dtype=rgb.dtype)[None, :, None, None]
        feats = self.backbone((rgb - mean) / std)
        logits = self.decode_head(self.neck(feats))
        if not full:
            return logits
        return F.interpolate(logits, size=rgb.shape[2:], mode='bilinear', align_corners=False)


def slide(model, x, tile, overlap):
    """mmseg's EncoderDecoder.slide_inference with crop tile x tile and stride tile - overlap:
    window logits (already at the window's size) summed and divided by the coverage count."""
    step = tile - overlap
    _, _, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    rows = max(h - th + step - 1, 0) // step + 1
    cols = max(w - tw + step - 1, 0) // step + 1
    preds, count = None, torch.zeros(1, 1, h, w, dtype=x.dtype)
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * step + th, h), min(c * step + tw, w)
            y1, x1 = max(y2 - th, 0), max(x2 - tw, 0)
            y = model(x[:, :, y1:y2, x1:x2])
            if preds is None:
                preds = torch.zeros(1, y.shape[1], h, w, dtype=x.dtype)
            preds += F.pad(y, (x1, w - x2, y1, h - y2))
            count[:, :, y1:y2, x1:x2] += 1
    return preds / count


def randomize(model, gen):
    """Fan-in scaled weights, BN statistics and LayerNorm affines that are not trivial, and
    layer scales near 0.3 so that every block visibly matters."""
    randomize_fpn(model, gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'layer_scale' in name:
                p.copy_(0.3 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.startswith('backbone.norm'):
                p.copy_((1.0 if name.endswith('weight') else 0.0)
                        + 0.2 * torch.randn(p.shape, generator=gen))


def export(model, dtype=torch.float32):
    return {k: v.detach().to(dtype).contiguous().numpy().copy()
            for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}


def round_to_half(model):
    """Every parameter and BN statistic rounded to float16 (the fixture ships F16 weights,
    which seg-run widens exactly; the float64 reference uses the same rounded values)."""
    with torch.no_grad():
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.copy_(v.to(torch.float16).to(v.dtype))


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


def save_model(path, model, cfg, dtype=torch.float32):
    meta = {'arch': 'van-fpn', 'layer_norm_eps': repr(model.ln_eps),
            'depths': ','.join(str(d) for d in cfg['depths'])}
    st.save(path, export(model, dtype), meta)


def fixtures(out_dir):
    torch.set_num_threads(1)
    os.makedirs(out_dir, exist_ok=True)
    # The real B0 widths (32..256, neck 256) make a file of several MB even with one block per
    # stage, so the fixture keeps the structure (4 stages, mlp ratios 8/8/4/4, 4 FPN levels,
    # 1/1/2/3 head convs) at reduced widths and depths.
    cfg = dict(dims=(8, 16, 24, 32), depths=(2, 1, 2, 1), mlp_ratios=(8, 8, 4, 4),
               num_classes=5, neck=16, channels=8)
    gen = torch.Generator().manual_seed(7)
    model = VANFPN(**cfg).double().eval()
    randomize(model, gen)
    round_to_half(model)
    save_model(os.path.join(out_dir, 'van-tiny.safetensors'), model, cfg, torch.float16)
    # A file seg-run must refuse (exit 3): the first patch embedding made for 4 input channels.
    st.save(os.path.join(out_dir, 'bad-shape.safetensors'),
            {'backbone.patch_embed1.proj.weight': np.zeros((8, 4, 7, 7), np.float16),
             'backbone.patch_embed1.proj.bias': np.zeros(8, np.float16)}, {'arch': 'van-fpn'})
    # width x height: a multiple of 16; not a multiple of 32 (odd maps at every stage); tiny
    # (stage 4 is 1x1).
    for w, h in [(64, 48), (70, 45), (23, 19)]:
        px = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.int64)
        name = 'rgb%dx%d' % (w, h)
        write_png8(os.path.join(out_dir, name + '.png'), px.numpy().astype(np.uint8))
        x = (px.double() / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            y = model(x, full=False)[0]
        np.save(os.path.join(out_dir, name + '.logits.npy'),
                np.ascontiguousarray(y.numpy(), dtype='<f4'))
        print(name, tuple(y.shape), 'range %.3f..%.3f' % (float(y.min()), float(y.max())))
        if (w, h) == (23, 19):  # seg-run --tile 12 --overlap 4: 3 x 2 windows, 1x1 at stage 4
            with torch.no_grad():
                y = slide(model, x, 12, 4)[0]
                whole = model(x)[0]  # = slide inference with one window
            np.save(os.path.join(out_dir, name + '.tile12-4.logits.npy'),
                    np.ascontiguousarray(y.numpy(), dtype='<f4'))
            np.save(os.path.join(out_dir, name + '.full.logits.npy'),
                    np.ascontiguousarray(whole.numpy(), dtype='<f4'))


def full_model(seed=0):
    model = VANFPN().eval()
    randomize(model, torch.Generator().manual_seed(seed))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('fixtures')
    f.add_argument('dir', nargs='?', default='tests/fixtures/van')
    m = sub.add_parser('model')
    m.add_argument('out')
    b = sub.add_parser('bench')
    b.add_argument('--threads', type=int, default=2)
    b.add_argument('--size', type=int, default=512)
    b.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    if args.cmd == 'fixtures':
        fixtures(args.dir)
    elif args.cmd == 'model':
        save_model(args.out, full_model(), dict(depths=(3, 3, 5, 2)))
    else:
        torch.set_num_threads(args.threads)
        model = full_model()
        x = torch.rand(1, 3, args.size, args.size)
        with torch.no_grad():
            model(x)
            t = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                model(x)
                t.append(time.perf_counter() - t0)
        print('pytorch float32 VAN-B0+FPN %dx%d, %d threads: %.0f ms (best of %d)'
              % (args.size, args.size, args.threads, 1000 * min(t), args.runs))


if __name__ == '__main__':
    main()
