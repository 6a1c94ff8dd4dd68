#!/usr/bin/env python3
"""A small RAIN-style stream denoiser in PyTorch: the reference for video-animate's `stream`
mode (cmd/video-animate/stream.c), its training on vtest.avi, its fixtures and its evaluation.

RAIN (MatrixTeam-AI/RAIN, src/morpher.py) keeps a ring of G groups x p frames, each group at
its own noise level (oldest lowest), runs ONE denoiser call over all ring frames with per-frame
timesteps and temporal attention across noise levels, steps every frame one level down and
outputs the oldest group once it is clean. This file implements the same mechanism around a
small UNet trained here (RAIN's SD-1.5 stack, ReferenceNet, LCM distillation and TAESDV are
out of reach): it demonstrates the mechanism at small scale.

Model (all sizes in the model file's metadata; W x H = 96 x 72 for the shipped models):
  network range: RGB in [-1, 1]; inputs are resized to W x H (bilinear, antialias =
  F.interpolate(mode="bilinear", align_corners=False, antialias=True)).
  conditioning: d = frame resized to cond_width x cond_height (same antialiased bilinear) and
  back to W x H (bilinear, no antialias); r = tensor "reference" [3][H][W] in [-1, 1] (the
  per-pixel median of the training frames).
  denoiser input cat(x_t, d, r) (9 channels), per-frame timestep t; channels 32/64/96 below
  (metadata "channels"; the test fixtures use 8/16/24):
    temb = linear_2(SiLU(linear_1(sincos(t)))), sincos = diffusers get_timestep_embedding(t, 64,
      flip_sin_to_cos=True, downscale_freq_shift=0) = [cos(t f_i), sin(t f_i)],
      f_i = exp(-ln(10000) i / 32), i < 32
    conv_in 3x3 9->32
    down.0: res 32->32, motion(32)      (W x H)      -> skip0
    down.0.downsample conv 3x3 stride 2 pad 1 32->32
    down.1: res 32->64, motion(64)      (W/2 x H/2)  -> skip1
    down.1.downsample conv 3x3 stride 2 pad 1 64->64
    down.2: res 64->96, motion(96)      (W/4 x H/4)
    up.0: nearest x2, upsample conv 3x3 96->64, cat(h, skip1), res 128->64, motion(64)
    up.1: nearest x2, upsample conv 3x3 64->32, cat(h, skip0), res 64->32, motion(32)
    conv_norm_out GroupNorm(8) SiLU conv_out 3x3 32->3  -> v prediction
  res (diffusers ResnetBlock2D): h = conv1(SiLU(norm1(x))); h += time_emb_proj(SiLU(temb))
    per frame; h = conv2(SiLU(norm2(h))); out = h + (conv_shortcut 1x1 (x) if cin != cout else
    x). GroupNorm(8, eps 1e-5).
  motion (AnimateDiff VanillaTemporalModule with one transformer block, one attention):
    h = proj_in(norm(x)) per pixel (norm GroupNorm(8, eps 1e-6) per frame), tokens [F][P][C];
    a = norm1(h) + pe[slot]; h = h + attn.to_out(attention over the F frames of every pixel of
    to_q(a), to_k(a), to_v(a); 4 heads, scale 1/sqrt(C/4)); h = h + ff.net.2(GELU(ff.net.0.proj
    (norm2(h)))); out = x + proj_out(h) (proj_out zero-initialised). LayerNorm eps 1e-5, GELU
    exact (erf). pe = AnimateDiff's PositionalEncoding (max_len 32): pe[s][2i] = sin(s w_i),
    pe[s][2i+1] = cos(s w_i), w_i = exp(-2i ln(10000) / C). As in AnimateDiff the encoding is
    added to the normalised tokens inside the attention only.
    slot of a ring frame = p * (rank of its level, 0 for the lowest) + its index in its group:
    a frame always gets the slot it had in a full training window, also while the ring fills
    up or drains.
  diffusion: scaled_linear betas 0.00085..0.012 over 1000 steps, rescaled to zero terminal SNR
    (diffusers rescale_zero_terminal_snr; in double: sqrt(abar) shifted so abar_999 = 0 and
    scaled so abar_0 keeps its value), v-prediction, levels [999, 749, 499, 249]; a step from
    t to the next lower level t' (0 after the last: a_0 := 1):
      x0 = sqrt(a_t) x - sqrt(1-a_t) v, eps = sqrt(1-a_t) x + sqrt(a_t) v,
      x' = sqrt(a_t') x0 + sqrt(1-a_t') eps   (DDIM, eta 0).
  initial noise of input frame k: libcore lr_normal_fill(seed, k, 0) over [3][H][W] (Philox
    4x32-10 + Box-Muller, reimplemented below in numpy).

Ring: push a group when its p frames are complete (pure noise at the top level); one denoiser
call over all ring frames (oldest first, each with its level); every frame one level down; pop
the oldest group when clean. At the end: push the partial last group, step without pushing
until empty. Latency G*p-1 input frames.

Commands:
  train    --temporal 1|0 --minutes M --out CKPT        (vtest.avi frames 0..635)
  export   CKPT OUT.safetensors
  fixtures OUTDIR                                         (random weights, 24x16, cond 6x4)
  eval     MODEL_ON MODEL_OFF                             (held-out frames 636..794)
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

LEVELS = [999, 749, 499, 249]
GROUPS, PER_GROUP = 4, 4
VTEST = "../shared/data/video/vtest.avi"
TRAIN_FRAMES = (0, 636)   # [first, end)
EVAL_FRAMES = (636, 795)


# ---------------------------------------------------------------------------------------------
# schedule

def alphas_cumprod():
    """diffusers DDPMScheduler(beta_schedule="scaled_linear", rescale_betas_zero_snr=True), in
    double precision (diffusers computes the same in float32)."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    abar = np.cumprod(1.0 - betas)
    s = np.sqrt(abar)
    s0, sT = s[0], s[-1]
    s = (s - sT) * (s0 / (s0 - sT))
    return s * s


ABAR = alphas_cumprod()


def level_alpha(t):
    return 1.0 if t < 0 else float(ABAR[t])


def next_level(t):
    i = LEVELS.index(t)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else -1   # -1: clean (a = 1)


# ---------------------------------------------------------------------------------------------
# model

def timestep_embedding(t, dim=64):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1).float()


def position_table(channels, max_len=32):
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float64) * (-math.log(10000.0) / channels))
    pe = torch.zeros(max_len, channels, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe.float()


class TimeEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_1 = nn.Linear(64, 128)
        self.linear_2 = nn.Linear(128, 128)

    def forward(self, t):
        return self.linear_2(F.silu(self.linear_1(timestep_embedding(t))))


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(128, cout)
        self.norm2 = nn.GroupNorm(8, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.conv_shortcut(x) if self.conv_shortcut is not None else x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.to_q = nn.Linear(c, c, bias=False)
        self.to_k = nn.Linear(c, c, bias=False)
        self.to_v = nn.Linear(c, c, bias=False)
        self.to_out = nn.Linear(c, c)


class FeedForward(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(4 * c, c)])
        self.net[0].proj = nn.Linear(c, 4 * c)

    def forward(self, x):
        return self.net[2](F.gelu(self.net[0].proj(x)))


class Motion(nn.Module):
    HEADS = 4

    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(8, c, eps=1e-6)
        self.proj_in = nn.Linear(c, c)
        self.norm1 = nn.LayerNorm(c)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c)
        self.ff = FeedForward(c)
        self.proj_out = nn.Linear(c, c)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        self.register_buffer("pe", position_table(c), persistent=False)

    def forward(self, x, nwin, slots):
        """x [B*F][C][H][W] with F = nwin frames per window; slots [F] long."""
        bf, c, hh, ww = x.shape
        b = bf // nwin
        h = self.norm(x).reshape(b, nwin, c, hh * ww).permute(0, 3, 1, 2)  # [B][P][F][C]
        h = self.proj_in(h)
        a = self.norm1(h) + self.pe[slots][None, None]
        heads, d = self.HEADS, c // self.HEADS

        def split(z):
            return z.reshape(b, hh * ww, nwin, heads, d).transpose(2, 3)   # [B][P][h][F][d]
        q, k, v = split(self.attn.to_q(a)), split(self.attn.to_k(a)), split(self.attn.to_v(a))
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        o = (w @ v).transpose(2, 3).reshape(b, hh * ww, nwin, c)
        h = h + self.attn.to_out(o)
        h = h + self.ff(self.norm2(h))
        h = self.proj_out(h)
        return x + h.permute(0, 2, 3, 1).reshape(bf, c, hh, ww)


class Level(nn.Module):
    def __init__(self, cin, cout, temporal, down=False, up_from=0):
        super().__init__()
        if up_from:
            self.upsample = nn.Conv2d(up_from, cin // 2, 3, padding=1)
        self.res = ResBlock(cin, cout)
        self.motion = Motion(cout) if temporal else None
        if down:
            self.downsample = nn.Conv2d(cout, cout, 3, stride=2, padding=1)


class StreamUNet(nn.Module):
    def __init__(self, temporal=True, channels=(32, 64, 96)):
        super().__init__()
        c0, c1, c2 = channels
        self.temporal = temporal
        self.channels = tuple(channels)
        self.time_embedding = TimeEmbedding()
        self.conv_in = nn.Conv2d(9, c0, 3, padding=1)
        self.down = nn.ModuleList([Level(c0, c0, temporal, down=True),
                                   Level(c0, c1, temporal, down=True),
                                   Level(c1, c2, temporal)])
        self.up = nn.ModuleList([Level(2 * c1, c1, temporal, up_from=c2),
                                 Level(2 * c0, c0, temporal, up_from=c1)])
        self.conv_norm_out = nn.GroupNorm(8, c0, eps=1e-5)
        self.conv_out = nn.Conv2d(c0, 3, 3, padding=1)

    def _level(self, lvl, h, temb, nwin, slots):
        h = lvl.res(h, temb)
        if lvl.motion is not None:
            h = lvl.motion(h, nwin, slots)
        return h

    def forward(self, x, d, r, t, nwin, slots):
        """x, d: [B*F][3][H][W]; r [3][H][W]; t [B*F] timesteps; slots [F]."""
        temb = self.time_embedding(t)
        h = self.conv_in(torch.cat([x, d, r.expand(x.shape[0], -1, -1, -1)], dim=1))
        skips = []
        for i, lvl in enumerate(self.down):
            h = self._level(lvl, h, temb, nwin, slots)
            if i < 2:
                skips.append(h)
                h = lvl.downsample(h)
        for lvl in self.up:
            h = lvl.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = torch.cat([h, skips.pop()], dim=1)
            h = self._level(lvl, h, temb, nwin, slots)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ---------------------------------------------------------------------------------------------
# frames and conditioning

def resize_aa(x, h, w):
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def driving(frames, cond_h, cond_w):
    """frames [N][3][H][W] in [-1, 1] at the model size -> driving signal, same size."""
    h, w = frames.shape[-2:]
    small = resize_aa(frames, cond_h, cond_w)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False, antialias=False)


def load_vtest(cache, w=96, h=72):
    """All 795 frames of vtest.avi at w x h, [N][3][h][w] float32 in [0, 1]."""
    if cache and os.path.exists(cache):
        return np.load(cache)
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", VTEST, "-f", "rawvideo", "-pix_fmt",
                             "rgb24", "-vsync", "passthrough", "-"], stdout=subprocess.PIPE)
    out = []
    n = 768 * 576 * 3
    while True:
        buf = proc.stdout.read(n)
        if len(buf) < n:
            break
        img = torch.from_numpy(np.frombuffer(buf, np.uint8).reshape(576, 768, 3).copy())
        img = img.permute(2, 0, 1)[None].double() / 255.0
        out.append(resize_aa(img, h, w)[0].float().numpy())
    proc.wait()
    frames = np.stack(out)
    if cache:
        np.save(cache, frames)
    return frames


# ---------------------------------------------------------------------------------------------
# training

def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    frames = torch.from_numpy(load_vtest(args.cache)) * 2 - 1
    train_frames = frames[TRAIN_FRAMES[0]:TRAIN_FRAMES[1]]
    reference = train_frames.median(dim=0).values
    cond = driving(train_frames, 18, 24)
    model = StreamUNet(temporal=bool(args.temporal))
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    sa = torch.tensor([math.sqrt(level_alpha(t)) for t in LEVELS[::-1]])      # group g: LEVELS[3-g]
    sb = torch.tensor([math.sqrt(1 - level_alpha(t)) for t in LEVELS[::-1]])
    nwin_full = GROUPS * PER_GROUP
    log = open(args.log, "a") if args.log else sys.stdout
    print(f"train temporal={args.temporal} params={nparams} threads={args.threads} "
          f"batch={args.batch} crop={args.crop} lr={args.lr} minutes={args.minutes} "
          f"seed={args.seed}", file=log, flush=True)
    t0 = time.time()
    step, ema = 0, None
    while time.time() - t0 < args.minutes * 60 and step < args.steps:
        # a contiguous range of groups: full windows mostly, partial ones as the ring has
        # while filling up or draining
        g0, g1 = 0, GROUPS
        if rng.random() < 0.25:
            n = int(rng.integers(1, GROUPS))
            g0 = int(rng.integers(0, GROUPS - n + 1))
            g1 = g0 + n
        nwin = (g1 - g0) * PER_GROUP
        starts = rng.integers(0, len(train_frames) - nwin_full + 1, size=args.batch)
        idx = torch.from_numpy((starts[:, None] + np.arange(g0 * PER_GROUP, g1 * PER_GROUP)[None]).reshape(-1))
        x0, d = train_frames[idx], cond[idx]
        r = reference
        if args.crop:
            ch, cw = args.crop * 3 // 4, args.crop
            y = int(rng.integers(0, 72 - ch + 1)) // 4 * 4
            x = int(rng.integers(0, 96 - cw + 1)) // 4 * 4
            x0, d, r = (z[..., y:y + ch, x:x + cw] for z in (x0, d, r))
        if rng.random() < 0.5:
            x0, d, r = x0.flip(-1), d.flip(-1), r.flip(-1)
        grp = torch.arange(g0, g1).repeat_interleave(PER_GROUP).repeat(args.batch)
        a, b = sa[grp][:, None, None, None], sb[grp][:, None, None, None]
        eps = torch.randn_like(x0)
        xt = a * x0 + b * eps
        v = a * eps - b * x0
        t = torch.tensor(LEVELS[::-1])[grp]
        slots = torch.arange(g0 * PER_GROUP, g1 * PER_GROUP)
        pred = model(xt, d, r, t, nwin, slots)
        loss = F.mse_loss(pred, v)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.5f} ema {ema:.5f} "
                  f"elapsed {time.time() - t0:.0f}s", file=log, flush=True)
        if step % 500 == 0:
            torch.save({"model": model.state_dict(), "reference": reference, "step": step,
                        "args": vars(args)}, args.out)
    torch.save({"model": model.state_dict(), "reference": reference, "step": step,
                "args": vars(args)}, args.out)
    print(f"done steps {step} ema_loss {ema:.5f} minutes {(time.time() - t0) / 60:.1f} "
          f"params {nparams}", file=log, flush=True)


# ---------------------------------------------------------------------------------------------
# model files

def metadata(w, h, cw, ch, temporal, extra=None, channels=(32, 64, 96)):
    meta = {"arch": "rain-stream-unet", "width": str(w), "height": str(h),
            "channels": ",".join(map(str, channels)),
            "cond_width": str(cw), "cond_height": str(ch), "groups": str(GROUPS),
            "frames_per_group": str(PER_GROUP), "levels": ",".join(map(str, LEVELS)),
            "temporal": "1" if temporal else "0", "heads": str(Motion.HEADS),
            "prediction": "v", "schedule": "scaled_linear 0.00085 0.012 1000 zero_snr"}
    meta.update(extra or {})
    return meta


def tensors_of(model, reference):
    out = {k: v.detach().float().contiguous().numpy() for k, v in model.state_dict().items()}
    out["reference"] = reference.detach().float().contiguous().numpy()
    return out


def export(args):
    ck = torch.load(args.ckpt)
    temporal = bool(ck["args"]["temporal"])
    model = StreamUNet(temporal)
    model.load_state_dict(ck["model"])
    meta = metadata(96, 72, 24, 18, temporal, {
        "train_data": "vtest.avi (OpenCV sample data) frames 0-635 at 96x72",
        "train_steps": str(ck["step"]), "train_seed": str(ck["args"]["seed"]),
        "train_batch": str(ck["args"]["batch"]), "train_crop": str(ck["args"]["crop"]),
        "train_lr": str(ck["args"]["lr"]), "trainer": "tools/stream_torch.py"})
    st.save(args.out, tensors_of(model, ck["reference"]), meta)


def load_model_file(path):
    tensors, meta = st.load(path)
    model = StreamUNet(meta["temporal"] == "1", tuple(int(c) for c in meta["channels"].split(",")))
    sd = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k != "reference"}
    model.load_state_dict(sd)
    return model, torch.from_numpy(np.array(tensors["reference"])), meta


# ---------------------------------------------------------------------------------------------
# Philox noise (libcore lr_normal_fill), numpy

def philox4x32(key, ctr):
    """Vectorised over counters: ctr [4][n] uint32 arrays, key (k0, k1)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in ctr)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m32 = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        n0 = (p1 >> np.uint64(32)) ^ c1 ^ k0
        n2 = (p0 >> np.uint64(32)) ^ c3 ^ k1
        c1, c3, c0, c2 = p1 & m32, p0 & m32, n0 & m32, n2 & m32
        k0 = (k0 + np.uint64(0x9E3779B9)) & m32
        k1 = (k1 + np.uint64(0xBB67AE85)) & m32
    return c0, c1, c2, c3


def normal_fill(seed, stream, n):
    nb = (n + 3) // 4
    b = np.arange(nb, dtype=np.uint64)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    w = philox4x32(key, (b & np.uint64(0xFFFFFFFF), b >> np.uint64(32),
                         np.full(nb, stream & 0xFFFFFFFF, np.uint64), np.full(nb, stream >> 32, np.uint64)))
    out = np.empty((nb, 4), np.float64)
    for pair in range(2):
        u1 = (w[2 * pair].astype(np.float64) + 1.0) * 2.0 ** -32
        u2 = w[2 * pair + 1].astype(np.float64) * 2.0 ** -32
        r = np.sqrt(-2.0 * np.log(u1))
        out[:, 2 * pair] = r * np.cos(2 * np.pi * u2)
        out[:, 2 * pair + 1] = r * np.sin(2 * np.pi * u2)
    return out.reshape(-1)[:n].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the ring

def denoise_call(model, reference, xs, ds, levels, slots):
    x = torch.stack(xs)
    d = torch.stack(ds)
    t = torch.tensor(levels)
    with torch.no_grad():
        return model(x, d, reference, t, len(xs), torch.tensor(slots))


def run_stream(model, reference, frames01, meta, seed, calls=None):
    """frames01 [N][3][h][w] in [0, 1] (any size) -> outputs [N][3][H][W] in [0, 1], clamped.
    calls: optional list collecting (x, d, levels, slots, v) of every denoiser call."""
    W, H = int(meta["width"]), int(meta["height"])
    cw, ch = int(meta["cond_width"]), int(meta["cond_height"])
    p, G = int(meta["frames_per_group"]), int(meta["groups"])
    n = frames01.shape[0]
    fr = frames01 if frames01.shape[-2:] == (H, W) else resize_aa(frames01.double(), H, W).float()
    fr = fr * 2 - 1
    cond = driving(fr, ch, cw)
    ring = []   # groups: dict(level, xs, ds, first)
    out = []

    def step():
        xs, ds, lv, sl = [], [], [], []
        for g in ring:
            rank = LEVELS[::-1].index(g["level"])
            for i in range(len(g["xs"])):
                xs.append(g["xs"][i]); ds.append(g["ds"][i]); lv.append(g["level"])
                sl.append(p * rank + i)
        v = denoise_call(model, reference, xs, ds, lv, sl)
        if calls is not None:
            calls.append((torch.stack(xs), torch.stack(ds), lv, sl, v))
        j = 0
        for g in ring:
            t = g["level"]
            tn = next_level(t)
            a, an = level_alpha(t), level_alpha(tn)
            for i in range(len(g["xs"])):
                x = g["xs"][i]
                x0 = math.sqrt(a) * x - math.sqrt(1 - a) * v[j]
                eps = math.sqrt(1 - a) * x + math.sqrt(a) * v[j]
                g["xs"][i] = math.sqrt(an) * x0 + math.sqrt(1 - an) * eps
                j += 1
            g["level"] = tn
        if ring and ring[0]["level"] < 0:
            g = ring.pop(0)
            out.extend(g["xs"])

    def push(k0, k1):
        xs = [torch.from_numpy(normal_fill(seed, k, 3 * H * W).reshape(3, H, W)) for k in range(k0, k1)]
        ring.append({"level": LEVELS[0], "xs": xs, "ds": [cond[k] for k in range(k0, k1)]})

    for k0 in range(0, n - n % p, p):
        push(k0, k0 + p)
        step()
    if n % p:
        push(n - n % p, n)
        step()
    while ring:
        step()
    return torch.stack([((x + 1) / 2).clamp(0, 1) for x in out])


# ---------------------------------------------------------------------------------------------
# fixtures

def f16(t):
    """Rounds to float16 and back: fixture tensors travel as F16 (libcore widens them exactly)."""
    return t.half().float()


def fixtures(args):
    """Random weights (rounded to F16, stored F16) at 24 x 16 (cond 6 x 4), channels 8/16/24:
    one denoiser call on 6 frames at mixed levels, for both models, and a whole ring run on 10
    frames of 30 x 20 (seed 77), plus schedule values and a stretch of the Philox noise."""
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    W, H, cw, ch = 24, 16, 6, 4
    chans = (8, 16, 24)
    model = StreamUNet(True, chans)
    with torch.no_grad():   # random weights everywhere, proj_out too (zero would hide motion)
        for name, prm in model.named_parameters():
            if name.endswith("weight") and prm.dim() > 1:
                prm.copy_(f16(torch.randn_like(prm) / math.sqrt(prm[0].numel())))
            else:
                base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
                prm.copy_(f16(torch.randn_like(prm) * 0.1 + base))
    reference = f16(torch.rand(3, H, W) * 2 - 1)
    os.makedirs(args.outdir, exist_ok=True)

    def save_model(m, path, temporal):
        t = {k: v.detach().half().numpy() for k, v in m.state_dict().items()}
        t["reference"] = reference.half().numpy()
        st.save(path, t, metadata(W, H, cw, ch, temporal, {"note": "random weights: test fixture"},
                                  channels=chans))
    meta = metadata(W, H, cw, ch, True, channels=chans)
    save_model(model, os.path.join(args.outdir, "model.safetensors"), True)
    model_off = StreamUNet(False, chans)
    model_off.load_state_dict({k: v for k, v in model.state_dict().items() if ".motion." not in k})
    # (the test derives the temporal-off file from model.safetensors: fixtures stay small)

    # one call: 6 frames at mixed levels (a ring draining: 2 frames at 749, 4 at 999)
    torch.manual_seed(5)
    x = f16(torch.randn(6, 3, H, W))
    d = f16(driving(torch.rand(6, 3, H, W) * 2 - 1, ch, cw))
    levels = [749, 749, 999, 999, 999, 999]
    slots = [8, 9, 12, 13, 14, 15]
    v = denoise_call(model, reference, list(x), list(d), levels, slots)
    v_off = denoise_call(model_off, reference, list(x), list(d), levels, slots)
    # the ring: 10 input frames of 30 x 20 (resized inside), seed 77
    frames = torch.rand(10, 3, 22, 32)
    frames = f16(F.avg_pool2d(frames, 3, 1))   # smoother, 30 x 20
    ring_out = run_stream(model, reference, frames, meta, 77)
    tensors = {"call_x": x.half().numpy(), "call_d": d.half().numpy(),
               "call_levels": np.array(levels, np.int32), "call_slots": np.array(slots, np.int32),
               "call_v": v.numpy(), "call_v_off": v_off.numpy(),
               "ring_in": frames.half().numpy(), "ring_out": ring_out.numpy(),
               "abar": np.array([level_alpha(t) for t in LEVELS] + [float(ABAR[0])], np.float64),
               "noise_77_3": normal_fill(77, 3, 64)}
    st.save(os.path.join(args.outdir, "golden.safetensors"),
            {k: np.ascontiguousarray(a) for k, a in tensors.items()},
            {"ring_seed": "77", "abar_levels": "999,749,499,249,0"})


# ---------------------------------------------------------------------------------------------
# evaluation

def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / mse)


def ssim(a, b):
    """Mean SSIM over channels, 11x11 Gaussian window sigma 1.5, data range 1 (Wang et al.)."""
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5 ** 2))
    g = (g / g.sum())
    win = (g[:, None] * g[None]).expand(3, 1, 11, 11)
    a, b = a.double()[None], b.double()[None]

    def f(z):
        return F.conv2d(z, win, groups=3)
    mu_a, mu_b = f(a), f(b)
    saa = f(a * a) - mu_a ** 2
    sbb = f(b * b) - mu_b ** 2
    sab = f(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def scores(out, gt):
    ps = np.mean([psnr(o, g) for o, g in zip(out, gt)])
    ss = np.mean([ssim(o, g) for o, g in zip(out, gt)])
    flick = float(((out[1:] - out[:-1]) - (gt[1:] - gt[:-1])).abs().mean())
    return ps, ss, flick


def evaluate(args):
    torch.set_num_threads(args.threads)
    frames = torch.from_numpy(load_vtest(args.cache))
    gt = frames[EVAL_FRAMES[0]:EVAL_FRAMES[1]][:args.limit or None]
    rows = []
    base = ((driving(gt * 2 - 1, 18, 24) + 1) / 2).clamp(0, 1)
    rows.append(("baseline bilinear up of driving 24x18",) + scores(base, gt))
    for path in args.models:
        model, reference, meta = load_model_file(path)
        model.eval()
        t0 = time.time()
        out = run_stream(model, reference, gt, meta, args.seed)
        dt = time.time() - t0
        rows.append((f"{os.path.basename(path)} temporal={meta['temporal']} "
                     f"({1000 * dt / len(gt):.0f} ms/frame torch)",) + scores(out, gt))
    print(f"held-out vtest frames {EVAL_FRAMES[0]}-{EVAL_FRAMES[0] + len(gt) - 1} at 96x72, seed {args.seed}")
    for name, ps, ss, fl in rows:
        print(f"{name}: PSNR {ps:.2f} dB  SSIM {ss:.4f}  flicker {fl:.5f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("train")
    a.add_argument("--temporal", type=int, default=1)
    a.add_argument("--minutes", type=float, default=25)
    a.add_argument("--steps", type=int, default=10 ** 9)
    a.add_argument("--batch", type=int, default=2)
    a.add_argument("--crop", type=int, default=48, help="train on crops this wide (0: whole frames)")
    a.add_argument("--lr", type=float, default=1e-3)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--cache", default="")
    a.add_argument("--log", default="")
    a.add_argument("--out", required=True)
    a = sub.add_parser("export")
    a.add_argument("ckpt")
    a.add_argument("out")
    a = sub.add_parser("fixtures")
    a.add_argument("outdir")
    a = sub.add_parser("eval")
    a.add_argument("models", nargs="+")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--limit", type=int, default=0, help="only the first N held-out frames")
    a.add_argument("--cache", default="")
    args = ap.parse_args()
    {"train": train, "export": export, "fixtures": fixtures, "eval": evaluate}[args.cmd](args)


if __name__ == "__main__":
    main()
