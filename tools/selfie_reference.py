#!/usr/bin/python3
"""Independent numpy reference of MediaPipe selfie segmentation, run straight from the .tflite.

    /usr/bin/python3 tools/selfie_reference.py fixtures [--data ../shared/data]
        writes tests/fixtures/selfie/: astronaut-256.png (the astronaut stretched to 256x256,
        8-bit RGB) and astronaut-256.<model>.logits.npy for selfie and selfie-landscape
        (float32 [H][W] logits before the graph's final LOGISTIC, computed in float64 from
        that PNG's pixels / 255, stretched to the model's size); <image>.<model>.mask.rle, the
        reference mask (logit > 0) at the model's size of every DATA/images PNG (one line per
        row: alternating run lengths, background first); bad-shape.safetensors (conv2d_1.weight
        in TFLite's OHWI order, the graph cut after it)
    /usr/bin/python3 tools/selfie_reference.py compare --seg-run bin/seg-run [--data ...]
        for every PNG in DATA/images and both models: max |logit difference| and mask IoU
        (logit > 0) of `seg-run -f npy --logits` against this reference, and the timing of one
        reference forward (float32 and float64)
    /usr/bin/python3 tools/selfie_reference.py run MODEL.tflite IMAGE.png OUT.npy

This is an interpreter of the TFLite graph itself (the operator list, NHWC, TFLite's own weight
layouts OHWI / [1,kh,kw,C]), written from the TFLite op definitions and sharing nothing with
cmd/seg-run/selfie.c or the converter's layer sequence: only the FlatBuffers reader
(tools/convert_mediapipe_selfie.py's TFLite class) is reused. Semantics, per op:
  CONV_2D / DEPTHWISE_CONV_2D  TF padding: SAME -> ceil(n/s) outputs, total pad
      max((o-1)s + k - n, 0), floor half before, the rest after; VALID -> none
  HARD_SWISH x*relu6(x+3)/6; RELU; LOGISTIC
  AVERAGE_POOL_2D (whole map, VALID) / MEAN over axes [1,2]
  MUL, ADD with numpy broadcasting
  RESIZE_BILINEAR with half_pixel_centers: src = (i+0.5)*in/out - 0.5, lower =
      max(floor(src), 0), upper = min(ceil(src), in-1), weight src - floor(src)
  Convolution2DTransposeBias (MediaPipe): out[y*s+i][x*s+j][o] = b[o] +
      sum_c w[o][i][j][c] in[y][x][c] for kernel = stride (no overlap)
The transposed convolution's indexing (no kernel flip, OHWI weights, SAME padding 0 for
kernel = stride on even sizes) was read from google-ai-edge/mediapipe
mediapipe/util/tflite/operations/transpose_conv_bias.cc; the SAME split from TFLite's padding
rule (total/2 before, the odd one after).
The image reaches the model as MediaPipe's CPU graph feeds it: RGB / 255 (grey replicated),
stretched to the input size by the same half-pixel bilinear rule, no antialiasing (seg-run's
default). PNGs are decoded here (zlib + the five filters; 8/16-bit grey, RGB, palette, alpha;
not interlaced). No TensorFlow, PIL or OpenCV.
"""

import argparse
import glob
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_mediapipe_selfie import (  # noqa: E402
    ADD, AVERAGE_POOL_2D, CONV_2D, CUSTOM, DEPTHWISE_CONV_2D, DEQUANTIZE, HARD_SWISH, LOGISTIC,
    MEAN, MUL, RELU, RESIZE_BILINEAR, SAME, TFLite, op_options)
from longrange import safetensors as st  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"selfie": "selfie_segmentation.tflite",
          "selfie-landscape": "selfie_segmentation_landscape.tflite"}


# ---------------------------------------------------------------- PNG
def read_png(path):
    """uint8/uint16 array [H][W][C] (C = 1..4) of a non-interlaced PNG."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, plte, trns = 8, [], None, None
    while pos < len(blob):
        n, kind = struct.unpack_from(">I4s", blob, pos)
        data = blob[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data)
        elif kind == b"PLTE":
            plte = np.frombuffer(data, np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = data
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"IEND":
            break
    if interlace or depth not in (8, 16) or (ctype == 3 and depth != 8):
        raise ValueError("%s: interlaced or bit depth %d not supported here" % (path, depth))
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bpp = chans * depth // 8
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average, Paeth depend on the bytes just decoded: byte by byte
            cur = line.tolist()
            up = prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                if ftype == 1:
                    p = a
                elif ftype == 3:
                    p = (a + up[i]) >> 1
                elif ftype == 4:
                    b, c = up[i], (up[i - bpp] if i >= bpp else 0)
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else:
                    raise ValueError("%s: bad filter %d" % (path, ftype))
                cur[i] = (cur[i] + p) & 255
            cur = np.array(cur, np.int32)
        out[y] = cur
        prev = cur
    if depth == 16:
        img = out.view(">u2").reshape(h, w, chans).astype(np.uint16)
    else:
        img = out.reshape(h, w, chans)
    if ctype == 3:
        rgb = plte[img[:, :, 0]]
        if trns:
            alpha = np.full(256, 255, np.uint8)
            alpha[:len(trns)] = np.frombuffer(trns, np.uint8)
            rgb = np.concatenate([rgb, alpha[img[:, :, 0]][:, :, None]], axis=2)
        img = rgb
    return img


def write_png(path, rgb, level=9):
    """8-bit RGB [H][W][3] or grey [H][W], filter 0 on every row."""
    h, w = rgb.shape[:2]
    colour = 2 if rgb.ndim == 3 else 0
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def image_rgb01(img):
    """[H][W][3] float64 in 0..1 (grey replicated, alpha dropped)."""
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    x = img.astype(np.float64) / scale
    if x.shape[2] < 3:
        x = np.repeat(x[:, :, :1], 3, axis=2)
    return x[:, :, :3]


# ---------------------------------------------------------------- ops (NHWC without N)
def resize_axis(x, axis, n_out):
    """TF ResizeBilinear with half_pixel_centers along one axis."""
    n_in = x.shape[axis]
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    fl = np.floor(src)
    lower = np.maximum(fl, 0).astype(int)
    upper = np.minimum(np.ceil(src), n_in - 1).astype(int)
    lerp = (src - fl).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lo, up = np.take(x, lower, axis=axis), np.take(x, upper, axis=axis)
    return lo + (up - lo) * lerp.reshape(shape)


def resize_bilinear(x, h, w):
    return resize_axis(resize_axis(x, 0, h), 1, w)


def tf_pad(n, k, s, same):
    if not same:
        return (n - k) // s + 1, 0, 0
    o = -(-n // s)
    total = max((o - 1) * s + k - n, 0)
    return o, total // 2, total - total // 2


def conv(x, w, b, stride, same, depthwise):
    """x [H][W][C]; w OHWI (conv) or [1][kh][kw][C] (depthwise)."""
    H, W, C = x.shape
    kh, kw = w.shape[1], w.shape[2]
    oh, top, bottom = tf_pad(H, kh, stride, same)
    ow, left, right = tf_pad(W, kw, stride, same)
    xp = np.zeros((H + top + bottom, W + left + right, C), x.dtype)
    xp[top:top + H, left:left + W] = x
    cout = C if depthwise else w.shape[0]
    out = np.zeros((oh, ow, cout), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride]
            if depthwise:
                out += patch * w[0, ky, kx]
            else:
                out += patch @ w[:, ky, kx, :].T
    return out + b


class Reference:
    def __init__(self, tflite_path, dtype=np.float64):
        self.tfl = TFLite(tflite_path)
        self.dtype = dtype
        t = self.tfl.tensors[self.tfl.inputs[0]]
        self.height, self.width = t["shape"][1], t["shape"][2]
        self.consts = {}
        for op in self.tfl.ops:  # DEQUANTIZE of constants: done once
            if op["code"] == DEQUANTIZE:
                self.consts[op["outputs"][0]] = self.tfl.const(op["inputs"][0]).astype(dtype)

    def forward(self, x):
        """x [H][W][3] in 0..1 -> logits [H][W] (the input of the final LOGISTIC)."""
        tfl, T = self.tfl, self.tfl.tensors
        v = {tfl.inputs[0]: np.asarray(x, self.dtype)}
        final = tfl.outputs[0]
        for op in tfl.ops:
            code, ins, out = op["code"], op["inputs"], op["outputs"][0]
            if code == DEQUANTIZE:
                continue
            o = op_options(tfl, op)
            if o.get("act", 0):
                raise ValueError("fused activation not supported")
            a = v.get(ins[0])
            if code in (CONV_2D, DEPTHWISE_CONV_2D):
                assert o["stride_w"] == o["stride_h"] and o.get("dil_w", 1) == 1
                r = conv(a, self.consts[ins[1]], self.consts[ins[2]], o["stride_w"],
                         o["padding"] == SAME, code == DEPTHWISE_CONV_2D)
            elif code == CUSTOM:
                assert op["custom"] == "Convolution2DTransposeBias"
                w, b, s = self.consts[ins[1]], self.consts[ins[2]], o["stride_w"]
                assert w.shape[1] == w.shape[2] == s == o["stride_h"]
                H, W, _ = a.shape
                y = np.einsum("hwc,oijc->hiwjo", a, w).reshape(H * s, W * s, w.shape[0])
                r = y + b
            elif code == HARD_SWISH:
                r = a * np.clip(a + 3, 0, 6) / 6
            elif code == RELU:
                r = np.maximum(a, 0)
            elif code == LOGISTIC:
                if out == final:
                    return a[:, :, 0]
                e = np.exp(-np.abs(a))  # stable for |a| of hundreds
                r = np.where(a >= 0, 1 / (1 + e), e / (1 + e))
            elif code == AVERAGE_POOL_2D:
                assert (o["filter_h"], o["filter_w"]) == a.shape[:2]
                r = a.mean(axis=(0, 1), keepdims=True)
            elif code == MEAN:
                assert sorted(tfl.const(ins[1]).ravel().tolist()) == [1, 2]
                r = a.mean(axis=(0, 1), keepdims=True)
            elif code == MUL:
                r = a * v[ins[1]]
            elif code == ADD:
                r = a + v[ins[1]]
            elif code == RESIZE_BILINEAR:
                assert o["half_pixel_centers"] and not o["align_corners"]
                h, w = tfl.const(ins[1]).ravel().tolist()
                r = resize_bilinear(a, h, w)
            else:
                raise ValueError("unknown op %d" % code)
            want = T[out]["shape"][1:]
            if list(r.shape) != want:
                raise ValueError("%s: shape %s, the graph says %s" % (T[out]["name"], r.shape, want))
            v[out] = r
        raise ValueError("no final LOGISTIC")


# ---------------------------------------------------------------- commands
def model_input(ref, path):
    return resize_bilinear(image_rgb01(read_png(path)), ref.height, ref.width)


def cmd_fixtures(a):
    """One 256x256 PNG (the astronaut stretched to the square model's size, rounded to 8 bits)
    and the logits of both models for it: the landscape model sees it stretched again to
    256x144 by the same half-pixel rule as seg-run (under 600 KB in all)."""
    out = os.path.join(REPO, "tests", "fixtures", "selfie")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(a.data, "seg", "mediapipe-selfie-tflite")
    ref = Reference(os.path.join(src, MODELS["selfie"]))
    x = model_input(ref, os.path.join(a.data, "images", "astronaut.png"))
    x8 = np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)
    png = os.path.join(out, "astronaut-256.png")
    write_png(png, x8)
    for model in MODELS:
        ref = Reference(os.path.join(src, MODELS[model]))
        logits = ref.forward(model_input(ref, png))
        name = "astronaut-256.%s.logits.npy" % model
        np.save(os.path.join(out, name), logits.astype(np.float32))
        print("%s: %dx%d, logits %.1f..%.1f, foreground %.3f"
              % (name, ref.width, ref.height, logits.min(), logits.max(), (logits > 0).mean()))
        # the reference mask (logit > 0) of every full-size image, for the IoU check
        for image in sorted(glob.glob(os.path.join(a.data, "images", "*.png"))):
            mask = ref.forward(model_input(ref, image)) > 0
            name = "%s.%s.mask.rle" % (os.path.splitext(os.path.basename(image))[0], model)
            with open(os.path.join(out, name), "w") as f:
                f.write(mask_rle(mask))
    # a model with a mis-shaped tensor: conv2d_1.weight in TFLite's OHWI order [16,1,1,16]
    # (same bytes, wrong shape), the rest of the graph cut off after it
    tensors, meta = st.load(os.path.join(REPO, "models", "selfie.safetensors"))
    bad = {k: v for k, v in tensors.items() if k.split(".")[0] in ("conv2d", "conv2d_1")}
    bad["conv2d_1.weight"] = bad["conv2d_1.weight"].reshape(16, 1, 1, 16)
    st.save(os.path.join(out, "bad-shape.safetensors"), bad, meta)


def mask_rle(mask):
    """One line per row: the lengths of alternating runs, background first (may be 0)."""
    lines = []
    for row in mask:
        runs, value, n = [], False, 0
        for v in row:
            if v != value:
                runs.append(n)
                value, n = v, 0
            n += 1
        runs.append(n)
        lines.append(" ".join(map(str, runs)))
    return "\n".join(lines) + "\n"


def run_c(seg_run, model, png, threads=2):
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "l.npy")
        subprocess.run([seg_run, "-m", model, "-j", str(threads), "-f", "npy", "--logits",
                        "-o", npy, png], check=True)
        return np.load(npy)


def cmd_compare(a):
    src = os.path.join(a.data, "seg", "mediapipe-selfie-tflite")
    worst_diff, worst_iou = 0.0, 1.0
    for model in MODELS:
        ref = Reference(os.path.join(src, MODELS[model]))
        for png in sorted(glob.glob(os.path.join(a.data, "images", "*.png"))):
            want = ref.forward(model_input(ref, png))
            got = run_c(a.seg_run, model, png).astype(np.float64)
            if got.shape != want.shape:
                raise SystemExit("%s %s: C gives %s, reference %s" % (model, png, got.shape, want.shape))
            diff = np.abs(got - want).max()
            mg, mw = got > 0, want > 0
            iou = (mg & mw).sum() / max((mg | mw).sum(), 1)
            worst_diff, worst_iou = max(worst_diff, diff), min(worst_iou, iou)
            print("%-16s %-14s max|logit diff| %.5f  (logits %.0f..%.0f)  mask IoU %.6f"
                  % (model, os.path.basename(png), diff, want.min(), want.max(), iou))
        # timing of the reference itself on the same graph
        x = np.random.default_rng(0).random((ref.height, ref.width, 3))
        for dt in (np.float32, np.float64):
            r = Reference(os.path.join(src, MODELS[model]), dt)
            r.forward(x)
            t0 = time.perf_counter()
            for _ in range(3):
                r.forward(x)
            print("%-16s numpy %s reference: %.1f ms per %dx%d forward"
                  % (model, np.dtype(dt).name, (time.perf_counter() - t0) / 3 * 1e3, ref.width,
                     ref.height))
    print("worst: max|logit diff| %.5f (target 0.05), IoU %.6f (target 0.995)" % (worst_diff, worst_iou))
    return 0 if worst_diff <= 0.05 and worst_iou >= 0.995 else 1


def cmd_bench(a):
    """The whole job seg-run does, in numpy float32: read the PNG, stretch it to the model's
    input, the graph, the sigmoid, the probabilities back to the image's size, the threshold,
    a mask PNG written. Prints "... = X ms per image"."""
    ref = Reference(a.model, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            img = read_png(a.image)
            x = model_input(ref, a.image).astype(np.float32)
            logits = ref.forward(x)
            e = np.exp(-np.abs(logits))
            prob = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
            prob = resize_bilinear(prob[:, :, None], img.shape[0], img.shape[1])
            mask = np.where(prob > 0.5, 255, 0).astype(np.uint8)
            write_png(os.path.join(tmp, "mask.png"), mask[:, :, 0], level=6)  # libpng's level
            best = min(best, time.perf_counter() - t0)
    print("numpy float32 %s %dx%d end to end = %.1f ms per image"
          % (os.path.basename(a.model), img.shape[1], img.shape[0], best * 1e3))


def cmd_run(a):
    ref = Reference(a.model)
    np.save(a.out, ref.forward(model_input(ref, a.image)).astype(np.float32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fixtures")
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    p = sub.add_parser("compare")
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--seg-run", default=os.path.join(REPO, "bin", "seg-run"))
    p = sub.add_parser("bench")
    p.add_argument("model", help="a .tflite file")
    p.add_argument("image")
    p.add_argument("--repeat", type=int, default=3)
    p = sub.add_parser("run")
    p.add_argument("model")
    p.add_argument("image")
    p.add_argument("out")
    a = ap.parse_args()
    return {"fixtures": cmd_fixtures, "compare": cmd_compare, "bench": cmd_bench,
            "run": cmd_run}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
