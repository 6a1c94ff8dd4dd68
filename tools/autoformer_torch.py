#!/usr/bin/python3
"""Autoformer (Wu et al., NeurIPS 2021) in PyTorch, written independently after the official
thuml code (models/Autoformer.py, layers/Autoformer_EncDec.py, layers/AutoCorrelation.py,
layers/Embed.py of thuml/Autoformer and thuml/Time-Series-Library), with the official module
and parameter names so state_dict keys match a checkpoint of the authors' code.

    autoformer_torch.py fixtures            random-weight models + inputs + float64 forecasts
                                            under tests/fixtures/autoformer/
    autoformer_torch.py train [--epochs N]  ETTh1, the papers' split and settings, pred_len 96:
                                            models/autoformer-etth1-96.safetensors and
                                            tools/logs/autoformer-etth1-96.log
    autoformer_torch.py export CKPT.pth OUT --scaler-from ETTh1.csv   an official checkpoint
    autoformer_torch.py bench MODEL CSV     forward windows/s with 2 threads (eval's windows)

ETTh1 (Zhou et al., Informer, AAAI 2021; CC BY-ND 4.0) is read unmodified from
../shared/data/timeseries/ETDataset/ETTh1.csv.
"""

import argparse
import calendar
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETTH1 = os.path.join(ROOT, "..", "shared", "data", "timeseries", "ETDataset", "ETTh1.csv")

# ---------------------------------------------------------------------------------------------
# Time features: Time-Series-Library utils/timefeatures.py (timeenc=1, embed timeF), each in
# [-0.5, 0.5], in the order its features_by_offsets lists them for the frequency.


def _feature(name, d):
    if name == "second":
        return d.second / 59.0 - 0.5
    if name == "minute":
        return d.minute / 59.0 - 0.5
    if name == "hour":
        return d.hour / 23.0 - 0.5
    if name == "weekday":
        return d.weekday() / 6.0 - 0.5
    if name == "monthday":
        return (d.day - 1) / 30.0 - 0.5
    if name == "yearday":
        return (d.timetuple().tm_yday - 1) / 365.0 - 0.5
    if name == "month":
        return (d.month - 1) / 11.0 - 0.5
    if name == "week":
        return (d.isocalendar()[1] - 1) / 52.0 - 0.5
    raise ValueError(name)


FREQ_FEATURES = {
    "s": ["second", "minute", "hour", "weekday", "monthday", "yearday"],
    "t": ["minute", "hour", "weekday", "monthday", "yearday"],
    "h": ["hour", "weekday", "monthday", "yearday"],
    "d": ["weekday", "monthday", "yearday"],
    "b": ["weekday", "monthday", "yearday"],
    "w": ["monthday", "week"],
    "m": ["month"],
}


def time_features(dates, freq):
    return np.array([[_feature(n, d) for n in FREQ_FEATURES[freq]] for d in dates], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# The model


class MovingAvg(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x):  # [B, L, C], ends repeated (k - 1) / 2 times
        h = (self.kernel_size - 1) // 2
        x = torch.cat([x[:, :1].repeat(1, h, 1), x, x[:, -1:].repeat(1, h, 1)], dim=1)
        return F.avg_pool1d(x.permute(0, 2, 1), self.kernel_size, stride=1).permute(0, 2, 1)


class SeriesDecomp(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.moving_avg = MovingAvg(kernel_size)

    def forward(self, x):
        trend = self.moving_avg(x)
        return x - trend, trend


class MyLayernorm(nn.Module):
    """LayerNorm over channels, then minus its mean over time (the official my_Layernorm)."""

    def __init__(self, channels):
        super().__init__()
        self.layernorm = nn.LayerNorm(channels)

    def forward(self, x):
        x = self.layernorm(x)
        return x - x.mean(dim=1, keepdim=True)


class AutoCorrelation(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, q, k, v):  # [B, L, H, E], [B, S, H, E], [B, S, H, D]
        B, L, H, E = q.shape
        S = v.shape[1]
        if L > S:
            k = torch.cat([k, torch.zeros(B, L - S, H, k.shape[3], dtype=k.dtype)], dim=1)
            v = torch.cat([v, torch.zeros(B, L - S, H, v.shape[3], dtype=v.dtype)], dim=1)
        else:
            k, v = k[:, :L], v[:, :L]
        qf = torch.fft.rfft(q.permute(0, 2, 3, 1), dim=-1)
        kf = torch.fft.rfft(k.permute(0, 2, 3, 1), dim=-1)
        corr = torch.fft.irfft(qf * torch.conj(kf), n=L, dim=-1)  # [B, H, E, L]
        mean = corr.mean(dim=1).mean(dim=1)  # [B, L]
        top_k = int(self.factor * math.log(L))
        vals = v.permute(0, 2, 3, 1)  # [B, H, D, L]
        out = torch.zeros_like(vals)
        if self.training:  # time_delay_agg_training: delays from the batch mean
            index = torch.topk(mean.mean(dim=0), top_k, dim=-1)[1]
            w = torch.softmax(torch.stack([mean[:, index[i]] for i in range(top_k)], dim=-1), dim=-1)
            for i in range(top_k):
                out = out + torch.roll(vals, -int(index[i]), -1) * w[:, i].view(B, 1, 1, 1)
        else:  # time_delay_agg_inference: delays per element
            w, delay = torch.topk(mean, top_k, dim=-1)
            w = torch.softmax(w, dim=-1)
            twice = torch.cat([vals, vals], dim=-1)
            ar = torch.arange(L).view(1, 1, 1, L)
            for i in range(top_k):
                idx = (ar + delay[:, i].view(B, 1, 1, 1)).expand(B, H, vals.shape[2], L)
                out = out + torch.gather(twice, -1, idx) * w[:, i].view(B, 1, 1, 1)
        return out.permute(0, 3, 1, 2)


class AutoCorrelationLayer(nn.Module):
    def __init__(self, correlation, d_model, n_heads):
        super().__init__()
        dk = d_model // n_heads
        self.inner_correlation = correlation
        self.query_projection = nn.Linear(d_model, dk * n_heads)
        self.key_projection = nn.Linear(d_model, dk * n_heads)
        self.value_projection = nn.Linear(d_model, dk * n_heads)
        self.out_projection = nn.Linear(dk * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, q, k, v):
        B, L, _ = q.shape
        S = k.shape[1]
        H = self.n_heads
        out = self.inner_correlation(self.query_projection(q).view(B, L, H, -1),
                                     self.key_projection(k).view(B, S, H, -1),
                                     self.value_projection(v).view(B, S, H, -1))
        return self.out_projection(out.reshape(B, L, -1))


def _act(name):
    return F.relu if name == "relu" else F.gelu


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff, moving_avg, dropout, activation):
        super().__init__()
        self.attention = attention
        self.conv1 = nn.Conv1d(d_model, d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(d_ff, d_model, kernel_size=1, bias=False)
        self.decomp1 = SeriesDecomp(moving_avg)
        self.decomp2 = SeriesDecomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.activation = _act(activation)

    def forward(self, x):
        x = x + self.dropout(self.attention(x, x, x))
        x, _ = self.decomp1(x)
        y = self.dropout(self.activation(self.conv1(x.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        x, _ = self.decomp2(x + y)
        return x


class Encoder(nn.Module):
    def __init__(self, attn_layers, norm_layer):
        super().__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.norm = norm_layer

    def forward(self, x):
        for layer in self.attn_layers:
            x = layer(x)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, c_out, d_ff, moving_avg, dropout, activation):
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(d_model, d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(d_ff, d_model, kernel_size=1, bias=False)
        self.decomp1 = SeriesDecomp(moving_avg)
        self.decomp2 = SeriesDecomp(moving_avg)
        self.decomp3 = SeriesDecomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Conv1d(d_model, c_out, kernel_size=3, stride=1, padding=1,
                                    padding_mode="circular", bias=False)
        self.activation = _act(activation)

    def forward(self, x, cross):
        x = x + self.dropout(self.self_attention(x, x, x))
        x, t1 = self.decomp1(x)
        x = x + self.dropout(self.cross_attention(x, cross, cross))
        x, t2 = self.decomp2(x)
        y = self.dropout(self.activation(self.conv1(x.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        x, t3 = self.decomp3(x + y)
        trend = self.projection((t1 + t2 + t3).permute(0, 2, 1)).transpose(1, 2)
        return x, trend


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer, projection):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm_layer
        self.projection = projection

    def forward(self, x, cross, trend):
        for layer in self.layers:
            x, residual = layer(x, cross)
            trend = trend + residual
        return self.projection(self.norm(x)), trend


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.tokenConv = nn.Conv1d(c_in, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.tokenConv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        return self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, freq):
        super().__init__()
        self.embed = nn.Linear(len(FREQ_FEATURES[freq]), d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbeddingWoPos(nn.Module):
    """DataEmbedding_wo_pos with embed timeF. The official module also holds an unused
    PositionalEmbedding buffer (position_embedding.pe); it carries no weights and is left out."""

    def __init__(self, c_in, d_model, freq, dropout):
        super().__init__()
        self.value_embedding = TokenEmbedding(c_in, d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model, freq)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, x_mark):
        return self.dropout(self.value_embedding(x) + self.temporal_embedding(x_mark))


class Autoformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.seq_len, self.label_len, self.pred_len = cfg["seq_len"], cfg["label_len"], cfg["pred_len"]
        dm, nh, dff, ma, dp, act, f = (cfg["d_model"], cfg["n_heads"], cfg["d_ff"], cfg["moving_avg"],
                                      cfg["dropout"], cfg["activation"], cfg["factor"])
        self.decomp = SeriesDecomp(ma)
        self.enc_embedding = DataEmbeddingWoPos(cfg["enc_in"], dm, cfg["freq"], dp)
        self.dec_embedding = DataEmbeddingWoPos(cfg["dec_in"], dm, cfg["freq"], dp)
        self.encoder = Encoder(
            [EncoderLayer(AutoCorrelationLayer(AutoCorrelation(f), dm, nh), dm, dff, ma, dp, act)
             for _ in range(cfg["e_layers"])], MyLayernorm(dm))
        self.decoder = Decoder(
            [DecoderLayer(AutoCorrelationLayer(AutoCorrelation(f), dm, nh),
                          AutoCorrelationLayer(AutoCorrelation(f), dm, nh),
                          dm, cfg["c_out"], dff, ma, dp, act) for _ in range(cfg["d_layers"])],
            MyLayernorm(dm), nn.Linear(dm, cfg["c_out"], bias=True))

    def forward(self, x_enc, x_mark_enc, x_mark_dec):
        B, _, C = x_enc.shape
        mean = x_enc.mean(dim=1, keepdim=True).repeat(1, self.pred_len, 1)
        zeros = torch.zeros(B, self.pred_len, self.cfg["dec_in"], dtype=x_enc.dtype)
        seasonal, trend = self.decomp(x_enc)
        trend_init = torch.cat([trend[:, -self.label_len:], mean], dim=1)
        seasonal_init = torch.cat([seasonal[:, -self.label_len:], zeros], dim=1)
        enc = self.encoder(self.enc_embedding(x_enc, x_mark_enc))
        sea, tr = self.decoder(self.dec_embedding(seasonal_init, x_mark_dec), enc, trend_init)
        return (tr + sea)[:, -self.pred_len:]


META_INT = ["seq_len", "label_len", "pred_len", "d_model", "n_heads", "e_layers", "d_layers", "d_ff",
            "moving_avg", "enc_in", "dec_in", "c_out"]


def save_model(path, model, cfg, mean, std, columns, features, target):
    tensors = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
    tensors["scaler.mean"] = np.asarray(mean, np.float32)
    tensors["scaler.std"] = np.asarray(std, np.float32)
    meta = {"arch": "autoformer", "embed": "timeF", "freq": cfg["freq"], "activation": cfg["activation"],
            "factor": repr(float(cfg["factor"])), "features": features, "columns": ",".join(columns),
            "target": target}
    for k in META_INT:
        meta[k] = str(cfg[k])
    st.save(path, tensors, meta)


# ---------------------------------------------------------------------------------------------
# Data


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
        dates, rows = [], []
        for line in f:
            if not line.strip():
                continue
            p = line.strip().split(",")
            dates.append(datetime.datetime.strptime(p[0], "%Y-%m-%d %H:%M:%S"))
            rows.append([float(v) for v in p[1:]])
    return header[1:], dates, np.array(rows, dtype=np.float64)


def windows(data, stamp, lo, hi, seq_len, label_len, pred_len):
    """The official Dataset_ETT_hour windows of rows [lo, hi): x, x_mark, y, y_mark."""
    n = hi - lo - seq_len - pred_len + 1
    idx = np.arange(n) + lo
    xs = np.stack([data[i:i + seq_len] for i in idx])
    xm = np.stack([stamp[i:i + seq_len] for i in idx])
    ys = np.stack([data[i + seq_len - label_len:i + seq_len + pred_len] for i in idx])
    ym = np.stack([stamp[i + seq_len - label_len:i + seq_len + pred_len] for i in idx])
    return [torch.tensor(a, dtype=torch.float32) for a in (xs, xm, ys, ym)]


# ---------------------------------------------------------------------------------------------
# train


ETTH1_CFG = dict(seq_len=96, label_len=48, pred_len=96, e_layers=2, d_layers=1, factor=3.0, enc_in=7,
                 dec_in=7, c_out=7, d_model=512, n_heads=8, d_ff=2048, moving_avg=25, dropout=0.05,
                 activation="gelu", freq="h")


def evaluate(model, data, bs, pred_len):
    """The official vali loss (mean over full batches of the batch MSE, the last partial batch
    dropped), and MSE/MAE over all windows (the papers' test metric without dropping the
    last partial batch, as timeseries-forecast eval scores) and over the full batches."""
    x, xm, y, ym = data
    model.eval()
    losses, se, ae, count = [], [0.0, 0.0], [0.0, 0.0], [0, 0]
    n = len(x)
    with torch.no_grad():
        for b in range(0, n, bs):
            out = model(x[b:b + bs], xm[b:b + bs], ym[b:b + bs])
            true = y[b:b + bs, -pred_len:]
            d = (out - true).double()
            full = len(out) == bs
            if full:
                losses.append(F.mse_loss(out, true).item())
            for j in (0, 1) if full else (0,):
                se[j] += (d * d).sum().item()
                ae[j] += d.abs().sum().item()
                count[j] += d.numel()
    return float(np.mean(losses)), se[0] / count[0], ae[0] / count[0], se[1] / count[1], ae[1] / count[1]


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    cfg = dict(ETTH1_CFG)
    cfg["pred_len"] = args.pred_len
    columns, dates, raw = read_csv(args.data)
    b_train, b_val, b_test = 12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24
    mean = raw[:b_train].mean(axis=0)
    std = raw[:b_train].std(axis=0)
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    # Normalise with the scaler as stored (float32), so the C program reproduces the test.
    data = (raw - mean32.astype(np.float64)) / std32.astype(np.float64)
    stamp = time_features(dates, cfg["freq"])
    sl, ll, pl = cfg["seq_len"], cfg["label_len"], cfg["pred_len"]
    tr = windows(data, stamp, 0, b_train, sl, ll, pl)
    va = windows(data, stamp, b_train - sl, b_val, sl, ll, pl)
    te = windows(data, stamp, b_val - sl, b_test, sl, ll, pl)
    if args.max_eval_windows:  # smoke tests only
        va = [a[:args.max_eval_windows] for a in va]
        te = [a[:args.max_eval_windows] for a in te]
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    log = open(args.log, "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say("autoformer ETTh1 M pred_len %d: %s" % (pl, " ".join("%s=%s" % kv for kv in sorted(cfg.items()))))
    say("batch %d, Adam lr %g, type1 halving, epochs %d, patience %d, threads %d, seed %d" %
        (args.batch_size, args.lr, args.epochs, args.patience, args.threads, args.seed))
    say("windows: train %d, val %d, test %d" % (len(tr[0]), len(va[0]), len(te[0])))
    model = Autoformer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, bad, best_state = None, 0, None
    n = len(tr[0])
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        losses = []
        te0 = time.time()
        nb = n // args.batch_size  # drop_last
        for b in range(nb):
            i = perm[b * args.batch_size:(b + 1) * args.batch_size]
            opt.zero_grad()
            out = model(tr[0][i], tr[1][i], tr[3][i])
            loss = F.mse_loss(out, tr[2][i, -pl:])
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if b % 50 == 0:
                say("  epoch %d batch %d/%d loss %.5f (%.1f s)" % (epoch + 1, b, nb, loss.item(), time.time() - te0))
            if args.max_batches and b + 1 >= args.max_batches:
                break
            if args.max_train_minutes and time.time() - t0 > 60 * args.max_train_minutes:
                break
        stopped = args.max_train_minutes and time.time() - t0 > 60 * args.max_train_minutes
        vloss = evaluate(model, va, args.batch_size, pl)[0]
        tm = evaluate(model, te, args.batch_size, pl)
        say("epoch %d: train %.6f val %.6f test %.6f (%d batches, %.0f s, lr %g)" %
            (epoch + 1, float(np.mean(losses)), vloss, tm[0], len(losses), time.time() - te0,
             opt.param_groups[0]["lr"]))
        if best is None or vloss < best:
            best, bad, best_test = vloss, 0, tm
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            say("  validation improved: saved")
        else:
            bad += 1
            say("  early stopping counter %d of %d" % (bad, args.patience))
            if bad >= args.patience:
                say("  early stopping")
                break
        if stopped:
            say("  stopped: the %g-minute training budget is spent" % args.max_train_minutes)
            break
        for g in opt.param_groups:  # type1: lr * 0.5 ** epoch for the next epoch
            g["lr"] = args.lr * 0.5 ** (epoch + 1)
    model.load_state_dict(best_state)
    say("test (all %d windows, float32): mse %.6f mae %.6f" % (len(te[0]), best_test[1], best_test[2]))
    say("test (official drop_last batches): mse %.6f mae %.6f" % (best_test[3], best_test[4]))
    say("paper (Autoformer, ETTh1-%d): mse 0.449 mae 0.459" % pl)
    say("wall %.0f s" % (time.time() - t0))
    save_model(args.out, model, cfg, mean32, std32, columns, "M", columns[-1])
    say("wrote %s" % args.out)


# ---------------------------------------------------------------------------------------------
# fixtures


def synthetic(steps, C, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    x = (10 + 3 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6, C)) + 0.02 * t * rng.normal(size=C)
         + rng.normal(scale=0.5, size=(steps, C)))
    return (x * rng.uniform(0.5, 4, C)).astype(np.float32).astype(np.float64)


def fixture(out_dir, name, cfg, steps, columns, features, target, start, seed, step=datetime.timedelta(hours=1)):
    torch.manual_seed(seed)
    model = Autoformer(cfg).double().eval()
    with torch.no_grad():  # larger random biases and norms than the defaults, to test them
        for k, p in model.named_parameters():
            if k.endswith("bias") or "layernorm.weight" in k:
                p.add_(torch.randn_like(p) * 0.3)
    dates = [start + step * i for i in range(steps)]
    horizon = [dates[-1] + step * (i + 1) for i in range(cfg["pred_len"])]
    x = synthetic(steps, len(columns), seed)
    rng = np.random.default_rng(seed + 1)
    mean = (x.mean(axis=0) + rng.normal(size=len(columns))).astype(np.float32)
    std = (x.std(axis=0) * rng.uniform(0.7, 1.3, len(columns))).astype(np.float32)
    # The model's input channels: all (M, MS) or the target (S); the target is last for MS.
    if features == "S":
        cols = [target]
    else:
        cols = [c for c in columns if c != target] + [target] if features == "MS" else list(columns)
    ci = [columns.index(c) for c in cols]
    xin = (x[-cfg["seq_len"]:, ci] - mean[ci].astype(np.float64)) / std[ci].astype(np.float64)
    sl, ll = cfg["seq_len"], cfg["label_len"]
    mark_enc = time_features(dates[-sl:], cfg["freq"])
    mark_dec = time_features(dates[-ll:] + horizon, cfg["freq"])
    with torch.no_grad():
        y = model(torch.tensor(xin)[None], torch.tensor(mark_enc)[None], torch.tensor(mark_dec)[None])[0].numpy()
    if features == "MS":
        y = y[:, -1:]
    keep = [cols[-1]] if features in ("S", "MS") else cols
    ki = [columns.index(c) for c in keep]
    y = y * std[ki].astype(np.float64) + mean[ki].astype(np.float64)
    save_model(os.path.join(out_dir, name + ".safetensors"), model, cfg, mean[ci], std[ci], cols, features, target)
    with open(os.path.join(out_dir, name + ".csv"), "w") as f:
        f.write("date," + ",".join(columns) + "\n")
        for d, row in zip(dates, x):
            f.write(d.strftime("%Y-%m-%d %H:%M:%S") + "," + ",".join("%.9g" % v for v in row) + "\n")
    with open(os.path.join(out_dir, name + ".expected.csv"), "w") as f:
        f.write("ds," + ",".join(keep) + "\n")
        for d, row in zip(horizon, y):
            f.write(d.strftime("%Y-%m-%d %H:%M:%S") + "," + ",".join("%.9g" % v for v in row) + "\n")
    return model, cfg


def fixtures(args):
    out = os.path.join(ROOT, "tests", "fixtures", "autoformer")
    os.makedirs(out, exist_ok=True)
    base = dict(seq_len=48, label_len=24, pred_len=24, e_layers=2, d_layers=1, factor=3.0, enc_in=3, dec_in=3,
                c_out=3, d_model=16, n_heads=2, d_ff=32, moving_avg=25, dropout=0.05, activation="gelu", freq="h")
    cols = ["a", "b", "c"]
    # M, gelu, hourly, 2 encoder layers; the input crosses a year end and a leap day.
    fixture(out, "m", base, 80, cols, "M", "c", datetime.datetime(2019, 12, 29, 5), 1)
    # MS on another column order, relu, odd lengths (seq_len 61 > ... and label_len 30),
    # d_layers 2, moving_avg 7, factor 2, d_model 24 with 3 heads.
    cfg = dict(base, seq_len=61, label_len=30, pred_len=17, e_layers=1, d_layers=2, factor=2.0, d_model=24,
               n_heads=3, d_ff=40, moving_avg=7, activation="relu")
    fixture(out, "ms", cfg, 70, cols, "MS", "a", datetime.datetime(2020, 2, 27, 19), 2)
    # S, label_len longer than pred_len.
    cfg = dict(base, seq_len=50, label_len=40, pred_len=12, enc_in=1, dec_in=1, c_out=1, d_model=16)
    fixture(out, "s", cfg, 64, cols, "S", "b", datetime.datetime(2021, 6, 30, 22), 3)
    # Daily (freq d: weekday, day of month, day of year), the horizon across a year end.
    cfg = dict(base, seq_len=40, label_len=20, pred_len=30, e_layers=1, d_model=8, d_ff=16, freq="d")
    fixture(out, "daily", cfg, 45, cols, "M", "c", datetime.datetime(2023, 11, 2), 4, datetime.timedelta(days=1))
    # A bad file: the m model with the first encoder layer's conv1 of the wrong shape.
    tensors, meta = st.load(os.path.join(out, "m.safetensors"))
    tensors["encoder.attn_layers.0.conv1.weight"] = tensors["encoder.attn_layers.0.conv1.weight"][:-1].copy()
    st.save(os.path.join(out, "bad-shape.safetensors"), tensors, meta)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("wrote %s (%d bytes)" % (out, total))


# ---------------------------------------------------------------------------------------------
# export


def export(args):
    sd = torch.load(args.checkpoint, map_location="cpu")
    sd = {k: v for k, v in sd.items() if not k.endswith("position_embedding.pe")}
    cfg = dict(ETTH1_CFG)
    for kv in args.set or []:
        k, v = kv.split("=", 1)
        cfg[k] = type(cfg[k])(v) if k in cfg else v
    model = Autoformer(cfg)
    model.load_state_dict(sd)
    columns, _, raw = read_csv(args.scaler_from)
    b = args.train_rows
    save_model(args.out, model, cfg, raw[:b].mean(axis=0), raw[:b].std(axis=0), columns, "M", columns[-1])


# ---------------------------------------------------------------------------------------------
# bench: the PyTorch forward on the eval windows (the test split) with 2 threads


def bench(args):
    torch.set_num_threads(args.threads)
    tensors, meta = st.load(args.model)
    cfg = {k: int(meta[k]) for k in META_INT}
    cfg.update(factor=float(meta["factor"]), activation=meta["activation"], freq=meta["freq"], dropout=0.0)
    model = Autoformer(cfg).eval()
    model.load_state_dict({k: torch.tensor(v) for k, v in tensors.items() if not k.startswith("scaler.")})
    columns, dates, raw = read_csv(args.data)
    mean, std = tensors["scaler.mean"].astype(np.float64), tensors["scaler.std"].astype(np.float64)
    data = (raw - mean) / std
    stamp = time_features(dates, cfg["freq"])
    te = windows(data, stamp, 16 * 30 * 24 - cfg["seq_len"], 20 * 30 * 24, cfg["seq_len"], cfg["label_len"],
                 cfg["pred_len"])
    n = min(args.windows, len(te[0])) if args.windows else len(te[0])
    t0 = time.time()
    se = 0.0
    with torch.no_grad():
        for b in range(0, n, args.batch_size):
            e = min(n, b + args.batch_size)
            out = model(te[0][b:e], te[1][b:e], te[3][b:e])
            se += ((out - te[2][b:e, -cfg["pred_len"]:]).double() ** 2).sum().item()
    dt = time.time() - t0
    print("pytorch %s: %d windows in %.2f s = %.1f windows/s (threads %d, batch %d); mse %.6f" %
          (torch.__version__, n, dt, n / dt, args.threads, args.batch_size, se / (n * cfg["pred_len"] * cfg["c_out"])))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fixtures")
    t = sub.add_parser("train")
    t.add_argument("--data", default=ETTH1)
    t.add_argument("--out", default=os.path.join(ROOT, "models", "autoformer-etth1-96.safetensors"))
    t.add_argument("--log", default=os.path.join(ROOT, "tools", "logs", "autoformer-etth1-96.log"))
    t.add_argument("--pred-len", type=int, default=96)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=2021)
    t.add_argument("--max-batches", type=int, default=0, help="cut each epoch short (timing runs)")
    t.add_argument("--max-eval-windows", type=int, default=0, help="smoke tests only")
    t.add_argument("--max-train-minutes", type=float, default=0,
                   help="stop training (mid-epoch if need be) after this many minutes")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("out")
    e.add_argument("--scaler-from", default=ETTH1)
    e.add_argument("--train-rows", type=int, default=12 * 30 * 24)
    e.add_argument("--set", action="append", help="KEY=VALUE hyper-parameter other than ETTh1's")
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("data", nargs="?", default=ETTH1)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--windows", type=int, default=0)
    a = p.parse_args()
    {"fixtures": fixtures, "train": train, "export": export, "bench": bench}[a.cmd](a)


if __name__ == "__main__":
    main()
