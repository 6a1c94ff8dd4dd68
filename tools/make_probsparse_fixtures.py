#!/usr/bin/python3
"""Writes the parity fixtures of lr_probsparse_attention (tests/unit/test_probsparse.c):

    /usr/bin/python3 tools/make_probsparse_fixtures.py      (from the repository root)

Each tests/fixtures/probsparse/<case>.safetensors holds
    q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, D]   F32 inputs (the layout of libcore, i.e.
                                                        the official module's [B, L, H, D]
                                                        inputs transposed)
    index_sample [Lq, U]                                I32, the keys sampled for each query
    out [B, H, Lq, D]                                   F32, the expected output
    selected [B, H, u]                                  I32, the chosen query rows, ascending
and metadata factor, causal ("0"/"1"), U and u.

The expected outputs come from the ProbAttention below: an independent re-implementation of
the official module (zhouhaoyi/Informer2020 models/attn.py, the same in
thuml/Time-Series-Library layers/SelfAttention_Family.py), written here from its semantics, run
in float64 on the float32 inputs, with torch.randint replaced by the explicit index_sample so
that C can use the same draw. Everything is seeded, so rerunning reproduces the committed bytes.
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "probsparse")


def counts(factor, L_Q, L_K):
    """U_part and u exactly as the official forward computes them."""
    U_part = factor * np.ceil(np.log(L_K)).astype("int").item()
    u = factor * np.ceil(np.log(L_Q)).astype("int").item()
    return min(U_part, L_K), min(u, L_Q)


def prob_attention(queries, keys, values, factor, mask_flag, index_sample, scale=None):
    """ProbAttention.forward on [B, L, H, D] inputs; returns ([B, L_Q, H, D], M_top)."""
    B, L_Q, H, D = queries.shape
    L_K = keys.shape[1]
    Q = queries.transpose(2, 1)  # [B, H, L_Q, D]
    K = keys.transpose(2, 1)
    V = values.transpose(2, 1)
    U_part, u = counts(factor, L_Q, L_K)
    assert tuple(index_sample.shape) == (L_Q, U_part)

    # sampled scores: query i against keys index_sample[i, :], unscaled
    K_sample = K[:, :, index_sample, :]  # [B, H, L_Q, U, D]
    QK_sample = torch.einsum("bhld,bhlud->bhlu", Q, K_sample)
    M = QK_sample.max(-1)[0] - QK_sample.sum(-1) / L_K
    M_top = M.topk(u, sorted=False)[1]  # [B, H, u]

    scale = scale or 1.0 / math.sqrt(D)
    if not mask_flag:
        context = V.mean(dim=-2, keepdim=True).expand(B, H, L_Q, V.shape[-1]).clone()
    else:
        assert L_Q == L_K
        context = V.cumsum(dim=-2)
    for b in range(B):
        for h in range(H):
            rows = M_top[b, h]
            scores = Q[b, h, rows] @ K[b, h].T * scale  # [u, L_K]
            if mask_flag:
                hidden = torch.arange(L_K)[None, :] > rows[:, None]  # ProbMask: triu(1) rows
                scores = scores.masked_fill(hidden, -math.inf)
            context[b, h, rows] = torch.softmax(scores, dim=-1) @ V[b, h]
    return context.transpose(2, 1), M_top


CASES = [
    # name, B, H, L_Q, L_K, D, factor, causal
    ("self_f5", 2, 2, 48, 48, 8, 5, False),
    ("self_f2", 2, 2, 48, 48, 12, 2, False),
    ("cross_f5", 2, 2, 24, 72, 8, 5, False),
    ("cross_f2", 2, 3, 24, 72, 8, 2, False),
    ("causal_f2", 2, 2, 40, 40, 12, 2, True),
    ("causal_f5", 2, 3, 40, 40, 8, 5, True),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2021)
    for name, B, H, L_Q, L_K, D, factor, causal in CASES:
        # inputs rounded to float32 first: C gets exactly what the float64 reference used
        q = torch.randn(B, L_Q, H, D, generator=gen).float().double()
        k = torch.randn(B, L_K, H, D, generator=gen).float().double()
        v = torch.randn(B, L_K, H, D, generator=gen).float().double()
        U_part, u = counts(factor, L_Q, L_K)
        index_sample = torch.randint(L_K, (L_Q, U_part), generator=gen)
        out, M_top = prob_attention(q, k, v, factor, causal, index_sample)
        layout = lambda x: x.transpose(2, 1).contiguous().float().numpy()  # noqa: E731
        tensors = {
            "q": layout(q),
            "k": layout(k),
            "v": layout(v),
            "index_sample": index_sample.to(torch.int32).numpy(),
            "out": layout(out),
            "selected": M_top.sort(dim=-1)[0].to(torch.int32).numpy(),
        }
        meta = {"factor": str(factor), "causal": "1" if causal else "0", "U": str(U_part), "u": str(u)}
        path = os.path.join(OUT, name + ".safetensors")
        st.save(path, tensors, meta)
        print("%s: U %d, u %d, %d bytes" % (path, U_part, u, os.path.getsize(path)))


if __name__ == "__main__":
    main()
