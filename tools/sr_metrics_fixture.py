#!/usr/bin/python3
"""sr-run's image-quality metrics written again in numpy (float64), independently of the C code
(cmd/sr-run/metrics.c), and the tool that wrote sr-run's weight-free bicubic model files.

    /usr/bin/python3 tools/sr_metrics_fixture.py models     (models/bicubic-x2, -x4.safetensors)
    /usr/bin/python3 tools/sr_metrics_fixture.py fixture    (tests/fixtures/sr-run/)

The fixture: two small 8-bit RGB PNGs (a smooth pattern and a noisy copy of it, written with
zlib alone) and metrics.tsv, their PSNR and SSIM as `sr-run compare` must print them; and
small PNGs of every colour type for tests/cli/sr-run.sh (grey 8/16, grey+alpha, RGB 8/16,
RGBA, palette with tRNS, interlaced grey 4-bit, colour chunks gAMA/sRGB/iCCP) and a bicubic
model that works on the luma only (channels 1), to exercise the YCbCr path.

Definitions (the super-resolution literature's, as BasicSR and MATLAB compute them):
  Y   = studio-range BT.601 luma of R, G, B in 0..255, not rounded:
        16 + (65.481 R + 128.553 G + 24.966 B) / 255
  PSNR = 10 log10(255^2 / mean((Y1 - Y2)^2))
  SSIM (Wang et al. 2004): an 11x11 Gaussian window, sigma 1.5, normalised to sum 1, over the
        valid positions only (no padding); C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2;
        mu, sigma^2 and the covariance from the window's weighted moments; the mean of the map.
  Both after cropping `crop` pixels from every side (eval uses crop = scale; compare 0).
"""

import os
import struct
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


def luma(rgb):
    """rgb: [3, H, W] in 0..255 -> studio-range Y in 0..255 (float64)."""
    r, g, b = (rgb[i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def gaussian_window(size=11, sigma=1.5):
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def filter_valid(img, w):
    k = w.shape[0]
    h, wd = img.shape[0] - k + 1, img.shape[1] - k + 1
    out = np.zeros((h, wd))
    for dy in range(k):
        for dx in range(k):
            out += w[dy, dx] * img[dy:dy + h, dx:dx + wd]
    return out


def ssim(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = gaussian_window()
    mu1, mu2 = filter_valid(a, w), filter_valid(b, w)
    s11 = filter_valid(a * a, w) - mu1 ** 2
    s22 = filter_valid(b * b, w) - mu2 ** 2
    s12 = filter_valid(a * b, w) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def pack_row(samples, depth):
    """One row of samples (ints) at a bit depth, big-endian, sub-byte samples packed MSB first."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    out, acc, nbits = bytearray(), 0, 0
    for v in samples:
        acc = (acc << depth) | int(v)
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def write_png(path, pixels, color_type, depth, extra=(), palette=None, trns=None,
              interlaced=False):
    """pixels: [H, W, samples] ints. extra: (kind, data) chunks placed before IDAT."""
    h, w = pixels.shape[:2]

    def raw_of(img):
        return b"".join(b"\x00" + pack_row(img[y].reshape(-1), depth) for y in range(img.shape[0]))

    if interlaced:  # Adam7: seven sub-images, each filtered separately
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += raw_of(sub)
    else:
        raw = raw_of(pixels)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0,
                                           1 if interlaced else 0)))
        for kind, data in extra:
            f.write(chunk(kind, data))
        if palette is not None:
            f.write(chunk(b"PLTE", bytes(int(v) for v in palette.reshape(-1))))
        if trns is not None:
            f.write(chunk(b"tRNS", trns))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def write_colour_types(out):
    h, w = 14, 20
    y, x = np.mgrid[0:h, 0:w]
    wave = [0.5 + 0.45 * np.sin(x / 3.0 + c) * np.cos(y / 4.0 - c) for c in range(4)]
    q = lambda v, depth: np.round(v * (2 ** depth - 1)).astype(np.int64)
    gama = (b"gAMA", struct.pack(">I", 45455))
    srgb = (b"sRGB", b"\x00")
    # the smallest profile libpng accepts: a 132-byte header (RGB display, XYZ, D50), no tags
    profile = bytearray(132)
    struct.pack_into(">I", profile, 0, 132)
    struct.pack_into(">I", profile, 8, 0x02100000)
    profile[12:24] = b"mntrRGB XYZ "
    profile[36:40] = b"acsp"
    struct.pack_into(">iii", profile, 68, 0xF6D6, 0x10000, 0xD32D)
    iccp = (b"iCCP", b"test profile\x00\x00" + zlib.compress(bytes(profile)))
    write_png(os.path.join(out, "grey8.png"), q(wave[0], 8)[..., None], 0, 8, [gama])
    write_png(os.path.join(out, "grey16.png"), q(wave[0], 16)[..., None], 0, 16)
    write_png(os.path.join(out, "grey4-interlaced.png"), q(wave[1], 4)[..., None], 0, 4,
              interlaced=True)
    write_png(os.path.join(out, "greyalpha8.png"), np.stack([q(wave[0], 8), q(wave[3], 8)], -1),
              4, 8)
    write_png(os.path.join(out, "rgb8.png"), np.stack([q(wave[c], 8) for c in range(3)], -1),
              2, 8, [srgb])
    write_png(os.path.join(out, "rgb16.png"), np.stack([q(wave[c], 16) for c in range(3)], -1),
              2, 16, [iccp])
    write_png(os.path.join(out, "rgba8.png"), np.stack([q(wave[c], 8) for c in range(4)], -1),
              6, 8)
    write_png(os.path.join(out, "rgba16.png"), np.stack([q(wave[c], 16) for c in range(4)], -1),
              6, 16)
    palette = np.array([[i * 16, 255 - i * 16, (i * 40) % 256] for i in range(16)])
    index = (q(wave[0], 4) + q(wave[2], 4)) % 16
    write_png(os.path.join(out, "palette-trns.png"), index[..., None], 3, 4, palette=palette,
              trns=bytes(range(0, 256, 16)))
    # a larger picture for tiling: enough tiles of 16 with context to cross several seams
    h, w = 45, 61
    y, x = np.mgrid[0:h, 0:w]
    big = [0.5 + 0.45 * np.sin(x / 2.3 + c + y / 5.0) * np.cos(y / 3.1 - c) for c in range(3)]
    write_png(os.path.join(out, "tiles.png"), np.stack([q(big[c], 8) for c in range(3)], -1), 2, 8)


def write_fixture():
    out = os.path.join(ROOT, "tests", "fixtures", "sr-run")
    os.makedirs(out, exist_ok=True)
    h, w = 24, 32
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / 5.0 + c) * np.cos(y / 7.0 - c) for c in range(3)])
    a = np.clip(np.round(base), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(6)
    b = np.clip(a.astype(np.int64) + rng.integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
    write_png(os.path.join(out, "metric-a.png"), np.transpose(a, (1, 2, 0)), 2, 8)
    write_png(os.path.join(out, "metric-b.png"), np.transpose(b, (1, 2, 0)), 2, 8)
    # every sample 4 levels up (no clipping: a stays within 28..228): Y moves by 219 * 4 / 255
    write_png(os.path.join(out, "metric-offset.png"), np.transpose(a + 4, (1, 2, 0)), 2, 8)
    write_colour_types(out)
    # bicubic on the luma only (chroma by the program): exercises sr-run's YCbCr path
    from longrange import safetensors as st
    st.save(os.path.join(out, "bicubic-luma-x2.safetensors"), {}, {
        "arch": "bicubic", "scale": "2", "channels": "1",
        "description": "test model: bicubic x2 on the luma of YCbCr"})
    ya, yb = luma(a), luma(b)
    with open(os.path.join(out, "metrics.tsv"), "w") as f:
        f.write("psnr\tssim\n%.9g\t%.9g\n" % (psnr(yb, ya), ssim(yb, ya)))


def write_models():
    from longrange import safetensors as st
    for scale in (2, 4):
        path = os.path.join(ROOT, "models", "bicubic-x%d.safetensors" % scale)
        st.save(path, {}, {
            "arch": "bicubic", "scale": str(scale),
            "description": "weight-free x%d upscaling by bicubic interpolation (Keys a = -0.5, "
                           "as PIL and MATLAB imresize); sr-run eval's baseline" % scale})


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "models":
        write_models()
    elif len(sys.argv) == 2 and sys.argv[1] == "fixture":
        write_fixture()
    else:
        sys.exit(__doc__)
