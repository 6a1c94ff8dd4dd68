#!/usr/bin/env python3
"""Informer (Zhou et al., AAAI 2021) in PyTorch: the reference for timeseries-forecast's
"informer" model, its fixtures and its training on ETTh1.

An independent implementation that follows thuml/Time-Series-Library (models/Informer.py,
layers/Transformer_EncDec.py, layers/SelfAttention_Family.py, layers/Embed.py,
utils/timefeatures.py) module by module, so state_dict keys are the official ones:

    enc_embedding.value_embedding.tokenConv.weight      [d_model, enc_in, 3]  (circular pad 1)
    enc_embedding.temporal_embedding.embed.weight       [d_model, n_time_features]  (no bias)
    encoder.attn_layers.{i}.attention.{query,key,value,out}_projection.{weight,bias}
    encoder.attn_layers.{i}.conv1.weight [d_ff, d_model, 1], conv2.weight [d_model, d_ff, 1]
    encoder.attn_layers.{i}.norm1/norm2.{weight,bias}
    encoder.conv_layers.{i}.downConv.{weight,bias} [d_model, d_model, 3]  (circular pad 2)
    encoder.conv_layers.{i}.norm.{weight,bias,running_mean,running_var}  (BatchNorm1d)
    encoder.norm.{weight,bias}
    dec_embedding.* (as enc_embedding, dec_in channels)
    decoder.layers.{j}.self_attention.*, cross_attention.*, conv1, conv2, norm1..norm3
    decoder.norm.{weight,bias}, decoder.projection.{weight,bias} [c_out, d_model]

Left out of our files: the positional table (enc_embedding.position_embedding.pe, a constant
buffer computed from d_model) and BatchNorm's num_batches_tracked (training bookkeeping).

Numerics of the chosen code (Time-Series-Library, not Informer2020):
  * every attention is ProbAttention (encoder: not causal; decoder self-attention: causal,
    cumulative-sum context; decoder cross-attention: not causal, mean context) - Informer2020
    uses full attention for the cross-attention instead;
  * ProbAttention returns the context as [B, H, L, D] and AttentionLayer views that memory as
    [B, L, H * D] (no transpose back), which mixes heads and positions; we do the same;
  * ConvLayer (distilling): Conv1d k=3 with circular padding 2 (so L -> L + 2), BatchNorm1d,
    ELU, MaxPool1d(3, 2, 1): L -> floor((L + 1) / 2) + 1 (96 -> 49);
  * the token embedding's Conv1d uses circular padding 1 (TSLib's intent; its version test
    `torch.__version__ >= '1.5.0'` compares strings);
  * timeF features for freq h: hour/23 - 0.5, weekday/6 - 0.5, (day-1)/30 - 0.5,
    (dayofyear-1)/365 - 0.5, in that order.

ProbSparse key sampling: the official code draws torch.randint(L_K, (L_Q, U)) for every call;
training here does the same. For inference (fixtures, the final test, our C model) the
indices come from a seed, with libcore's generator (lr_probsparse_sample_indices):
idx = floor(Lk * x / 2^64), x = splitmix64(seed + (i*U + j + 1) * 0x9e3779b97f4a7c15).
Attention module k (in forward order: encoder layers 0..e_layers-1, then for decoder layer j
its self-attention e_layers + 2j and cross-attention e_layers + 2j + 1) uses seed
sample_seed + k (mod 2^64); sample_seed is in the model file's metadata. A file may instead
give module k's indices as the I32 tensor probsparse.sample_index.<k> [Lq, U] (the "ms"
fixture does, with indices drawn by torch.randint as the official code draws them).

Subcommands: fixtures (random-weight test models for the C parity test), train (ETTh1, the
papers' split, TSLib's Informer_ETTh1.sh settings), export (an official checkpoint .pth to
our format), random (a random-weight ETTh1-shaped model at any seq_len, for timing).
"""

import argparse
import csv
import datetime
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

GOLDEN = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1


def sample_indices(seed, Lq, Lk, U):
    """libcore's lr_probsparse_sample_indices, [Lq, U] int64 (exact, in uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        n = np.arange(1, Lq * U + 1, dtype=np.uint64)
        z = np.uint64(seed & M64) + n * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        # floor(z * Lk / 2^64) in two 32-bit halves (Lk < 2^31), exact
        L = np.uint64(Lk)
        hi, lo = z >> np.uint64(32), z & np.uint64(0xFFFFFFFF)
        idx = (hi * L + ((lo * L) >> np.uint64(32))) >> np.uint64(32)
    return torch.from_numpy(idx.astype(np.int64).reshape(Lq, U))


# ---- time features (utils/timefeatures.py) -------------------------------------------------

FREQ_FEATURES = {"h": 4, "t": 5, "s": 6, "d": 3, "b": 3, "m": 1}


def time_features(times, freq):
    """times: datetime.datetime list -> float32 [L, n] in TSLib's order for freq."""
    rows = []
    for t in times:
        hour = t.hour / 23.0 - 0.5
        dow = t.weekday() / 6.0 - 0.5
        dom = (t.day - 1) / 30.0 - 0.5
        doy = (t.timetuple().tm_yday - 1) / 365.0 - 0.5
        minute = t.minute / 59.0 - 0.5
        second = t.second / 59.0 - 0.5
        month = (t.month - 1) / 11.0 - 0.5
        rows.append({
            "h": [hour, dow, dom, doy],
            "t": [minute, hour, dow, dom, doy],
            "s": [second, minute, hour, dow, dom, doy],
            "d": [dow, dom, doy],
            "b": [dow, dom, doy],
            "m": [month],
        }[freq])
    return np.array(rows, dtype=np.float64)


# ---- the model -----------------------------------------------------------------------------

class PositionalEmbedding(nn.Module):
    def __init__(self, d_model, max_len=5000):
        super().__init__()
        # built in float32 like the official buffer (the C model does the same)
        pe32 = torch.zeros(max_len, d_model)
        p32 = torch.arange(max_len).float()[:, None]
        d32 = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        pe32[:, 0::2] = torch.sin(p32 * d32)
        pe32[:, 1::2] = torch.cos(p32 * d32)
        self.register_buffer("pe", pe32[None], persistent=False)

    def forward(self, x):
        return self.pe[:, :x.size(1)].to(x.dtype)


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.tokenConv = nn.Conv1d(c_in, d_model, 3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.tokenConv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        return self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, freq):
        super().__init__()
        self.embed = nn.Linear(FREQ_FEATURES[freq], d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, freq, dropout):
        super().__init__()
        self.value_embedding = TokenEmbedding(c_in, d_model)
        self.position_embedding = PositionalEmbedding(d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model, freq)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, x_mark):
        return self.dropout(self.value_embedding(x) + self.temporal_embedding(x_mark) + self.position_embedding(x))


class ProbAttention(nn.Module):
    def __init__(self, mask_flag, factor):
        super().__init__()
        self.mask_flag = mask_flag
        self.factor = factor
        self.seed = None  # None: torch.randint as the official code; else libcore's draw
        self.index = None  # given sample indices [Lq, U] (win over the seed)

    def forward(self, q, k, v):
        # q [B, Lq, H, D] -> [B, H, Lq, D]
        B, Lq, H, D = q.shape
        Lk = k.shape[1]
        q, k, v = q.transpose(2, 1), k.transpose(2, 1), v.transpose(2, 1)
        U = min(self.factor * int(math.ceil(math.log(Lk))), Lk)
        u = min(self.factor * int(math.ceil(math.log(Lq))), Lq)
        if self.index is not None:
            idx = self.index
        elif self.seed is None:
            idx = torch.randint(Lk, (Lq, U))
        else:
            idx = sample_indices(self.seed, Lq, Lk, U)
        k_sample = k[:, :, idx, :]                                 # [B, H, Lq, U, D]
        qk_sample = torch.matmul(q.unsqueeze(-2), k_sample.transpose(-2, -1)).squeeze(-2)
        M = qk_sample.max(-1)[0] - qk_sample.sum(-1) / Lk          # [B, H, Lq]
        top = M.topk(u, sorted=False)[1]                           # [B, H, u]
        bi = torch.arange(B)[:, None, None]
        hi = torch.arange(H)[None, :, None]
        scores = torch.matmul(q[bi, hi, top], k.transpose(-2, -1)) / math.sqrt(D)  # [B, H, u, Lk]
        if self.mask_flag:
            assert Lq == Lk
            context = v.cumsum(dim=-2)
            keys = torch.arange(Lk)
            scores = scores.masked_fill(keys[None, None, None, :] > top[..., None], float("-inf"))
        else:
            context = v.mean(dim=-2, keepdim=True).expand(B, H, Lq, v.shape[-1]).clone()
        attn = torch.softmax(scores, dim=-1)
        context[bi, hi, top] = torch.matmul(attn, v).type_as(context)
        return context.contiguous()                                # [B, H, Lq, D], as TSLib


class AttentionLayer(nn.Module):
    def __init__(self, attention, d_model, n_heads):
        super().__init__()
        dk = d_model // n_heads
        self.inner_attention = attention
        self.query_projection = nn.Linear(d_model, dk * n_heads)
        self.key_projection = nn.Linear(d_model, dk * n_heads)
        self.value_projection = nn.Linear(d_model, dk * n_heads)
        self.out_projection = nn.Linear(dk * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values):
        B, L, _ = queries.shape
        S = keys.shape[1]
        H = self.n_heads
        q = self.query_projection(queries).view(B, L, H, -1)
        k = self.key_projection(keys).view(B, S, H, -1)
        v = self.value_projection(values).view(B, S, H, -1)
        out = self.inner_attention(q, k, v).view(B, L, -1)        # heads and positions mixed
        return self.out_projection(out)


class ConvLayer(nn.Module):
    def __init__(self, c_in):
        super().__init__()
        self.downConv = nn.Conv1d(c_in, c_in, 3, padding=2, padding_mode="circular")
        self.norm = nn.BatchNorm1d(c_in)
        self.activation = nn.ELU()
        self.maxPool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        x = self.downConv(x.permute(0, 2, 1))
        x = self.activation(self.norm(x))
        return self.maxPool(x).transpose(1, 2)


def _act(name):
    return F.relu if name == "relu" else F.gelu


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff, dropout, activation):
        super().__init__()
        self.attention = attention
        self.conv1 = nn.Conv1d(d_model, d_ff, 1)
        self.conv2 = nn.Conv1d(d_ff, d_model, 1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = _act(activation)

    def forward(self, x):
        x = self.norm1(x + self.dropout(self.attention(x, x, x)))
        y = self.dropout(self.activation(self.conv1(x.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        return self.norm2(x + y)


class Encoder(nn.Module):
    def __init__(self, attn_layers, conv_layers, norm_layer):
        super().__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.conv_layers = nn.ModuleList(conv_layers) if conv_layers is not None else None
        self.norm = norm_layer

    def forward(self, x):
        if self.conv_layers is not None:
            for attn_layer, conv_layer in zip(self.attn_layers, self.conv_layers):
                x = conv_layer(attn_layer(x))
            x = self.attn_layers[-1](x)
        else:
            for attn_layer in self.attn_layers:
                x = attn_layer(x)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, d_ff, dropout, activation):
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(d_model, d_ff, 1)
        self.conv2 = nn.Conv1d(d_ff, d_model, 1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = _act(activation)

    def forward(self, x, cross):
        x = self.norm1(x + self.dropout(self.self_attention(x, x, x)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, cross, cross)))
        y = self.dropout(self.activation(self.conv1(x.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        return self.norm3(x + y)


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer, projection):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm_layer
        self.projection = projection

    def forward(self, x, cross):
        for layer in self.layers:
            x = layer(x, cross)
        return self.projection(self.norm(x))


class Informer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pred_len = c["pred_len"]
        dm, nh, dff, dr, act, fac = c["d_model"], c["n_heads"], c["d_ff"], c["dropout"], c["activation"], c["factor"]
        self.enc_embedding = DataEmbedding(c["enc_in"], dm, c["freq"], dr)
        self.dec_embedding = DataEmbedding(c["dec_in"], dm, c["freq"], dr)
        self.encoder = Encoder(
            [EncoderLayer(AttentionLayer(ProbAttention(False, fac), dm, nh), dm, dff, dr, act)
             for _ in range(c["e_layers"])],
            [ConvLayer(dm) for _ in range(c["e_layers"] - 1)] if c["distil"] else None,
            nn.LayerNorm(dm))
        self.decoder = Decoder(
            [DecoderLayer(AttentionLayer(ProbAttention(True, fac), dm, nh),
                          AttentionLayer(ProbAttention(False, fac), dm, nh), dm, dff, dr, act)
             for _ in range(c["d_layers"])],
            nn.LayerNorm(dm), nn.Linear(dm, c["c_out"]))

    def attentions(self):
        """The ProbAttention modules in forward order (their seeds are sample_seed + k)."""
        mods = [layer.attention.inner_attention for layer in self.encoder.attn_layers]
        for layer in self.decoder.layers:
            mods += [layer.self_attention.inner_attention, layer.cross_attention.inner_attention]
        return mods

    def attention_shapes(self, c):
        """(Lq, Lk, U) of each ProbAttention in forward order."""
        L, shapes = c["seq_len"], []
        for i in range(c["e_layers"]):
            shapes.append((L, L))
            if c["distil"] and i + 1 < c["e_layers"]:
                L = (L + 1) // 2 + 1
        Ld = c["label_len"] + c["pred_len"]
        for _ in range(c["d_layers"]):
            shapes += [(Ld, Ld), (Ld, L)]
        return [(q, k, min(c["factor"] * int(math.ceil(math.log(k))), k)) for q, k in shapes]

    def set_sample_seed(self, seed):
        for k, m in enumerate(self.attentions()):
            m.seed = None if seed is None else (seed + k) & M64

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        enc = self.encoder(self.enc_embedding(x_enc, x_mark_enc))
        dec = self.decoder(self.dec_embedding(x_dec, x_mark_dec), enc)
        return dec[:, -self.pred_len:, :]


# ---- model files ---------------------------------------------------------------------------

META_KEYS = ["seq_len", "label_len", "pred_len", "d_model", "n_heads", "e_layers", "d_layers",
             "d_ff", "factor", "activation", "embed", "freq", "enc_in", "dec_in", "c_out",
             "distil", "features", "columns", "target", "sample_seed", "moving_avg"]


def save_model(path, model, cfg, mean, std, extra_meta=None, tensors=None):
    tensors = dict(tensors or {})
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        tensors[name] = t.detach().to(torch.float32).cpu().numpy()
    tensors["scaler.mean"] = np.asarray(mean, np.float32)
    tensors["scaler.std"] = np.asarray(std, np.float32)
    meta = {"arch": "informer", "reference": "thuml/Time-Series-Library models/Informer.py"}
    for k in META_KEYS:
        if k in cfg:
            v = cfg[k]
            meta[k] = ("1" if v else "0") if isinstance(v, bool) else str(v)
    meta.update(extra_meta or {})
    st.save(path, tensors, meta)


def parse_dates(strings):
    return [datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in strings]


def forecast_window(model, cfg, x_raw, times, mean, std, step, dtype):
    """The C model's forward for one window: x_raw [>= seq_len, C] (raw units), times its dates
    (datetime), step a timedelta. Returns [pred_len, c_out] in raw units."""
    L, LL, P = cfg["seq_len"], cfg["label_len"], cfg["pred_len"]
    x = (np.asarray(x_raw[-L:], np.float64) - mean) / std
    t_enc = times[-L:]
    t_dec = t_enc[L - LL:] + [t_enc[-1] + step * (h + 1) for h in range(P)]
    xe = torch.tensor(x, dtype=dtype)[None]
    me = torch.tensor(time_features(t_enc, cfg["freq"]), dtype=dtype)[None]
    xd = torch.cat([xe[:, L - LL:], torch.zeros(1, P, x.shape[1], dtype=dtype)], 1)
    md = torch.tensor(time_features(t_dec, cfg["freq"]), dtype=dtype)[None]
    with torch.no_grad():
        y = model(xe, me, xd, md)[0].double().numpy()
    c_out = y.shape[1]
    if c_out == len(mean):
        return y * std + mean
    return y * std[-1:] + mean[-1:]  # S / MS: the target is the last column


# ---- fixtures ------------------------------------------------------------------------------

def write_csv(path, times, cols, values, fmt="%.6g"):
    with open(path, "w", newline="") as f:
        f.write("date," + ",".join(cols) + "\n")
        for t, row in zip(times, values):
            f.write(t.strftime("%Y-%m-%d %H:%M:%S") + "," + ",".join(fmt % v for v in row) + "\n")


def cmd_fixtures(args):
    out = args.out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20260101)
    rng = np.random.default_rng(7)
    n = 150
    t0 = datetime.datetime(2021, 3, 1, 5, 0, 0)
    times = [t0 + datetime.timedelta(hours=i) for i in range(n)]
    tt = np.arange(n)
    cols = ["a", "b", "c"]
    values = np.stack([
        10 + 3 * np.sin(2 * np.pi * tt / 24) + rng.normal(0, 0.3, n),
        5 + 0.02 * tt + np.cos(2 * np.pi * tt / 12) + rng.normal(0, 0.2, n),
        -2 + 2 * np.sin(2 * np.pi * tt / 24 + 1) + rng.normal(0, 0.4, n),
    ], 1)
    values = np.array([[float("%.6g" % v) for v in row] for row in values])
    write_csv(os.path.join(out, "input.csv"), times, cols, values)
    mean, std = values[:100].mean(0), values[:100].std(0)
    mean = mean.astype(np.float32).astype(np.float64)
    std = std.astype(np.float32).astype(np.float64)
    configs = {
        # multivariate, distilling, gelu: 3 encoder layers (two ConvLayers), 1 decoder layer
        "m": dict(seq_len=64, label_len=32, pred_len=24, d_model=16, n_heads=2, e_layers=3,
                  d_layers=1, d_ff=32, factor=3, activation="gelu", embed="timeF", freq="h",
                  enc_in=3, dec_in=3, c_out=3, distil=True, dropout=0.0, features="M",
                  columns="a,b,c", target="c", sample_seed=11),
        # MS: three inputs, the target forecast; no distilling, relu, two decoder layers
        "ms": dict(seq_len=50, label_len=20, pred_len=30, d_model=12, n_heads=3, e_layers=2,
                   d_layers=2, d_ff=20, factor=2, activation="relu", embed="timeF", freq="h",
                   enc_in=3, dec_in=3, c_out=1, distil=False, dropout=0.0, features="MS",
                   columns="a,b,c", target="c", sample_seed=0),
    }
    for name, cfg in configs.items():
        model = Informer(cfg)
        # BatchNorm running statistics that are not the identity, so the test sees them
        for conv in (model.encoder.conv_layers or []):
            conv.norm.running_mean.uniform_(-0.3, 0.3)
            conv.norm.running_var.uniform_(0.5, 2.0)
            conv.norm.weight.data.uniform_(0.5, 1.5)
            conv.norm.bias.data.uniform_(-0.2, 0.2)
        model.eval()
        path = os.path.join(out, name + ".safetensors")
        extra = {}
        if name == "ms":  # sample indices given in the file (drawn as the official code draws them)
            for k, (q, kk, U) in enumerate(model.attention_shapes(cfg)):
                extra["probsparse.sample_index.%d" % k] = torch.randint(kk, (q, U)).to(torch.int32).numpy()
        save_model(path, model, cfg, mean, std, tensors=extra)
        model64 = Informer(cfg).double()
        model64.load_state_dict({k: v.double() if v.is_floating_point() else v
                                 for k, v in model.state_dict().items()})
        model64.eval()
        model64.set_sample_seed(cfg["sample_seed"])
        for k, m in enumerate(model64.attentions()):
            if "probsparse.sample_index.%d" % k in extra:
                m.index = torch.from_numpy(extra["probsparse.sample_index.%d" % k].astype(np.int64))
        y = forecast_window(model64, cfg, values, times, mean, std, datetime.timedelta(hours=1), torch.float64)
        t_out = [times[-1] + datetime.timedelta(hours=h + 1) for h in range(cfg["pred_len"])]
        oc = cols if cfg["c_out"] == 3 else [cfg["target"]]
        write_csv(os.path.join(out, name + ".expected.csv"), t_out, oc, y, "%.9g")
        print(name, path, "pred", y.shape)
    # a bad file: one tensor of the wrong shape
    tensors, meta = st.load(os.path.join(out, "m.safetensors"))
    w = tensors["decoder.projection.weight"]
    tensors["decoder.projection.weight"] = np.concatenate([w, w], 0)
    st.save(os.path.join(out, "bad-shape.safetensors"), tensors, meta)


# ---- ETTh1 ---------------------------------------------------------------------------------

def load_etth1(path):
    with open(path) as f:
        r = csv.reader(f)
        header = next(r)
        rows = list(r)
    times = parse_dates([row[0] for row in rows])
    values = np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float32).astype(np.float64)
    return header[1:], times, values


class Windows:
    """TSLib's Dataset_ETT_hour for one split (features M, timeenc 1)."""

    def __init__(self, data, marks, lo, hi, cfg):
        self.x, self.m, self.lo, self.hi, self.c = data, marks, lo, hi, cfg
        self.n = (hi - lo) - cfg["seq_len"] - cfg["pred_len"] + 1

    def batch(self, idx):
        L, LL, P = self.c["seq_len"], self.c["label_len"], self.c["pred_len"]
        s = self.lo + np.asarray(idx)
        xe = np.stack([self.x[i:i + L] for i in s])
        me = np.stack([self.m[i:i + L] for i in s])
        y = np.stack([self.x[i + L - LL:i + L + P] for i in s])
        my = np.stack([self.m[i + L - LL:i + L + P] for i in s])
        return [torch.tensor(a, dtype=torch.float32) for a in (xe, me, y, my)]


def run_batch(model, xe, me, y, my, cfg):
    LL, P = cfg["label_len"], cfg["pred_len"]
    xd = torch.cat([y[:, :LL], torch.zeros_like(y[:, -P:])], 1)
    return model(xe, me, xd, my), y[:, -P:]


def evaluate(model, ds, cfg, bs):
    """(mean of batch MSE losses as TSLib's vali, full MSE, full MAE)."""
    model.eval()
    losses, se, ae, cnt = [], 0.0, 0.0, 0
    with torch.no_grad():
        for b in range(0, ds.n, bs):
            xe, me, y, my = ds.batch(range(b, min(ds.n, b + bs)))
            pred, true = run_batch(model, xe, me, y, my, cfg)
            d = (pred - true).double()
            losses.append(float((d ** 2).mean()))
            se += float((d ** 2).sum())
            ae += float(d.abs().sum())
            cnt += d.numel()
    model.train()
    return float(np.mean(losses)), se / cnt, ae / cnt


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.torch_seed)
    np.random.seed(args.torch_seed)
    cfg = dict(seq_len=96, label_len=48, pred_len=args.pred_len, d_model=512, n_heads=8, e_layers=2,
               d_layers=1, d_ff=2048, factor=3, activation="gelu", embed="timeF", freq="h",
               enc_in=7, dec_in=7, c_out=7, distil=True, dropout=0.1, features="M",
               target="OT", sample_seed=args.sample_seed)
    cols, times, values = load_etth1(args.data)
    cfg["columns"] = ",".join(cols)
    L = cfg["seq_len"]
    b_lo = [0, 12 * 30 * 24 - L, 12 * 30 * 24 + 4 * 30 * 24 - L]
    b_hi = [12 * 30 * 24, 12 * 30 * 24 + 4 * 30 * 24, 12 * 30 * 24 + 8 * 30 * 24]
    train_raw = values[b_lo[0]:b_hi[0]]
    mean, std = train_raw.mean(0), train_raw.std(0)
    data = (values - mean) / std
    marks = time_features(times, "h")
    train, val, test = (Windows(data, marks, lo, hi, cfg) for lo, hi in zip(b_lo, b_hi))
    model = Informer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    log = open(args.log, "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say("informer ETTh1 M seq_len 96 label_len 48 pred_len %d: %s" % (cfg["pred_len"], cfg))
    say("train %d val %d test %d windows; batch %d, Adam lr %g, type1 halving, patience %d, "
        "max epochs %d, training time budget %.0f min, %d thread(s)" % (train.n, val.n, test.n, args.batch, args.lr,
                                                             args.patience, args.epochs, args.max_train_minutes, args.threads))
    # Validation and test use the seeded key samples of the C model (deterministic, so the
    # test numbers of the best epoch are those the C eval reproduces); training draws keys
    # with torch.randint as the official code.
    best, best_state, best_test, bad = float("inf"), None, None, 0
    t_start = time.time()
    lr = args.lr
    stop = False
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        model.set_sample_seed(None)
        perm = np.random.permutation(train.n)
        losses = []
        for it, b in enumerate(range(0, train.n, args.batch)):
            xe, me, y, my = train.batch(perm[b:b + args.batch])
            opt.zero_grad()
            pred, true = run_batch(model, xe, me, y, my, cfg)
            loss = F.mse_loss(pred, true)
            loss.backward()
            opt.step()
            losses.append(float(loss))
            if (it + 1) % 25 == 0:
                say("  epoch %d iter %d loss %.6f (%.1f s)" % (epoch, it + 1, np.mean(losses[-25:]), time.time() - t0))
            if (time.time() - t_start) / 60 > args.max_train_minutes:
                say("  training time budget (%.0f min) spent after %d of %d iterations of epoch %d" %
                    (args.max_train_minutes, it + 1, (train.n + args.batch - 1) // args.batch, epoch))
                stop = True
                break
        model.set_sample_seed(cfg["sample_seed"])
        vl, _, _ = evaluate(model, val, cfg, args.batch)
        tl, tmse, tmae = evaluate(model, test, cfg, args.batch)
        say("epoch %d: train loss %.6f, vali loss %.6f, test loss %.6f (test mse %.6f mae %.6f), lr %g, %.1f s" %
            (epoch, float(np.mean(losses)), vl, tl, tmse, tmae, lr, time.time() - t0))
        if vl < best:
            best, bad, best_test = vl, 0, (tmse, tmae)
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            say("early stopping counter %d of %d" % (bad, args.patience))
            if bad >= args.patience:
                say("early stopping")
                break
        if stop:
            break
        lr = args.lr * 0.5 ** (epoch - 1)  # type1 as TSLib: lr0, lr0, lr0/2, lr0/4, ...
        for g in opt.param_groups:
            g["lr"] = lr
    model.load_state_dict(best_state)
    model.eval()
    model.set_sample_seed(cfg["sample_seed"])
    mse, mae = best_test
    say("test (best epoch, keys sampled from sample_seed %d as the C model): mse %.6f mae %.6f" %
        (cfg["sample_seed"], mse, mae))
    if args.random_test:
        model.set_sample_seed(None)
        _, mse_r, mae_r = evaluate(model, test, cfg, args.batch)
        say("test (random key samples, as the official code): mse %.6f mae %.6f" % (mse_r, mae_r))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_model(args.out, model, cfg, mean, std,
               {"test_mse": "%.6f" % mse, "test_mae": "%.6f" % mae, "dataset": "ETTh1 (Zhou et al., CC BY-ND 4.0)"})
    say("wrote %s; total %.1f min" % (args.out, (time.time() - t_start) / 60))
    print("mse %.6f mae %.6f" % (mse, mae))


def cmd_export(args):
    """An official Time-Series-Library Informer checkpoint (state_dict .pth) to our file; the
    hyper-parameters and the scaler come from the command line / ETTh1's training split."""
    sd = torch.load(args.pth, map_location="cpu")
    cols, times, values = load_etth1(args.data)
    train_raw = values[:12 * 30 * 24]
    cfg = dict(seq_len=args.seq_len, label_len=args.label_len, pred_len=args.pred_len,
               d_model=args.d_model, n_heads=args.n_heads, e_layers=args.e_layers, d_layers=args.d_layers,
               d_ff=args.d_ff, factor=args.factor, activation=args.activation, embed="timeF", freq="h",
               enc_in=7, dec_in=7, c_out=7, distil=not args.no_distil, dropout=0.0, features="M",
               columns=",".join(cols), target="OT", sample_seed=args.sample_seed)
    model = Informer(cfg)
    missing, unexpected = model.load_state_dict(
        {k: v for k, v in sd.items() if not k.endswith("position_embedding.pe")}, strict=False)
    if missing:
        sys.exit("export: the checkpoint lacks %s" % ", ".join(missing))
    if unexpected:
        print("export: ignored %s" % ", ".join(unexpected), file=sys.stderr)
    save_model(args.out, model, cfg, train_raw.mean(0), train_raw.std(0))


def cmd_random(args):
    """A random-weight model of the ETTh1 shape (7 columns, d_model 512 ...) at any seq_len:
    for timing ProbSparse against full attention in the C model."""
    torch.manual_seed(1)
    cols = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    cfg = dict(seq_len=args.seq_len, label_len=args.seq_len // 2, pred_len=args.pred_len, d_model=512,
               n_heads=8, e_layers=2, d_layers=1, d_ff=2048, factor=3, activation="gelu", embed="timeF",
               freq="h", enc_in=7, dec_in=7, c_out=7, distil=True, dropout=0.0, features="M",
               columns=",".join(cols), target="OT", sample_seed=0)
    model = Informer(cfg).eval()
    save_model(args.out, model, cfg, np.zeros(7), np.ones(7))


def load_model(path):
    """One of our Informer files: (model in eval mode, cfg, scaler mean, scaler std)."""
    tensors, meta = st.load(path)
    cfg = {}
    for k in META_KEYS:
        if k in meta:
            v = meta[k]
            cfg[k] = v if k in ("activation", "embed", "freq", "features", "columns", "target") else int(v)
    cfg["distil"] = bool(cfg.get("distil", 1))
    cfg["dropout"] = 0.0
    model = Informer(cfg).eval()
    model.load_state_dict({k: torch.tensor(v) for k, v in tensors.items()
                           if not k.startswith(("scaler.", "probsparse."))}, strict=False)
    return model, cfg, tensors["scaler.mean"].astype(np.float64), tensors["scaler.std"].astype(np.float64)


def cmd_bench(args):
    """The PyTorch forward on the first test windows of ETTh1 (make bench's Informer row)."""
    torch.set_num_threads(args.threads)
    model, cfg, mean, std = load_model(args.model)
    model.set_sample_seed(cfg.get("sample_seed", 0))
    cols, times, values = load_etth1(args.data)
    L = cfg["seq_len"]
    test = Windows((values - mean) / std, time_features(times, "h"),
                   12 * 30 * 24 + 4 * 30 * 24 - L, 12 * 30 * 24 + 8 * 30 * 24, cfg)
    n = min(args.windows, test.n)
    t0 = time.time()
    with torch.no_grad():
        for b in range(0, n, args.batch):
            run_batch(model, *test.batch(range(b, min(n, b + args.batch))), cfg)
    dt = time.time() - t0
    print("pytorch %s: %d windows in %.2f s = %.1f windows/s (threads %d, batch %d)"
          % (torch.__version__, n, dt, n / dt, args.threads, args.batch))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--out", default="tests/fixtures/informer")
    t = sub.add_parser("train")
    t.add_argument("--data", default="../shared/data/timeseries/ETDataset/ETTh1.csv")
    t.add_argument("--out", default="models/informer-etth1-96.safetensors")
    t.add_argument("--log", default="tools/logs/informer-etth1-96.log")
    t.add_argument("--pred-len", type=int, default=96)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--max-train-minutes", type=float, default=30,
                   help="stop training (even inside an epoch) after this long; then validate and test")
    t.add_argument("--random-test", action="store_true", help="also test with random key samples")
    t.add_argument("--sample-seed", type=int, default=0)
    t.add_argument("--torch-seed", type=int, default=2021)
    e = sub.add_parser("export")
    e.add_argument("pth")
    e.add_argument("--out", required=True)
    e.add_argument("--data", default="../shared/data/timeseries/ETDataset/ETTh1.csv")
    for k, v in [("seq_len", 96), ("label_len", 48), ("pred_len", 96), ("d_model", 512), ("n_heads", 8),
                 ("e_layers", 2), ("d_layers", 1), ("d_ff", 2048), ("factor", 3), ("sample_seed", 0)]:
        e.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    e.add_argument("--activation", default="gelu")
    e.add_argument("--no-distil", action="store_true")
    r = sub.add_parser("random")
    r.add_argument("--seq-len", type=int, default=720)
    r.add_argument("--pred-len", type=int, default=96)
    r.add_argument("--out", required=True)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("data", nargs="?", default="../shared/data/timeseries/ETDataset/ETTh1.csv")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--windows", type=int, default=256)
    args = ap.parse_args()
    {"fixtures": cmd_fixtures, "train": cmd_train, "export": cmd_export, "random": cmd_random,
     "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
