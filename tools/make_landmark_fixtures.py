#!/usr/bin/python3
"""Writes the parity fixtures of landmark attention (tests/unit/test_landmark.c):

    /usr/bin/python3 tools/make_landmark_fixtures.py      (from the repository root)

tests/fixtures/landmark/<case>.safetensors holds q, k, v F32 [B, H, L, D], the expected
outputs "grouped" (the training-time grouped softmax) and, where the case asks for it,
"retrieval" (top-k blocks per query and head), F32 [B, H, L, D], and __metadata__
block_size, top_k:

    case1   B=1, H=2, L=40, D=8, block_size 8, top_k 2   (whole blocks)
    case2   B=2, H=2, L=70, D=8, block_size 10, top_k 3  (a partial last block)
    case3   B=1, H=2, L=45, D=8, block_size 2, top_k 5   (one regular token per block)

The reference is an independent float64 PyTorch implementation that follows the official
code (epfml/landmark-attention, models/landmark.py: CausalSelfAttention.forward builds
mem_ids, last_section_mask and the masks; landmark_grouped_softmax groups the scores):
landmarks sit at the positions j with (j + 1) % block_size == 0 (one after every
mem_freq = block_size - 1 tokens), the current block's landmark is hidden from every query
of that block (the landmark query included), the current block's regular tokens share one
softmax group with the landmarks of earlier blocks, each earlier block's regular tokens get
their within-block softmax times their landmark's probability, and landmark values get no
weight. Retrieval (llama/llama_mem.py, cache_top_k): per query and head, the top k earlier
blocks by landmark score take part, the others are hidden entirely (landmark and tokens),
and the same grouped softmax runs over what is left. Scale 1/sqrt(D). Seeded: rerunning
reproduces the committed bytes.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "landmark")


def grouped_softmax_attention(q, k, v, block_size, hidden=None):
    """Landmark attention of q, k, v [B, H, T, D] (float64). hidden: optional bool
    [B, H, T, T], extra (query, key) pairs to hide (retrieval's dropped blocks)."""
    B, H, T, D = q.shape
    att = q @ k.transpose(-2, -1) / math.sqrt(D)
    pos = torch.arange(T)
    causal_hidden = (pos[None, :] > pos[:, None]).expand(B, H, T, T)
    is_mem = ((pos + 1) % block_size == 0).expand(B, H, T, T)
    attn_mask = causal_hidden.clone()
    if hidden is not None:
        attn_mask |= hidden
    # the block of each key: landmarks strictly before it (the landmark ends its block)
    before = torch.cumsum(is_mem.long(), -1) - is_mem.long()
    # the query's own block is the last block it sees: judge it from the causal mask alone,
    # as the official code does (retrieval never hides the own block)
    mem_ids = torch.where(causal_hidden, torch.zeros_like(before), before)
    last_section = mem_ids == mem_ids.amax(-1, keepdim=True)
    mask = attn_mask | (is_mem & last_section)
    last_section = last_section & ~mask
    is_mem = is_mem & ~mask
    att = att.masked_fill(mask, float("-inf"))

    # groups: the top group (own block's tokens and visible landmarks) and one per earlier
    # block for its regular tokens (block index = landmarks up to the key)
    n_groups = T // block_size + 2
    top = n_groups - 1
    block_of = torch.cumsum(is_mem.long(), -1)
    group = torch.where(last_section | mask | is_mem, torch.full_like(block_of, top), block_of)
    probs = torch.zeros_like(att)
    for g in range(n_groups):
        sel = group == g
        x = att.masked_fill(~sel, float("-inf"))
        mx = x.amax(-1, keepdim=True)
        mx = torch.where(torch.isinf(mx), torch.zeros_like(mx), mx)
        e = torch.exp(x - mx)
        denom = e.sum(-1, keepdim=True)
        p = torch.where(denom > 0, e / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(e))
        probs = probs + torch.where(sel, p, torch.zeros_like(p))
    # each earlier block's weight: its landmark's probability in the top group
    block_prob = torch.zeros(B, H, T, n_groups, dtype=att.dtype)
    lm_block = torch.where(is_mem, block_of - 1, torch.full_like(block_of, top))
    block_prob.scatter_add_(-1, lm_block, torch.where(is_mem, probs, torch.zeros_like(probs)))
    weight = torch.where(last_section | mask | is_mem, last_section.to(att.dtype),
                         torch.gather(block_prob, -1, block_of.clamp(max=top)))
    return (probs * weight) @ v


def retrieval_hidden(q, k, block_size, top_k):
    """The pairs retrieval hides: for query i in block c, the blocks below c that are not
    among its top_k by landmark score (torch.topk, as llama_mem.py's mem_selected_idx)."""
    B, H, T, D = q.shape
    hidden = torch.zeros(B, H, T, T, dtype=torch.bool)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    for i in range(T):
        c = i // block_size
        if c <= top_k:
            continue
        lm = scores[:, :, i, [b * block_size + block_size - 1 for b in range(c)]]  # [B, H, c]
        keep = torch.zeros(B, H, c, dtype=torch.bool)
        keep.scatter_(-1, lm.topk(top_k, dim=-1).indices, True)
        for b in range(c):
            drop = ~keep[:, :, b]
            hidden[:, :, i, b * block_size:(b + 1) * block_size] |= drop[:, :, None]
    return hidden


def make_case(name, seed, B, H, T, D, block_size, top_k):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.rand(B, H, T, D, generator=g, dtype=torch.float32) * 4 - 2 for _ in range(3))
    q64, k64, v64 = (x.double() for x in (q, k, v))
    grouped = grouped_softmax_attention(q64, k64, v64, block_size)
    retrieval = grouped_softmax_attention(q64, k64, v64, block_size, retrieval_hidden(q64, k64, block_size, top_k))
    tensors = {"q": q, "k": k, "v": v, "grouped": grouped.float(), "retrieval": retrieval.float()}
    meta = {"block_size": str(block_size), "top_k": str(top_k)}
    st.save(os.path.join(OUT, name + ".safetensors"), {n: t.numpy() for n, t in tensors.items()}, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_case("case1", 1, 1, 2, 40, 8, 8, 2)
    make_case("case2", 2, 2, 2, 70, 8, 10, 3)
    make_case("case3", 3, 1, 2, 45, 8, 2, 5)


if __name__ == "__main__":
    main()
