#!/usr/bin/python3
"""Writes the fixtures of `attn-bench run` (tests/cli/attn-bench.sh):

    /usr/bin/python3 tools/make_attn_fixtures.py      (from the repository root)

tests/fixtures/attn/cross.safetensors       q [1, 2, 5, 8], k and v [1, 1, 7, 8] (one key/value head
                                            for two query heads), bias [1, 2, 5, 7], key_padding
                                            BOOL [1, 7] with key 3 padded
tests/fixtures/attn/self_bf16.safetensors   q, k, v BF16 [2, 2, 6, 16]
tests/fixtures/attn/bad_shapes.safetensors  k's head dimension (7) differs from q's (8)
tests/fixtures/attn/expected.safetensors    the outputs, computed here in float64 straight from
                                            the definition: "cross", "causal_cross" (of
                                            cross.safetensors), "self", "causal" (of
                                            self_bf16.safetensors, its BF16 values widened)

The expected outputs come from this independent numpy implementation, not from libcore.
Everything is seeded, so rerunning reproduces the committed bytes.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "attn")


def attention(q, k, v, causal, bias=None, key_padding=None):
    """softmax(q k^T / sqrt(d) + bias) v per head, float64. The causal mask is aligned to the
    last key (query i sees keys j <= i + Lk - Lq); a row that sees no key is zero."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, H, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    group = H // Hkv
    out = np.zeros((B, H, Lq, v.shape[3]))
    visible = np.ones((Lq, Lk), bool)
    if causal:
        visible &= np.arange(Lk)[None, :] <= np.arange(Lq)[:, None] + (Lk - Lq)
    for b in range(B):
        for h in range(H):
            scores = q[b, h] @ k[b, h // group].T / np.sqrt(D)
            if bias is not None:
                scores += bias[min(b, bias.shape[0] - 1), min(h, bias.shape[1] - 1)]
            seen = visible.copy()
            if key_padding is not None:
                seen &= ~key_padding[b][None, :]
            for i in range(Lq):
                if not seen[i].any():
                    continue
                s = np.where(seen[i], scores[i], -np.inf)
                p = np.exp(s - s.max())
                out[b, h, i] = (p / p.sum()) @ v[b, h // group]
    return out.astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20251128)

    def uniform(*shape):
        return rng.uniform(-1, 1, shape).astype(np.float32)

    q, k, v = uniform(1, 2, 5, 8), uniform(1, 1, 7, 8), uniform(1, 1, 7, 8)
    bias = uniform(1, 2, 5, 7)
    padding = np.zeros((1, 7), bool)
    padding[0, 3] = True
    st.save(os.path.join(OUT, "cross.safetensors"),
            {"q": q, "k": k, "v": v, "bias": bias, "key_padding": padding})

    sq, sk, sv = (st.BF16.from_float(uniform(2, 2, 6, 16)) for _ in range(3))
    st.save(os.path.join(OUT, "self_bf16.safetensors"), {"q": sq, "k": sk, "v": sv})

    st.save(os.path.join(OUT, "bad_shapes.safetensors"),
            {"q": q, "k": uniform(1, 1, 7, 7), "v": v})

    wide = [x.to_float() for x in (sq, sk, sv)]
    st.save(os.path.join(OUT, "expected.safetensors"), {
        "cross": attention(q, k, v, False, bias, padding),
        "causal_cross": attention(q, k, v, True, bias, padding),
        "self": attention(*wide, False),
        "causal": attention(*wide, True),
    })


if __name__ == "__main__":
    main()
