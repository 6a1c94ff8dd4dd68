#!/usr/bin/python3
"""Writes the parity fixtures of lr_rat_attention (tests/unit/test_rat.c):

    /usr/bin/python3 tools/make_rat_fixtures.py      (from the repository root)

tests/fixtures/rat/<case>.safetensors holds F32 q [B, H, L, D], k [B, H, L, D], v [B, H, L, D],
gates [B, H, L, D] and expected [B, H, L, D], with metadata "chunk", "rope_base" ("0": none)
and "scale" ("0": 1/sqrt(D)).

The expected output follows the forward of the authors' RAT layer (github.com/CLAIRE-Labo/RAT,
src/model/backbone/rat; read in the lxtf1216/RAT mirror of that repository), written here
independently in float64 PyTorch, step for step:
  - the gates g = sigmoid(g_proj + gate_bias), gate_bias = log(U(1, C - 1)) as their
    init_weights; q and k come from ngroups heads repeated to all heads (k.repeat), as theirs;
  - the intra-chunk scan of cat([v, k]) with the gate repeated for both halves: per chunk,
    h_0 = (1 - g_0) x_0, h_l = g_l h_(l-1) + (1 - g_l) x_l (their associative-scan operator);
  - InterRoPE: cos/sin of chunk index * inv_freq, repeated over each chunk's tokens, applied
    in rotate-half form to q and to the aggregated keys (apply_rotary_pos_emb);
  - chunk_intra_k/v = the states at positions C - 1 :: C; flex attention of q over them with
    the block-causal mask q_idx // C > kv_idx, returning its log-sum-exp (here an explicit
    masked softmax; rows with no visible chunk get lse -inf as flex attention gives);
  - intra_lse = scale * q . k~_t and merge_last_token_naive of the two.
They assert L % C == 0, so the fixtures do too. Everything is seeded: rerunning reproduces
the committed bytes.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "rat")


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def interrope(L, C, D, base):
    """(cos, sin) [L, D]: the chunk index of each token times inv_freq, as InterRoPE."""
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    t = torch.arange(L // C, dtype=torch.float64)
    freqs = torch.einsum("i,j->ij", t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos().unsqueeze(-2).repeat(1, C, 1).flatten(0, 1),
            emb.sin().unsqueeze(-2).repeat(1, C, 1).flatten(0, 1))


def chunk_scan(g, x):
    """g, x [B, n_chunk, C, P]: the scan along dim 2, h_l = g_l h_(l-1) + x_l from h = 0."""
    out = torch.empty_like(x)
    h = torch.zeros_like(x[:, :, 0])
    for l in range(x.shape[2]):
        h = g[:, :, l] * h + x[:, :, l]
        out[:, :, l] = h
    return out


def rat_forward(q, k, v, g, C, rope_base, scale):
    """q, k, v, g [B, H, L, D] float64 (per head, after the repeat): the RAT operator."""
    B, H, L, D = q.shape
    n = L // C
    # Their layout: (b, l, d_model) with d_model = H * D, heads contiguous in the channel.
    to_bld = lambda t: t.transpose(1, 2).reshape(B, L, H * D)  # noqa: E731
    x, kk, gg = to_bld(v), to_bld(k), to_bld(g)
    x, gg, kk = (t.reshape(B, n, C, H * D) for t in (x, gg, kk))
    gg = gg.repeat(1, 1, 1, 2)
    intra_xk = chunk_scan(gg, (1.0 - gg) * torch.cat([x, kk], dim=-1))
    intra_x = intra_xk[..., :H * D].reshape(B, L, H, D).transpose(1, 2)
    intra_k = intra_xk[..., H * D:].reshape(B, L, H, D).transpose(1, 2)
    if rope_base > 0:
        cos, sin = interrope(L, C, D, rope_base)
        cos, sin = cos[None, None], sin[None, None]
        q = q * cos + rotate_half(q) * sin
        intra_k = intra_k * cos + rotate_half(intra_k) * sin
    chunk_k = intra_k[..., C - 1::C, :]
    chunk_x = intra_x[..., C - 1::C, :]
    scores = torch.einsum("bhld,bhjd->bhlj", q, chunk_k) * scale
    visible = (torch.arange(L)[:, None] // C) > torch.arange(n)[None, :]
    scores = scores.masked_fill(~visible, -math.inf)
    inter_lse = torch.logsumexp(scores, dim=-1)
    probs = torch.exp(scores - inter_lse[..., None])
    inter_out = torch.where(torch.isfinite(inter_lse)[..., None],
                            torch.einsum("bhlj,bhjd->bhld", torch.nan_to_num(probs), chunk_x),
                            torch.zeros_like(q))
    intra_lse = torch.einsum("bhld,bhld->bhl", q, intra_k) * scale
    # merge_last_token_naive
    max_lse = torch.maximum(inter_lse, intra_lse)
    inter_e = torch.exp(inter_lse - max_lse)
    intra_e = torch.exp(intra_lse - max_lse)
    return inter_out * (inter_e / (inter_e + intra_e))[..., None] + \
        intra_x * (intra_e / (inter_e + intra_e))[..., None]


def make_case(name, seed, B, H, ngroups, L, D, C, rope_base, scale):
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    # Projections' outputs: q and k for ngroups heads, repeated as their k.repeat does
    # (head h reads group h % ngroups), v and the gate per head.
    q = rand(B, L, ngroups * D).repeat(1, 1, H // ngroups).reshape(B, L, H, D).transpose(1, 2)
    k = rand(B, L, ngroups * D).repeat(1, 1, H // ngroups).reshape(B, L, H, D).transpose(1, 2)
    v = rand(B, H, L, D)
    gate_bias = torch.log(1.0 + (C - 2) * torch.rand(H * D, generator=gen, dtype=torch.float64))
    g = torch.sigmoid(rand(B, L, H * D) + gate_bias).reshape(B, L, H, D).transpose(1, 2)
    # The kernel reads float32 inputs: round them first so both sides see the same values.
    q, k, v, g = (t.float().double().contiguous() for t in (q, k, v, g))
    used_scale = scale if scale > 0 else D ** -0.5
    expected = rat_forward(q, k, v, g, C, rope_base, used_scale)
    tensors = {n: t.float().contiguous() for n, t in
               (("q", q), ("k", k), ("v", v), ("gates", g), ("expected", expected))}
    meta = {"chunk": str(C), "rope_base": repr(float(rope_base)), "scale": repr(float(scale))}
    st.save(os.path.join(OUT, name + ".safetensors"), tensors, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    # rat-xl's form (interrope base 10000, shared q/k groups) at toy size.
    make_case("interrope", 1, B=1, H=2, ngroups=1, L=48, D=8, C=8, rope_base=10000.0, scale=0.0)
    # NoPE, a small chunk, two batches, an explicit scale.
    make_case("nope", 2, B=2, H=2, ngroups=1, L=24, D=6, C=4, rope_base=0.0, scale=0.5)


if __name__ == "__main__":
    main()
