"""mmsegmentation's Semantic FPN (FPN neck + FPNHead) in plain PyTorch, with mmseg's module
names, so that `state_dict()` under the prefixes "neck." and "decode_head." gives the tensor
names of mmseg checkpoints (and of cmd/seg-run/fpn.c).

Written from the semantics of mmseg 0.x `mmseg/models/necks/fpn.py` and
`mmseg/models/decode_heads/fpn_head.py` as configured by `configs/_base_/models/fpn_r50.py`
(used by VAN-Segmentation and DiNAT's segmentation):
- neck FPN(in_channels, out_channels=256, num_outs=4): lateral_convs.i = 1x1 conv with bias
  (no norm, no activation); top-down laterals[i-1] += nearest-resize(laterals[i], size of
  laterals[i-1]) (PyTorch 'nearest': src = floor(dst * in/out)); fpn_convs.i = 3x3 pad 1 with
  bias on each lateral.
- FPNHead(in_channels=[256]*4, channels=128, feature_strides=[4,8,16,32]): scale_heads.i is a
  Sequential of max(1, log2(stride_i / 4)) ConvModules (3x3 pad 1, no bias, BatchNorm eps 1e-5,
  ReLU), each followed by an Upsample x2 (bilinear, align_corners=False, size = 2 x input) when
  stride_i > 4, so ConvModules sit at even indices 0, 2, 4; output = scale_heads[0](x0) + sum
  bilinear-resize(scale_heads[i](xi), size of the first, align_corners=False); then dropout
  (no-op at inference) and conv_seg, a 1x1 conv with bias.

    from semantic_fpn_torch import SemanticFPN, randomize, export
    head = SemanticFPN([32, 64, 160, 256], num_classes=5).double().eval()
    logits = head([f4, f8, f16, f32])           # [N, classes, H/4, W/4]
    tensors = export(head)                      # {"neck.lateral_convs.0.conv.weight": ..., ...}
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5


class ConvModule(nn.Module):
    """mmcv ConvModule: conv (bias only without norm), optional BatchNorm 'bn', optional ReLU."""

    def __init__(self, cin, cout, k, norm, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.with_norm, self.with_act = norm, act

    def forward(self, x):
        x = self.conv(x)
        if self.with_norm:
            x = self.bn(x)
        return F.relu(x) if self.with_act else x


class Upsample(nn.Module):
    """mmseg's Upsample(scale_factor=2): resize to int(2 * size), bilinear, half-pixel."""

    def forward(self, x):
        size = [int(t * 2) for t in x.shape[-2:]]
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


class FPN(nn.Module):
    def __init__(self, in_channels, out_channels=256):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1, False, False)
                                           for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, False, False)
                                       for _ in in_channels)

    def forward(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:],
                                                    mode='nearest')
        return [conv(x) for conv, x in zip(self.fpn_convs, lat)]


class FPNHead(nn.Module):
    def __init__(self, in_channels, channels=128, num_classes=150,
                 feature_strides=(4, 8, 16, 32)):
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for i, stride in enumerate(feature_strides):
            length = max(1, int(math.log2(stride) - math.log2(feature_strides[0])))
            layers = []
            for k in range(length):
                layers.append(ConvModule(in_channels[i] if k == 0 else channels, channels, 3,
                                         True, True))
                if stride != feature_strides[0]:
                    layers.append(Upsample())
            self.scale_heads.append(nn.Sequential(*layers))
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats):
        out = self.scale_heads[0](feats[0])
        for i in range(1, len(feats)):
            out = out + F.interpolate(self.scale_heads[i](feats[i]), size=out.shape[2:],
                                      mode='bilinear', align_corners=False)
        return self.conv_seg(out)


class SemanticFPN(nn.Module):
    """neck + decode_head; state_dict names are those of an mmseg EncoderDecoder minus
    'backbone.' (put this module's children at the top level of the segmentor)."""

    def __init__(self, in_channels, num_classes=150, neck_channels=256, channels=128):
        super().__init__()
        self.neck = FPN(in_channels, neck_channels)
        self.decode_head = FPNHead([neck_channels] * 4, channels, num_classes)

    def forward(self, feats):
        return self.decode_head(self.neck(feats))


def randomize(module, gen, scale=1.0):
    """Seeded weights with fan-in scaling and non-trivial BatchNorm statistics, so that folding
    mistakes show. gen: torch.Generator."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                w = torch.randn(m.weight.shape, generator=gen)
                m.weight.copy_(w * scale / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))


def export(module, prefix=''):
    """state_dict as float32 numpy arrays, without BatchNorm's num_batches_tracked."""
    return {prefix + k: v.detach().to(torch.float32).cpu().numpy().copy()
            for k, v in module.state_dict().items() if not k.endswith('num_batches_tracked')}


if __name__ == '__main__':
    # Shape check: strides 4..32 of a 64x48 input.
    torch.manual_seed(0)
    head = SemanticFPN([32, 64, 160, 256], num_classes=3).double().eval()
    randomize(head, torch.Generator().manual_seed(1))
    feats = [torch.randn(1, c, 12 // s, 16 // s, dtype=torch.float64)
             for c, s in zip([32, 64, 160, 256], [1, 2, 4, 8])]
    with torch.no_grad():
        out = head(feats)
    print(tuple(out.shape), len(export(head)), 'tensors', np.isfinite(out.numpy()).all())
