#!/usr/bin/env python3
"""HyenaDNA in PyTorch: the independent reference for libcore's lr_hyenadna (hyenadna.h),
its parity fixtures and its speed comparison.

Written from the definitions of HazyResearch/hyena-dna (standalone_hyenadna.py) and of the
Hugging Face `LongSafari/hyenadna-*-hf` checkpoints (modeling_hyena.py, configuration_hyena.py),
module by module with the same attribute names, so `state_dict()` keys are the official ones
(hyena.backbone.embeddings.word_embeddings.weight, hyena.backbone.layers.0.mixer.in_proj.weight,
...filter_fn.implicit_filter.0.weight, ...filter_fn.pos_emb.z, ...modulation.deltas,
hyena.backbone.ln_f.weight, lm_head.weight). Numerics followed:
  * HyenaSin: sin(freq * x), freq a [1, filter_order] parameter (train_freq) or the constant
    activation_freq; one module shared by every Sin of the filter MLP;
  * positional features z = [t, Re, Im of exp(-i f w)] over max_seq_len positions, sliced;
  * ExponentialModulation with shift 0.05: h * (exp(-t |deltas|) + 0.05) (config key
    modulation_shift, ours: the training repository's class defaults to 0.0);
  * fftconv: rfft of u and k at n = 2L, k's spectrum / 2L, irfft norm='forward', first L,
    plus u * D; D is the filter's `bias` when use_bias is true and 0 otherwise (the training
    code's `bias if self.use_bias else 0 * bias`; HF's forward always adds it and its configs
    all set use_bias true);
  * short filter: depthwise Conv1d(3d, 3d, 3, padding=2), first L outputs;
  * block: h + mixer(norm1(h)), then + mlp(norm2(.)); norm1/norm2 eps 1e-5 (nn.LayerNorm's
    default, as HF), ln_f eps layer_norm_epsilon; MLP gelu(approximate='tanh');
  * lm_head: its own weight when the file has lm_head.weight, else tied to the embeddings.

    /usr/bin/python3 tools/hyenadna_torch.py fixtures [--out tests/fixtures/hyenadna]
    /usr/bin/python3 tools/hyenadna_torch.py forward MODEL_DIR ACGT...      # hidden + ll
    /usr/bin/python3 tools/hyenadna_torch.py bench-model DIR [--d 128 --layers 2 --max-len N]
    /usr/bin/python3 tools/hyenadna_torch.py bench [--d 128 --layers 2 -L 1024,32768] [--threads 2]

Fixtures (float64 reference, weights rounded to the stored dtype first), per model NAME a
directory NAME/ (config.json + model.safetensors, the -hf layout) and NAME.expected.safetensors:
  ids [L] U8, rows [R] I32 (token positions kept), hidden [R, d] F32, token_ll [R] F32 (at
  those positions), ll_total [1] F64 (over all L tokens).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

DEFAULTS = dict(vocab_size=12, d_model=256, d_inner=None, use_bias=True, train_freq=True,
                max_seq_len=1024, emb_dim=3, n_layer=12, num_inner_mlps=2, hyena_order=2,
                short_filter_order=3, filter_order=64, activation_freq=1,
                layer_norm_epsilon=1e-5, pad_vocab_size_multiple=8, tie_word_embeddings=True,
                modulation_shift=0.05)

TOKENS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6,
          "A": 7, "C": 8, "G": 9, "T": 10, "N": 11}


def tokenize(seq):
    """The official CharacterTokenizer (case-sensitive: anything but A C G T N is [UNK])."""
    return [TOKENS[ch] if ch in ("A", "C", "G", "T", "N") else TOKENS["[UNK]"] for ch in seq]


class Cfg:
    def __init__(self, **kw):
        for k, v in DEFAULTS.items():
            setattr(self, k, kw.get(k, v))
        if self.d_inner is None:
            self.d_inner = 4 * self.d_model
        m = self.pad_vocab_size_multiple
        self.vocab_padded = (self.vocab_size + m - 1) // m * m


class Sin(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c.train_freq:
            self.freq = nn.Parameter(c.activation_freq * torch.ones(1, c.filter_order))
        else:
            self.freq = c.activation_freq  # not part of the state

    def forward(self, x):
        return torch.sin(self.freq * x)


class PositionalFeatures(nn.Module):
    """Module name pos_emb: buffers z [1, N, emb_dim] and t [1, N, 1] over N = max_seq_len."""

    def __init__(self, c):
        super().__init__()
        n = c.max_seq_len
        bands = (c.emb_dim - 1) // 2
        tn = torch.linspace(0, 1, n, dtype=torch.float64)[None, :, None]
        pos = torch.arange(n, dtype=torch.float64)[None, :, None]
        angle = 2 * math.pi * pos / n
        f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)[None, None]
        z = torch.cat([tn, torch.cos(f * angle), -torch.sin(f * angle)], dim=-1)
        self.register_buffer("z", z)
        self.register_buffer("t", tn)

    def forward(self, length):
        return self.z[:, :length], self.t[:, :length]


class Modulation(nn.Module):
    def __init__(self, c, shift=0.05):
        super().__init__()
        self.shift = shift
        lo, hi = math.log(1e-2) / 1.5, math.log(1e-2) / 0.3
        self.register_buffer("deltas", torch.linspace(lo, hi, c.d_model, dtype=torch.float64)[None, None])

    def forward(self, t, h):
        return h * (torch.exp(-t * self.deltas.abs()) + self.shift)


class ImplicitFilter(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.use_bias = c.use_bias
        self.bias = nn.Parameter(torch.randn(c.d_model))
        self.pos_emb = PositionalFeatures(c)
        act = Sin(c)  # shared, as the official code shares it
        layers = [nn.Linear(c.emb_dim, c.filter_order), act]
        for _ in range(c.num_inner_mlps):
            layers += [nn.Linear(c.filter_order, c.filter_order), act]
        layers.append(nn.Linear(c.filter_order, c.d_model, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = Modulation(c, c.modulation_shift)

    def taps(self, length):
        """k [d, length]."""
        z, t = self.pos_emb(length)
        h = self.modulation(t, self.implicit_filter(z.to(self.implicit_filter[0].weight.dtype)))
        return h[0].transpose(0, 1)

    def skip(self):
        return self.bias if self.use_bias else torch.zeros_like(self.bias)


def fftconv(u, k, D):
    """u [B, d, L], k [d, L], D [d]: the official FFT convolution."""
    n = u.shape[-1]
    size = 2 * n
    kf = torch.fft.rfft(k, n=size) / size
    uf = torch.fft.rfft(u, n=size)
    y = torch.fft.irfft(uf * kf, n=size, norm="forward")[..., :n]
    return y + u * D[:, None]


class HyenaOp(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c.d_model
        assert c.hyena_order == 2 and c.short_filter_order == 3
        self.d = d
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.short_filter = nn.Conv1d(3 * d, 3 * d, 3, padding=2, groups=3 * d)
        self.filter_fn = ImplicitFilter(c)

    def forward(self, a):
        n = a.shape[1]
        p = self.in_proj(a).transpose(1, 2)
        q = self.short_filter(p)[..., :n]
        x0, x1, v = q.split(self.d, dim=1)
        y = fftconv(v * x1, self.filter_fn.taps(n), self.filter_fn.skip())
        return self.out_proj((y * x0).transpose(1, 2))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c.d_model, c.d_inner)
        self.fc2 = nn.Linear(c.d_inner, c.d_model)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.mixer = HyenaOp(c)
        self.norm1 = nn.LayerNorm(c.d_model)
        self.mlp = Mlp(c)
        self.norm2 = nn.LayerNorm(c.d_model)

    def forward(self, h):
        h = h + self.mixer(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_padded, c.d_model)


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_epsilon)

    def forward(self, ids):
        h = self.embeddings.word_embeddings(ids)
        for layer in self.layers:
            h = layer(h)
        return self.ln_f(h)


class Wrapper(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = Backbone(c)


class HyenaDNALM(nn.Module):
    """HyenaDNAForCausalLM's layout: hyena.backbone.* and lm_head.weight."""

    def __init__(self, c):
        super().__init__()
        self.cfg = c
        self.hyena = Wrapper(c)
        self.lm_head = nn.Linear(c.d_model, c.vocab_padded, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.hyena.backbone.embeddings.word_embeddings.weight

    def forward(self, ids):
        return self.hyena.backbone(ids)

    def log_likelihood(self, hidden, ids):
        """Per token log p(ids[t] | ids[<t]) (0 at t = 0) and the sum, in hidden's dtype."""
        logp = torch.log_softmax(self.lm_head(hidden), dim=-1)
        ll = torch.zeros(ids.shape, dtype=hidden.dtype)
        ll[:, 1:] = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        return ll, ll.sum()


# ---- files -----------------------------------------------------------------------------------

def load(path, dtype=torch.float64):
    """A model directory (config.json + model.safetensors) written by `save` or by HF."""
    with open(os.path.join(path, "config.json")) as f:
        conf = json.load(f)
    c = Cfg(**{k: v for k, v in conf.items() if k in DEFAULTS})
    tensors, _ = st.load(os.path.join(path, "model.safetensors"))
    model = HyenaDNALM(c).to(dtype)
    state = model.state_dict()
    prefix = "hyena." if any(k.startswith("hyena.backbone.") for k in tensors) else ""

    def file_name(key):
        return key if key == "lm_head.weight" else prefix + key[len("hyena."):]

    freq = {}  # the shared Sin's frequency, under whichever name the file kept
    for k in tensors:
        if k.endswith(".freq"):
            freq[k.rsplit(".implicit_filter.", 1)[0]] = tensors[k]
    new = {}
    for key in state:
        src = file_name(key)
        if src in tensors:
            arr = tensors[src]
        elif key.endswith(".freq"):
            arr = freq[src.rsplit(".implicit_filter.", 1)[0]]
        elif key == "lm_head.weight":  # tied
            arr = tensors[file_name("hyena.backbone.embeddings.word_embeddings.weight")]
        elif key.endswith(("pos_emb.z", "pos_emb.t", "modulation.deltas")):
            continue  # buffers the file may leave out: the computed ones stay
        elif key.endswith("filter_fn.bias") and not c.use_bias:
            continue
        else:
            raise KeyError("%s: tensor %s missing" % (path, src))
        if isinstance(arr, st.BF16):
            arr = arr.to_float()
        new[key] = torch.from_numpy(np.asarray(arr, dtype=np.float64)).to(dtype).reshape(state[key].shape)
    model.load_state_dict(new, strict=False)
    return model


def save(model, path, drop=(), f16=(), prefix="hyena.", extra_config=None):
    """Writes the -hf layout. drop: state keys left out of the file; f16: keys stored F16.
    Returns the file's tensors as float64 numpy (the values the reference must use)."""
    c = model.cfg
    os.makedirs(path, exist_ok=True)
    conf = {k: getattr(c, k) for k in DEFAULTS if k != "modulation_shift" or c.modulation_shift != 0.05}
    conf.update({"model_type": "hyenadna", "architectures": ["HyenaDNAForCausalLM"]})
    conf.update(extra_config or {})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    out = {}
    for key, value in model.state_dict().items():
        if key in drop or (key == "lm_head.weight" and c.tie_word_embeddings):
            continue
        name = key if key == "lm_head.weight" else prefix + key[len("hyena."):]
        a = value.detach().cpu().numpy()
        out[name] = a.astype(np.float16) if key in f16 else a.astype(np.float32)
    st.save(os.path.join(path, "model.safetensors"), out)


def randomize(model, seed):
    """Weights that make every part of the model matter (the official init keeps a fresh
    model close to the identity); then rounded to float32 so C and the reference share them."""
    g = torch.Generator().manual_seed(seed)
    c = model.cfg

    def rn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if "norm" in name or "ln_f" in name:
                p.copy_(1 + rn(*p.shape, scale=0.2) if leaf == "weight" else rn(*p.shape, scale=0.1))
            elif "implicit_filter" in name and leaf == "freq":
                p.copy_(c.activation_freq * (1 + rn(*p.shape, scale=0.05)))
            elif "implicit_filter" in name:
                fan = p.shape[-1] if p.dim() == 2 else c.filter_order
                p.copy_((torch.rand(*p.shape, generator=g, dtype=torch.float64) * 2 - 1) / math.sqrt(fan))
            elif name.endswith("filter_fn.bias"):
                p.copy_(rn(*p.shape))
            elif "short_filter" in name:
                p.copy_(rn(*p.shape, scale=0.5) if leaf == "weight" else rn(*p.shape, scale=0.1))
            elif "word_embeddings" in name:
                p.copy_(rn(*p.shape))
            elif leaf == "weight":
                p.copy_(rn(*p.shape, scale=1 / math.sqrt(p.shape[1])))
            else:
                p.copy_(rn(*p.shape, scale=0.1))
            p.copy_(p.float().double())
        for name, b in model.named_buffers():
            b.copy_(b.float().double())


def write_fixture(out, name, conf, L, seed, rows=None, drop=(), f16=(), prefix="hyena."):
    c = Cfg(**conf)
    model = HyenaDNALM(c).double()
    randomize(model, seed)
    if f16:
        with torch.no_grad():
            for key, p in model.state_dict().items():
                if key in f16:
                    p.copy_(p.half().double())
    mdir = os.path.join(out, name)
    save(model, mdir, drop=drop, f16=f16, prefix=prefix)
    # The reference runs on what the file holds: buffers left out are recomputed in float64.
    ref = load(mdir)
    rng = np.random.default_rng(seed)
    ids = rng.choice([7, 8, 9, 10], size=L, p=[0.3, 0.2, 0.2, 0.3])
    ids[rng.random(L) < 0.01] = 11  # a few N
    ids[:3] = [0, 2, 7]  # specials too
    ids[rng.random(L) < 0.002] = 6
    tid = torch.from_numpy(ids.astype(np.int64))[None]
    with torch.no_grad():
        hidden = ref(tid)
        ll, total = ref.log_likelihood(hidden, tid)
    if rows is None:
        rows = np.arange(L)
    rows = np.asarray(rows, dtype=np.int32)
    st.save(os.path.join(out, name + ".expected.safetensors"), {
        "ids": ids.astype(np.uint8),
        "rows": rows,
        "hidden": hidden[0].numpy()[rows].astype(np.float32),
        "token_ll": ll[0].numpy()[rows].astype(np.float32),
        "ll_total": np.array([total.item()], dtype=np.float64),
    }, {"model": name, "length": str(L)})
    print("%s: L=%d d=%d, %d rows, |hidden| max %.3f, ll %.4f (%.4f bits/token)" % (
        name, L, c.d_model, len(rows), hidden.abs().max().item(), total.item(),
        -total.item() / (L - 1) / math.log(2)))


def cmd_fixtures(args):
    out = args.out
    os.makedirs(out, exist_ok=True)
    # 1k: separate lm_head, use_bias true, buffers stored, freq kept under one name (as HF's
    # safetensors export keeps one of the shared names).
    base = dict(d_model=40, n_layer=2, d_inner=96, max_seq_len=1026, emb_dim=5, filter_order=32,
                num_inner_mlps=2, activation_freq=10, tie_word_embeddings=False)
    drop_freq = tuple("hyena.backbone.layers.%d.mixer.filter_fn.implicit_filter.%d.freq" % (i, j)
                      for i in range(2) for j in (3, 5))
    write_fixture(out, "bias1k", base, 1000, 1, drop=drop_freq)
    # 1k without the skip term: use_bias false (filter_fn.bias still in the file, ignored),
    # constant Sin frequency, tied head, HyenaDNAModel's "backbone." names, F16 MLP weights.
    nob = dict(d_model=32, n_layer=2, max_seq_len=1024, emb_dim=3, filter_order=16, num_inner_mlps=1,
               activation_freq=7.5, use_bias=False, train_freq=False, layer_norm_epsilon=1e-6)
    f16 = tuple("hyena.backbone.layers.%d.mlp.fc%d.weight" % (i, j) for i in range(2) for j in (1, 2))
    write_fixture(out, "nobias1k", nob, 1024, 2, f16=f16, prefix="")
    # 32k: buffers left out (the C side computes z, t and deltas), every 64th token and the
    # last 256 stored.
    long_conf = dict(d_model=32, n_layer=2, d_inner=64, max_seq_len=32768, emb_dim=5, filter_order=16,
                     num_inner_mlps=2, activation_freq=10)
    drop = tuple("hyena.backbone.layers.%d.mixer.filter_fn.%s" % (i, b) for i in range(2)
                 for b in ("pos_emb.z", "pos_emb.t", "modulation.deltas"))
    L = 32768
    rows = sorted(set(range(0, L, 64)) | set(range(L - 256, L)))
    write_fixture(out, "long32k", long_conf, L, 3, rows=rows, drop=drop)


def cmd_forward(args):
    model = load(args.model)
    ids = torch.tensor([tokenize(args.sequence)])
    with torch.no_grad():
        h = model(ids)
        ll, total = model.log_likelihood(h, ids)
    np.set_printoptions(precision=5, suppress=True, linewidth=150)
    print("hidden[-1][:8]", h[0, -1, :8].numpy())
    print("log_likelihood %.6f" % total.item())


def bench_config(d, layers, max_len):
    return dict(d_model=d, n_layer=layers, max_seq_len=max_len, emb_dim=5, filter_order=64,
                num_inner_mlps=2, activation_freq=10)


def cmd_bench_model(args):
    c = Cfg(**bench_config(args.d, args.layers, args.max_len))
    model = HyenaDNALM(c).double()
    randomize(model, 7)
    save(model, args.dir)
    print("wrote", args.dir)


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.L.split(",")]
    c = Cfg(**bench_config(args.d, args.layers, max(lengths)))
    model = HyenaDNALM(c).float().eval()
    import resource
    for L in lengths:
        ids = torch.randint(7, 11, (1, L))
        with torch.no_grad():
            model(ids[:, :min(L, 1024)])  # warm up
            best = float("inf")
            for _ in range(args.reps if L <= 65536 else 1):
                t0 = time.perf_counter()
                model(ids)
                best = min(best, time.perf_counter() - t0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("torch float32 threads=%d d=%d layers=%d L=%d: %.4f s, %.0f tokens/s, peak RSS %.0f MiB" % (
            args.threads, args.d, args.layers, L, best, L / best, rss))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fixtures")
    p.add_argument("--out", default="tests/fixtures/hyenadna")
    p = sub.add_parser("forward")
    p.add_argument("model")
    p.add_argument("sequence")
    p = sub.add_parser("bench-model")
    p.add_argument("dir")
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--max-len", type=int, default=1 << 20)
    p = sub.add_parser("bench")
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("-L", default="1024,32768")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    {"fixtures": cmd_fixtures, "forward": cmd_forward, "bench-model": cmd_bench_model,
     "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
