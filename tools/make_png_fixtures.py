#!/usr/bin/python3
"""Writes the small PNG fixtures of tests/unit/test_image.c with zlib and struct alone:

    /usr/bin/python3 tools/make_png_fixtures.py      (from the repository root)

tests/fixtures/png/<name>.png, one per entry of CASES (the test has the same table). Sample
values follow a formula the test recomputes:
    sample(x, y, ch) = (7919 x + 104729 y + 31337 ch + 3) mod 2^depth,
except that channel 0 of pixel (0, 0) is 2^depth - 1 and of pixel (1, 0) is 0, so the extremes
0 and 1.0 are always checked. Palette images have n = min(11, 2^depth) entries
    palette[i] = (23 i mod 256, 57 i mod 256, 91 i mod 256), alpha (tRNS) 29 i mod 256 for
    i < min(7, n) and 255 (omitted) beyond, and index (x + 3 y) mod n.
Colour-key tRNS (grey, RGB) is the value sample(2, 0, ch) of each channel, so pixel (2, 0) and
every pixel equal to it become transparent. Rows use filter type y mod 5 (None, Sub, Up,
Average, Paeth) so every unfilter runs; IDAT is split into chunks of at most 50 bytes. Adam7
interlacing is done here, pass by pass.
"colour_chunks.png" (8-bit RGB 6x4) also carries iCCP ("fixture profile", 300 bytes
i * 7 mod 256), sRGB (intent 1), gAMA 45455, cHRM (31270 32900 64000 33000 30000 60000 15000
6000) and a tEXt chunk; "bad_ancillary_crc.png" is grey 8-bit 4x4 with a gAMA chunk whose CRC is
wrong (to be skipped) and "after_iend.png" grey 8-bit 4x4 followed by 37 bytes of garbage.

It also writes the seeds of tests/fuzz/fuzz_png.c (tests/fuzz/seeds/png): a few of these
fixtures and damaged versions of colour_chunks.png (truncated, CRC, bad IHDR, huge, not a PNG).
"""

import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "png")

GREY, RGB, PALETTE, GREY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GREY: 1, RGB: 3, PALETTE: 1, GREY_ALPHA: 2, RGBA: 4}

# name, colour type, bit depth, width, height, interlaced, tRNS
CASES = [
    ("grey1", GREY, 1, 13, 5, False, False),
    ("grey2", GREY, 2, 9, 4, False, False),
    ("grey4", GREY, 4, 7, 3, False, False),
    ("grey8", GREY, 8, 6, 5, False, False),
    ("grey16", GREY, 16, 5, 4, False, False),
    ("rgb8", RGB, 8, 7, 6, False, False),
    ("rgb16", RGB, 16, 5, 3, False, False),
    ("rgba8", RGBA, 8, 6, 4, False, False),
    ("rgba16", RGBA, 16, 4, 5, False, False),
    ("ga8", GREY_ALPHA, 8, 5, 5, False, False),
    ("ga16", GREY_ALPHA, 16, 3, 4, False, False),
    ("pal4", PALETTE, 4, 9, 4, False, False),
    ("pal8_trns", PALETTE, 8, 8, 5, False, True),
    ("pal2_trns", PALETTE, 2, 5, 3, False, True),
    ("grey8_trns", GREY, 8, 6, 4, False, True),
    ("grey2_trns", GREY, 2, 7, 3, False, True),
    ("rgb8_trns", RGB, 8, 5, 4, False, True),
    ("rgb16_trns", RGB, 16, 4, 3, False, True),
    ("grey1_i", GREY, 1, 13, 11, True, False),
    ("rgb8_i", RGB, 8, 10, 9, True, False),
    ("rgba16_i", RGBA, 16, 5, 7, True, False),
    ("pal4_trns_i", PALETTE, 4, 11, 6, True, True),
    ("rgb8_i_1x1", RGB, 8, 1, 1, True, False),
    ("grey8_i_3x2", GREY, 8, 3, 2, True, False),
]


def sample(x, y, ch, depth):
    if ch == 0 and y == 0 and x in (0, 1):
        return (1 << depth) - 1 if x == 0 else 0
    return (7919 * x + 104729 * y + 31337 * ch + 3) % (1 << depth)


def palette_size(depth):
    return min(11, 1 << depth)


def palette(depth):
    return [(23 * i % 256, 57 * i % 256, 91 * i % 256) for i in range(palette_size(depth))]


def pixel(ctype, depth, x, y):
    if ctype == PALETTE:
        return [(x + 3 * y) % palette_size(depth)]
    return [sample(x, y, ch, depth) for ch in range(CHANNELS[ctype])]


def chunk(name, data, crc_ok=True):
    crc = zlib.crc32(name + data) & 0xFFFFFFFF
    if not crc_ok:
        crc ^= 0x5A5A5A5A
    return struct.pack(">I", len(data)) + name + data + struct.pack(">I", crc)


def pack_row(samples, depth):
    """Samples (flat, already interleaved) into bytes at the bit depth, MSB first."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows, bpp):
    """Each row filtered with type (row number in its pass) mod 5."""
    out, prev = bytearray(), None
    for n, row in enumerate(rows):
        ftype = n % 5
        up = prev if prev is not None else bytes(len(row))
        f = bytearray()
        for i, v in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = up[i]
            c = up[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
            f.append((v - pred) & 0xFF)
        out.append(ftype)
        out += f
        prev = row
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def image_data(ctype, depth, w, h, interlaced):
    bpp = max(1, CHANNELS[ctype] * depth // 8)
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if not xs or not ys:
            continue
        rows = [pack_row([s for x in xs for s in pixel(ctype, depth, x, y)], depth) for y in ys]
        raw += filter_rows(rows, bpp)
    return raw


def png(ctype, depth, w, h, interlaced, trns, extra=b""):
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlaced else 0))
    out += extra
    if ctype == PALETTE:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in palette(depth)))
        if trns:
            out += chunk(b"tRNS", bytes(29 * i % 256 for i in range(min(7, palette_size(depth)))))
    elif trns:
        key = [sample(2, 0, ch, depth) for ch in range(CHANNELS[ctype])]
        out += chunk(b"tRNS", b"".join(struct.pack(">H", k) for k in key))
    z = zlib.compress(image_data(ctype, depth, w, h, interlaced), 9)
    for i in range(0, len(z), 50):
        out += chunk(b"IDAT", z[i:i + 50])
    return out + chunk(b"IEND", b"")


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {name + ".png": png(t, d, w, h, i, tr) for name, t, d, w, h, i, tr in CASES}
    profile = bytes(i * 7 % 256 for i in range(300))
    colour = (chunk(b"iCCP", b"fixture profile\0\0" + zlib.compress(profile))
              + chunk(b"sRGB", b"\x01") + chunk(b"gAMA", struct.pack(">I", 45455))
              + chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
              + chunk(b"tEXt", b"Comment\0longrange fixture"))
    files["colour_chunks.png"] = png(RGB, 8, 6, 4, False, False, colour)
    files["bad_ancillary_crc.png"] = png(GREY, 8, 4, 4, False, False,
                                         chunk(b"gAMA", struct.pack(">I", 45455), crc_ok=False))
    files["after_iend.png"] = png(GREY, 8, 4, 4, False, False) + bytes(range(100, 137))
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(len(files), "files,", sum(len(d) for d in files.values()), "bytes")
    write_seeds(files)


def write_seeds(files):
    """tests/fuzz/seeds/png: some fixtures as they are, and damaged versions of one."""
    seeds = {name: files[name] for name in ("rgb8.png", "grey1.png", "rgba16_i.png", "pal4_trns_i.png",
                                            "grey2_trns.png", "colour_chunks.png",
                                            "bad_ancillary_crc.png", "after_iend.png")}
    good = files["colour_chunks.png"]
    ihdr = good[8:33]
    idat = good.index(b"IDAT") - 4

    def with_ihdr(w, h, depth=8, ctype=RGB):
        return good[:8] + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)) + good[33:]

    seeds["truncated_idat.png"] = good[:idat + 30]
    seeds["no_iend.png"] = good[:-12]
    flipped = bytearray(good)
    flipped[idat + 8 + 5] ^= 0x10
    seeds["idat_crc.png"] = bytes(flipped)
    seeds["zero_width.png"] = with_ihdr(0, 4)
    seeds["huge.png"] = with_ihdr(100000, 100000)
    seeds["bad_depth.png"] = with_ihdr(6, 4, depth=4)
    seeds["not_png.png"] = b"GIF89a" + ihdr
    seeds["empty.png"] = b""
    # a tEXt chunk claiming 2 GB, cut short (libpng would allocate the claimed size)
    seeds["huge_text.png"] = good[:idat] + struct.pack(">I", 2027552793) + b"tEXtComment\0abc"
    out = os.path.join(ROOT, "tests", "fuzz", "seeds", "png")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(len(seeds), "fuzz seeds")


if __name__ == "__main__":
    main()
