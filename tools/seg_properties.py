#!/usr/bin/python3
"""seg-run's properties on real photos, and its PNG-kind fixtures (numpy, zlib, struct).

    python3 tools/seg_properties.py check SEG-RUN IMAGE...   (from the repository root)
        For each photo (8-bit grey or RGB PNG, not interlaced), writes transformed copies to a
        temporary folder: horizontal flip, brightness x0.7 and x1.3, mild Gaussian noise
        (sigma 4/255, seed 0), the person pasted onto another background (the photo's own
        mask cuts the person out; the background is a smooth colour ramp), runs SEG-RUN -f mask
        on each and prints the IoU of the person mask against the unmodified photo's (the flip
        mask flipped back). The IoU is 1 when both masks are empty. Exit status 1 when an IoU
        is below its minimum (MINIMUM below). The selfie model segments people: photos
        without a person (a cat) give unstable blobs, so pass photos of people.
    python3 tools/seg_properties.py resize SEG-RUN PHOTO
        Checks seg-run's input and output resizing independently of any trained network: an
        identity "pointwise" model (logits = the network's RGB input) with a 64x48 input
        gives --logits equal to numpy's half-pixel bilinear resize of PHOTO (no antialias);
        and the selfie model's -f npy probabilities equal numpy's sigmoid of its --logits,
        resized back to PHOTO's size. Prints the largest differences.
    python3 tools/seg_properties.py fixtures PHOTO OUTDIR
        Writes tests/fixtures/seg-run/: a 72x96 crop-and-subsample of PHOTO as kinds.png (8-bit
        RGB) and its twins: grey8 (+ grey8-rgb8, its RGB replica), rgb16 (v * 257), rgba8
        (alpha ramp), palette (<= 256 colours, + palette-rgb8, its RGB expansion) and
        rgb8-interlaced (Adam7). Every twin decodes to the same RGB as its -rgb8 partner, so
        seg-run must give the same mask.
        Also the many-class test case: shapes.png (40x30: black, a red rectangle at x 4..15,
        y 6..21, a blue one at x 24..35, y 10..25, so 384 of 1200 pixels are not background)
        and arch "pointwise" models (cmd/seg-run/pointwise.c) that label it exactly:
        classes background, red, blue with logits 0, 20 R - 20 B - 5, 20 B - 20 R - 5;
        pointwise-40x30 (stride 1), pointwise-40x30-s2 (stride 2: the rectangles are aligned to
        its blocks, so the labels come back the same after the resize) and pointwise-40x40
        (letterboxed, the image fits exactly).
"""

import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np


def read_png(path):
    """8-bit grey/RGB/RGBA, non-interlaced, as uint8 [H][W][C]."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and interlace == 0 and ctype in (0, 2, 4, 6), path
    c = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * c
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - c] if x >= c else 0
            b = prev[x]
            d = prev[x - c] if x >= c else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - d), abs(a - d), abs(a + b - 2 * d)
                p = a if pa <= pb and pa <= pc else b if pb <= pc else d
            cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, c).astype(np.uint8)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_rows(img, depth):
    """Scanlines with filter 0; img [H][W][C] (uint8, or uint16 for depth 16; palette: [H][W])."""
    if depth == 16:
        return b"".join(b"\0" + row.astype(">u2").tobytes() for row in img)
    return b"".join(b"\0" + row.tobytes() for row in img)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def write_png(path, img, ctype, depth=8, palette=None, interlaced=False):
    h, w = img.shape[:2]
    if interlaced:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = img[y0::dy, x0::dx]
            if sub.size:
                data += raw_rows(sub, depth)
    else:
        data = raw_rows(img, depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0,
                                                           1 if interlaced else 0))
    if palette is not None:
        out += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    out += chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def fixtures(photo, outdir):
    src = read_png(photo)
    if src.shape[2] == 1:
        src = np.repeat(src, 3, axis=2)
    src = src[:, :, :3]
    h, w = src.shape[:2]
    # A 72x96 (w x h) view of the whole photo by subsampling: the person stays recognisable.
    ys = (np.arange(96) * h // 96)
    xs = (np.arange(72) * w // 72)
    rgb = src[ys][:, xs]
    os.makedirs(outdir, exist_ok=True)
    p = lambda name: os.path.join(outdir, name + ".png")
    write_png(p("kinds"), rgb, 2)
    grey = np.round(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    write_png(p("grey8"), grey[:, :, None], 0)
    write_png(p("grey8-rgb8"), np.repeat(grey[:, :, None], 3, axis=2), 2)
    write_png(p("rgb16"), rgb.astype(np.uint16) * 257, 2, depth=16)
    alpha = (np.arange(72)[None, :] * 255 // 71 + np.zeros((96, 1), int)).astype(np.uint8)
    write_png(p("rgba8"), np.dstack([rgb, alpha]), 6)
    # Palette: 6x6x6 colour cube (216 entries); its twin is the quantised RGB.
    q = (rgb.astype(np.int32) * 5 + 127) // 255
    idx = (q[:, :, 0] * 36 + q[:, :, 1] * 6 + q[:, :, 2]).astype(np.uint8)
    cube = np.array([[r * 51, g * 51, b * 51] for r in range(6) for g in range(6)
                     for b in range(6)])
    write_png(p("palette"), idx, 3, palette=cube)
    write_png(p("palette-rgb8"), cube[idx].astype(np.uint8), 2)
    write_png(p("rgb8-interlaced"), rgb, 2, interlaced=True)
    shapes = np.zeros((30, 40, 3), np.uint8)
    shapes[6:22, 4:16, 0] = 255
    shapes[10:26, 24:36, 2] = 255
    write_png(p("shapes"), shapes, 2)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    from longrange import safetensors as st
    weight = np.array([[0, 0, 0], [20, 0, -20], [-20, 0, 20]], np.float32)
    bias = np.array([0, -5, -5], np.float32)
    for name, w, h, stride in [("pointwise-40x30", 40, 30, 1), ("pointwise-40x30-s2", 40, 30, 2),
                               ("pointwise-40x40", 40, 40, 1)]:
        st.save(os.path.join(outdir, name + ".safetensors"), {"weight": weight, "bias": bias},
                {"arch": "pointwise", "classes": "3", "stride": str(stride),
                 "input_width": str(w), "input_height": str(h),
                 "class_names": "background,red,blue", "palette": "0,0,0,255,0,0,0,0,255"})
    # A valid PNG (CRCs right) whose IHDR says width 0.
    with open(p("zero-width"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def mask(seg_run, path, tmp):
    out = os.path.join(tmp, "m.png")
    subprocess.run([seg_run, "-j1", "-f", "mask", "-o", out, path], check=True)
    return read_png(out)[:, :, 0] > 127


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


# The least IoU each property must keep (measured on astronaut and camera: see seg-run(1)).
MINIMUM = {"flip": 0.95, "bright0.7": 0.95, "bright1.3": 0.95, "noise": 0.98,
           "background": 0.93}


def check(seg_run, images):
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        print("image\tflip\tbright0.7\tbright1.3\tnoise\tbackground\tcoverage")
        for path in images:
            img = read_png(path)
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            img = img[:, :, :3].astype(np.float64)
            base = mask(seg_run, path, tmp)
            h, w = base.shape
            rng = np.random.default_rng(0)
            ramp = np.stack([np.linspace(40, 200, w)[None, :].repeat(h, 0),
                             np.linspace(180, 60, h)[:, None].repeat(w, 1),
                             np.full((h, w), 120.0)], axis=2)
            cases = [
                ("flip", img[:, ::-1], lambda m: m[:, ::-1]),
                ("bright0.7", img * 0.7, None),
                ("bright1.3", img * 1.3, None),
                ("noise", img + rng.normal(0, 4, img.shape), None),
                ("background", np.where(base[:, :, None], img, ramp), None),
            ]
            row = [os.path.basename(path)]
            for name, pix, undo in cases:
                f = os.path.join(tmp, name + ".png")
                write_png(f, np.clip(np.round(pix), 0, 255).astype(np.uint8), 2)
                m = mask(seg_run, f, tmp)
                if undo:
                    m = undo(m)
                v = iou(base, m)
                if v < MINIMUM[name]:
                    failed.append("%s %s %.4f < %.2f" % (os.path.basename(path), name, v,
                                                         MINIMUM[name]))
                row.append("%.4f" % v)
            row.append("%.4f" % base.mean())
            print("\t".join(row))
    for line in failed:
        print("below the minimum: " + line)
    return 1 if failed else 0


def bilinear(img, h, w):
    """Half-pixel bilinear resize of [H][W][C] float64, no antialias, border clamped."""
    H, W = img.shape[:2]

    def axis(n_out, n_in):
        x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        x = np.clip(x, 0, n_in - 1)
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, x - i0

    y0, y1, fy = axis(h, H)
    x0, x1, fx = axis(w, W)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def load_npy_run(seg_run, args, tmp):
    out = os.path.join(tmp, "r.npy")
    subprocess.run([seg_run, "-j1", "-f", "npy", "-o", out] + args, check=True)
    return np.load(out).astype(np.float64)


def check_resize(seg_run, photo):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    from longrange import safetensors as st
    img = read_png(photo).astype(np.float64) / 255
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = img[:, :, :3]
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "identity.safetensors")
        st.save(model, {"weight": np.eye(3, dtype=np.float32), "bias": np.zeros(3, np.float32)},
                {"arch": "pointwise", "classes": "3", "input_width": "64", "input_height": "48"})
        got = load_npy_run(seg_run, ["-m", model, "--logits", photo], tmp)
        want = bilinear(img, 48, 64).transpose(2, 0, 1)
        d_in = np.abs(got - want).max()
        logits = load_npy_run(seg_run, ["--logits", photo], tmp)
        prob = load_npy_run(seg_run, [photo], tmp)
        sigmoid = 0.5 * (1 + np.tanh(logits / 2))  # no overflow for logits of -800
        want = bilinear(sigmoid[:, :, None], *prob.shape)[:, :, 0]
        d_out = np.abs(prob - want).max()
    print("input resize: max |seg-run - numpy| %.3g; output resize: %.3g" % (d_in, d_out))
    return 0 if d_in < 1e-5 and d_out < 1e-5 else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "resize":
        sys.exit(check_resize(sys.argv[2], sys.argv[3]))
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) == 4 and sys.argv[1] == "fixtures":
        fixtures(sys.argv[2], sys.argv[3])
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
