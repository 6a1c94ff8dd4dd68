#!/usr/bin/python3
"""Writes the parity fixtures of lr_bra, bi-level routing attention (tests/unit/test_bra.c):

    /usr/bin/python3 tools/make_bra_fixtures.py      (from the repository root)

tests/fixtures/bra/<case>.safetensors, one per case, holds
    q, k   F32 [B, Hgt, Wid, Cqk]     the query/key after BiFormer's qkv projection (NHWC)
    v      F32 [B, Hgt, Wid, Cv]
    out    F32 [B, Hgt, Wid, Cv]      the attention output before LePE and wo
    routes I64 [B, S*S, topk]         torch.topk's region indices, in decreasing affinity
and metadata n_win, topk, num_heads, scale (0: BiFormer's default qk_dim ** -0.5).

The expected values come from the independent PyTorch implementation below, in float64, which
follows the steps of BiFormer's BiLevelRoutingAttention.forward (rayleizhu/BiFormer,
ops/bra_legacy.py) between the qkv projection and LePE: regions by
"n (j h) (i w) c -> n (j i) h w c", region means of q and k over all channels, routing
logits (q_win * scale) @ k_win^T, torch.topk, KVGather with mul_weight 'none',
kv_downsample_mode 'identity', per-head softmax((q * scale) @ k^T) @ v with scale the full
qk_dim ** -0.5. Everything is seeded, so rerunning reproduces the committed bytes.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "bra")

# name, B, Hgt, Wid, Cqk, Cv, heads, n_win, topk, qk_scale (None: the default)
CASES = [
    ("s2_top1", 2, 8, 8, 16, 16, 2, 2, 1, None),
    ("s4_top3", 2, 8, 8, 16, 16, 2, 4, 3, None),
    ("s2_all", 1, 8, 8, 16, 16, 2, 2, 4, None),      # every region routed: full attention
    ("wide_cv8", 1, 8, 12, 16, 8, 2, 4, 4, None),    # non-square image, Cv != Cqk
    ("s3_scale", 1, 6, 9, 12, 12, 3, 3, 2, 0.7),     # 2 x 3 regions, explicit qk_scale
]


def bra(q, k, v, n_win, topk, num_heads, qk_scale):
    """q, k [N, H, W, Cqk], v [N, H, W, Cv] float64 tensors -> out [N, H, W, Cv], routes."""
    N, H, W, Cqk = q.shape
    Cv = v.shape[3]
    scale = qk_scale or Cqk ** -0.5
    h, w = H // n_win, W // n_win

    def regions(x):  # n (j h) (i w) c -> n (j i) (h w) c
        c = x.shape[3]
        x = x.reshape(N, n_win, h, n_win, w, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(N, n_win * n_win, h * w, c)

    q_pix, k_pix, v_pix = regions(q), regions(k), regions(v)
    q_win, k_win = q_pix.mean(2), k_pix.mean(2)                       # (n, p^2, c_qk)
    logit = (q_win * scale) @ k_win.transpose(-2, -1)                 # (n, p^2, p^2)
    _, r_idx = torch.topk(logit, k=topk, dim=-1)                      # (n, p^2, topk)

    p2, w2 = n_win * n_win, h * w
    kv = torch.cat([k_pix, v_pix], dim=-1)                            # (n, p^2, w^2, c_qk + c_v)
    sel = torch.gather(kv.view(N, 1, p2, w2, -1).expand(-1, p2, -1, -1, -1), dim=2,
                       index=r_idx.view(N, p2, topk, 1, 1).expand(-1, -1, -1, w2, kv.shape[-1]))
    k_sel, v_sel = sel.split([Cqk, Cv], dim=-1)                       # (n, p^2, topk, w^2, c)
    m = num_heads
    k_sel = k_sel.reshape(N * p2, topk * w2, m, Cqk // m).permute(0, 2, 3, 1)  # (n p2) m c (k w2)
    v_sel = v_sel.reshape(N * p2, topk * w2, m, Cv // m).permute(0, 2, 1, 3)   # (n p2) m (k w2) c
    qh = q_pix.reshape(N * p2, w2, m, Cqk // m).permute(0, 2, 1, 3)            # (n p2) m w2 c
    attn = torch.softmax((qh * scale) @ k_sel, dim=-1)
    out = attn @ v_sel                                                # (n p2) m w2 c
    # (n j i) m (h w) c -> n (j h) (i w) (m c)
    out = out.reshape(N, n_win, n_win, m, h, w, Cv // m).permute(0, 1, 4, 2, 5, 3, 6)
    return out.reshape(N, H, W, Cv), r_idx


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261128)
    for name, B, H, W, Cqk, Cv, heads, n_win, topk, qk_scale in CASES:
        q = rng.uniform(-1, 1, (B, H, W, Cqk)).astype(np.float32)
        k = rng.uniform(-1, 1, (B, H, W, Cqk)).astype(np.float32)
        v = rng.uniform(-1, 1, (B, H, W, Cv)).astype(np.float32)
        out, routes = bra(*(torch.from_numpy(x).double() for x in (q, k, v)), n_win, topk, heads, qk_scale)
        st.save(os.path.join(OUT, name + ".safetensors"),
                {"q": q, "k": k, "v": v, "out": out.float().numpy(),
                 "routes": routes.numpy().astype(np.int64)},
                {"n_win": str(n_win), "topk": str(topk), "num_heads": str(heads),
                 "scale": repr(float(qk_scale or 0.0))})


if __name__ == "__main__":
    main()
