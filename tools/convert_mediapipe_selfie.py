#!/usr/bin/python3
"""Convert MediaPipe selfie segmentation (.tflite, Apache-2.0) into a safetensors model file.

    /usr/bin/python3 tools/convert_mediapipe_selfie.py \
        ../shared/data/seg/mediapipe-selfie-tflite/selfie_segmentation.tflite models/selfie.safetensors
    /usr/bin/python3 tools/convert_mediapipe_selfie.py --all ../shared/data/seg/mediapipe-selfie-tflite models

No TensorFlow or flatc: the FlatBuffers file is read here by hand (vtables and offsets; field
ids from tensorflow's lite/schema/schema.fbs: Model, SubGraph, Tensor, Buffer, Operator,
OperatorCode and the option tables). The converter walks the operator list and refuses any op
it does not know. Known: DEQUANTIZE (fp16 constants -> f32), CONV_2D, DEPTHWISE_CONV_2D
(multiplier 1), HARD_SWISH, RELU, LOGISTIC, AVERAGE_POOL_2D over the whole map and MEAN over
axes [1,2] (both: global average pooling), MUL by a [1,1,1,C] gate, ADD of two same-shaped maps,
RESIZE_BILINEAR x2 with half_pixel_centers, and MediaPipe's CUSTOM Convolution2DTransposeBias
(kernel 2x2, stride 2).

Output (what cmd/seg-run/selfie.c reads):
  <layer>.weight, <layer>.bias   the graph's own layer names (its "<layer>/Kernel" and
      "<layer>/Bias" constants): conv2d, conv2d_1 ... conv2d_42, depthwise_conv2d ...
      depthwise_conv2d_10, and the transposed conv (segment in the square model,
      conv2d_transpose in the landscape one). F16 exactly as stored, PyTorch layouts:
      conv [O][I][kh][kw] (TFLite OHWI), depthwise [C][1][kh][kw] (TFLite [1][kh][kw][C]),
      transposed conv [I][O][kh][kw] (TFLite OHWI [1][2][2][16] -> [16][1][2][2]).
  metadata: arch "mediapipe-selfie", input_width, input_height, graph (below), output (the
      graph slot holding the logits), input "RGB 0..1", padding "tf-same", source (file name
      and sha256), license "Apache-2.0", description (the file's own).

"graph" is the layer sequence, ops separated by ";", tokens by single spaces, slots named
after the graph's tensors (an activation that is a convolution's only consumer is fused into
it and the slot takes the activation's name); "input" is the image:
  conv OUT IN LAYER STRIDE PAD ACT   LAYER.weight [O][I][k][k]; PAD same|valid (TF rules:
                                     SAME puts the odd extra row/column bottom/right)
  dw OUT IN LAYER STRIDE PAD ACT     depthwise, LAYER.weight [C][1][k][k]
  tconv OUT IN LAYER STRIDE          transposed conv, kernel = stride (no overlap, no crop)
  gap OUT IN                         global average pool -> [C][1][1]
  mul OUT IN GATE                    IN [C][H][W] * GATE [C][1][1]
  add OUT A B                        same shapes
  up2 OUT IN                         bilinear x2, half-pixel centres, edge clamp
  act OUT IN ACT                     ACT none|relu|hswish|sigmoid
The graph's final LOGISTIC is dropped: "output" names the logit slot before it.
"""

import argparse
import hashlib
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

# BuiltinOperator codes (schema.fbs)
ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE = 0, 1, 3, 4, 6
LOGISTIC, MUL, RELU, RESIZE_BILINEAR, CUSTOM, MEAN, HARD_SWISH = 14, 18, 19, 23, 32, 40, 117
OP_NAMES = {ADD: "ADD", AVERAGE_POOL_2D: "AVERAGE_POOL_2D", CONV_2D: "CONV_2D",
            DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", DEQUANTIZE: "DEQUANTIZE",
            LOGISTIC: "LOGISTIC", MUL: "MUL", RELU: "RELU", RESIZE_BILINEAR: "RESIZE_BILINEAR",
            CUSTOM: "CUSTOM", MEAN: "MEAN", HARD_SWISH: "HARD_SWISH"}
# TensorType
FLOAT32, FLOAT16, INT32 = 0, 1, 2
# Padding (builtin options) and TfLitePadding (MediaPipe's raw custom options)
SAME, VALID = 0, 1
TFLITE_PADDING = {1: "same", 2: "valid"}


class Table:
    """One FlatBuffers table: field i's vtable slot says where (if at all) the field lies."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, i):
        slot = 4 + 2 * i
        if slot + 2 > self.vsize:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + slot)[0]

    def scalar(self, i, fmt, default=0):
        o = self._field(i)
        return default if o == 0 else struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0]

    def _target(self, i):
        o = self._field(i)
        if o == 0:
            return None
        p = self.pos + o
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, i):
        p = self._target(i)
        return None if p is None else Table(self.buf, p)

    def _vector(self, i):
        p = self._target(i)
        if p is None:
            return None, 0
        return p + 4, struct.unpack_from("<I", self.buf, p)[0]

    def string(self, i):
        p, n = self._vector(i)
        return None if p is None else self.buf[p:p + n].decode("utf-8")

    def raw(self, i):
        p, n = self._vector(i)
        return b"" if p is None else bytes(self.buf[p:p + n])

    def ints(self, i):
        p, n = self._vector(i)
        return [] if p is None else list(struct.unpack_from("<%di" % n, self.buf, p))

    def tables(self, i):
        p, n = self._vector(i)
        if p is None:
            return []
        return [Table(self.buf, p + 4 * k + struct.unpack_from("<I", self.buf, p + 4 * k)[0])
                for k in range(n)]


class TFLite:
    """The parts of a one-subgraph .tflite model this project needs."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.blob = f.read()
        if len(self.blob) < 8 or self.blob[4:8] != b"TFL3":
            raise ValueError("%s: not a TFLite flatbuffer (identifier TFL3 missing)" % path)
        model = Table(self.blob, struct.unpack_from("<I", self.blob, 0)[0])
        self.version = model.scalar(0, "I")               # Model.version
        self.description = model.string(3) or ""         # Model.description
        self.codes = []
        for c in model.tables(1):                        # Model.operator_codes
            builtin = max(c.scalar(0, "b"), c.scalar(3, "i"))  # deprecated_builtin_code, builtin_code
            self.codes.append((builtin, c.string(1)))    # custom_code
        subgraphs = model.tables(2)                      # Model.subgraphs
        if len(subgraphs) != 1:
            raise ValueError("expected one subgraph, found %d" % len(subgraphs))
        sg = subgraphs[0]
        buffers = model.tables(4)                        # Model.buffers
        self.tensors = []
        for t in sg.tables(0):                           # SubGraph.tensors
            b = t.scalar(2, "I")                         # Tensor.buffer
            data = buffers[b].raw(0) if 0 < b < len(buffers) else b""  # Buffer.data
            self.tensors.append({"shape": t.ints(0), "type": t.scalar(1, "b"),
                                 "name": t.string(3), "data": data})
        self.inputs, self.outputs = sg.ints(1), sg.ints(2)
        self.ops = []
        for op in sg.tables(3):                          # SubGraph.operators
            code, custom = self.codes[op.scalar(0, "I")]  # Operator.opcode_index
            self.ops.append({"code": code, "custom": custom, "inputs": op.ints(1),
                             "outputs": op.ints(2), "options": op.table(4),  # builtin_options
                             "custom_options": op.raw(5)})

    def const(self, i):
        """A constant tensor as a numpy array (FLOAT16, FLOAT32 or INT32)."""
        t = self.tensors[i]
        dt = {FLOAT16: "<f2", FLOAT32: "<f4", INT32: "<i4"}.get(t["type"])
        if dt is None or not t["data"]:
            raise ValueError("tensor %s is not a constant of a known type" % t["name"])
        a = np.frombuffer(t["data"], dtype=dt)
        if a.size != int(np.prod(t["shape"])):
            raise ValueError("tensor %s: %d values for shape %s" % (t["name"], a.size, t["shape"]))
        return a.reshape(t["shape"])


def op_options(tfl, op):
    """The options of one op as a dict, read with the field types of schema.fbs."""
    o, code = op["options"], op["code"]
    if code == CONV_2D:  # Conv2DOptions
        return {"padding": o.scalar(0, "b"), "stride_w": o.scalar(1, "i"),
                "stride_h": o.scalar(2, "i"), "act": o.scalar(3, "b"),
                "dil_w": o.scalar(4, "i", 1), "dil_h": o.scalar(5, "i", 1)}
    if code == DEPTHWISE_CONV_2D:  # DepthwiseConv2DOptions
        return {"padding": o.scalar(0, "b"), "stride_w": o.scalar(1, "i"),
                "stride_h": o.scalar(2, "i"), "multiplier": o.scalar(3, "i"),
                "act": o.scalar(4, "b"), "dil_w": o.scalar(5, "i", 1),
                "dil_h": o.scalar(6, "i", 1)}
    if code == AVERAGE_POOL_2D:  # Pool2DOptions
        return {"padding": o.scalar(0, "b"), "stride_w": o.scalar(1, "i"),
                "stride_h": o.scalar(2, "i"), "filter_w": o.scalar(3, "i"),
                "filter_h": o.scalar(4, "i"), "act": o.scalar(5, "b")}
    if code in (ADD, MUL):  # AddOptions / MulOptions
        return {"act": 0 if o is None else o.scalar(0, "b")}
    if code == RESIZE_BILINEAR:  # ResizeBilinearOptions
        return {"align_corners": o.scalar(2, "B"), "half_pixel_centers": o.scalar(3, "B")}
    if code == MEAN:  # ReducerOptions
        return {"keep_dims": 0 if o is None else o.scalar(0, "B")}
    if code == CUSTOM:  # MediaPipe writes a raw TfLiteTransposeConvParams
        raw = op["custom_options"]
        if len(raw) < 12:
            raise ValueError("Convolution2DTransposeBias: %d option bytes" % len(raw))
        padding, stride_w, stride_h = struct.unpack_from("<iii", raw, 0)
        return {"padding": padding, "stride_w": stride_w, "stride_h": stride_h}
    return {}


def layer_name(tensor_name):
    """'conv2d_5/Kernel_dequantize' -> 'conv2d_5' (the Keras layer)."""
    return tensor_name.split("/")[0]


def convert(path):
    """(tensors, metadata) for one selfie .tflite file."""
    tfl = TFLite(path)
    T = tfl.tensors
    if len(tfl.inputs) != 1 or len(tfl.outputs) != 1:
        raise ValueError("expected one input and one output")
    ishape = T[tfl.inputs[0]]["shape"]
    if len(ishape) != 4 or ishape[0] != 1 or ishape[3] != 3 or T[tfl.inputs[0]]["type"] != FLOAT32:
        raise ValueError("input must be float32 [1,H,W,3], got %s" % ishape)
    height, width = ishape[1], ishape[2]

    dequant = {}   # f32 tensor index -> fp16 source tensor index
    consumers = {}
    for op in tfl.ops:
        for i in op["inputs"]:
            consumers[i] = consumers.get(i, 0) + 1
    for op in tfl.ops:
        code = op["code"]
        if code not in OP_NAMES or (code == CUSTOM and op["custom"] != "Convolution2DTransposeBias"):
            raise ValueError("unsupported operator %s %s" % (code, op["custom"] or ""))
        if code == DEQUANTIZE:
            src = op["inputs"][0]
            if T[src]["type"] != FLOAT16:
                raise ValueError("DEQUANTIZE of a non-fp16 tensor %s" % T[src]["name"])
            dequant[op["outputs"][0]] = src

    slot = {tfl.inputs[0]: "input"}     # tensor index -> slot name
    tensors, lines, layers = {}, [], []
    ops = [op for op in tfl.ops if op["code"] != DEQUANTIZE]
    fused = set()
    acts = {RELU: "relu", HARD_SWISH: "hswish", LOGISTIC: "sigmoid"}
    final_logistic = None
    for k, op in enumerate(ops):
        if id(op) in fused:
            continue
        code, ins, outs = op["code"], op["inputs"], op["outputs"]
        opts = op_options(tfl, op)
        if opts.get("act", 0) != 0:
            raise ValueError("fused activation %d in %s is not supported" % (opts["act"], OP_NAMES[code]))
        out = outs[0]
        x = ins[0]
        if x not in slot:
            raise ValueError("%s reads %s before it is computed" % (OP_NAMES[code], T[x]["name"]))
        if code in (CONV_2D, DEPTHWISE_CONV_2D, CUSTOM):
            if ins[1] not in dequant or len(ins) < 3 or ins[2] not in dequant:
                raise ValueError("%s: weight and bias must be fp16 constants" % T[out]["name"])
            w = tfl.const(dequant[ins[1]])
            b = tfl.const(dequant[ins[2]])
            layer = layer_name(T[dequant[ins[1]]]["name"])
            if layer_name(T[dequant[ins[2]]]["name"]) != layer or layer in layers:
                raise ValueError("layer %s: inconsistent or repeated names" % layer)
            if opts["stride_w"] != opts["stride_h"]:
                raise ValueError("layer %s: unequal strides" % layer)
            stride = opts["stride_w"]
            if code == CONV_2D:
                if opts["dil_w"] != 1 or opts["dil_h"] != 1 or w.shape[1] != w.shape[2]:
                    raise ValueError("layer %s: dilation or non-square kernel" % layer)
                wt = w.transpose(0, 3, 1, 2)            # OHWI -> OIHW
                kind = "conv"
            elif code == DEPTHWISE_CONV_2D:
                if opts["multiplier"] != 1 or w.shape[0] != 1 or w.shape[1] != w.shape[2]:
                    raise ValueError("layer %s: depth multiplier or kernel shape" % layer)
                wt = w.transpose(3, 0, 1, 2)            # [1,kh,kw,C] -> [C,1,kh,kw]
                kind = "dw"
            else:
                if len(w.shape) != 4:
                    raise ValueError("layer %s: transposed kernel shape %s" % (layer, w.shape))
                if w.shape[1] != stride or w.shape[2] != stride:
                    raise ValueError("layer %s: transposed kernel must equal the stride" % layer)
                wt = w.transpose(3, 0, 1, 2)            # OHWI -> [I][O][kh][kw]
                kind = "tconv"
            tensors[layer + ".weight"] = np.ascontiguousarray(wt.astype("<f2"))
            tensors[layer + ".bias"] = np.ascontiguousarray(b.astype("<f2"))
            layers.append(layer)
            name, act = T[out]["name"], "none"
            # fuse an activation that is this layer's only consumer (it depends on nothing else)
            nxt = next((o for o in ops[k + 1:] if out in o["inputs"]), None)
            if (kind != "tconv" and nxt is not None and nxt["code"] in acts
                    and consumers.get(out, 0) == 1 and nxt["outputs"][0] != tfl.outputs[0]):
                fused.add(id(nxt))
                act = acts[nxt["code"]]
                out = nxt["outputs"][0]
                name = T[out]["name"]
            if kind == "tconv":
                lines.append("tconv %s %s %s %d" % (name, slot[x], layer, stride))
            else:
                pad = {SAME: "same", VALID: "valid"}[opts["padding"]]
                lines.append("%s %s %s %s %d %s %s" % (kind, name, slot[x], layer, stride, pad, act))
            slot[out] = name
            continue
        name = T[out]["name"]
        if code in acts:
            if code == LOGISTIC and out == tfl.outputs[0]:
                final_logistic = x      # the graph's output: keep the logits before it
                continue
            lines.append("act %s %s %s" % (name, slot[x], acts[code]))
        elif code == AVERAGE_POOL_2D:
            xs = T[x]["shape"]
            if (opts["filter_h"], opts["filter_w"]) != (xs[1], xs[2]) or opts["padding"] != VALID:
                raise ValueError("%s: only whole-map average pooling is supported" % name)
            lines.append("gap %s %s" % (name, slot[x]))
        elif code == MEAN:
            axes = sorted(int(a) for a in tfl.const(ins[1]).ravel())
            if axes != [1, 2] or not opts["keep_dims"]:
                raise ValueError("%s: only MEAN over axes [1,2] keeping dims is supported" % name)
            lines.append("gap %s %s" % (name, slot[x]))
        elif code == MUL:
            g = ins[1]
            if T[g]["shape"][1:3] != [1, 1] or T[x]["shape"][3] != T[g]["shape"][3]:
                raise ValueError("%s: only a [1,1,1,C] channel gate is supported" % name)
            lines.append("mul %s %s %s" % (name, slot[x], slot[g]))
        elif code == ADD:
            if T[ins[0]]["shape"] != T[ins[1]]["shape"]:
                raise ValueError("%s: broadcasting ADD is not supported" % name)
            lines.append("add %s %s %s" % (name, slot[ins[0]], slot[ins[1]]))
        elif code == RESIZE_BILINEAR:
            xs = T[x]["shape"]
            size = [int(v) for v in tfl.const(ins[1]).ravel()]
            if size != [2 * xs[1], 2 * xs[2]] or opts["align_corners"] or not opts["half_pixel_centers"]:
                raise ValueError("%s: only x2 half-pixel bilinear resizing is supported" % name)
            lines.append("up2 %s %s" % (name, slot[x]))
        slot[out] = name
    if final_logistic is None:
        raise ValueError("the graph does not end in LOGISTIC")
    out_shape = T[final_logistic]["shape"]
    if out_shape != [1, height, width, 1]:
        raise ValueError("logits shape %s, expected [1,%d,%d,1]" % (out_shape, height, width))
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    meta = {
        "arch": "mediapipe-selfie",
        "input_width": str(width),
        "input_height": str(height),
        "input": "RGB 0..1 (uint8/255), stretched to the input size",
        "padding": "tf-same",
        "graph": "; ".join(lines),
        "output": slot[final_logistic],
        "output_kind": "logit (sigmoid = P(person))",
        "source": "%s sha256 %s (MediaPipe selfie segmentation, google-ai-edge/mediapipe)"
                  % (os.path.basename(path), sha),
        "description": tfl.description,
        "license": "Apache-2.0",
    }
    return tensors, meta, tfl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true",
                    help="SRC is the folder with both .tflite files, DST the models folder")
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args()
    jobs = [(a.src, a.dst)]
    if a.all:
        jobs = [(os.path.join(a.src, "selfie_segmentation.tflite"),
                 os.path.join(a.dst, "selfie.safetensors")),
                (os.path.join(a.src, "selfie_segmentation_landscape.tflite"),
                 os.path.join(a.dst, "selfie-landscape.safetensors"))]
    for src, dst in jobs:
        tensors, meta, tfl = convert(src)
        st.save(dst, tensors, meta)
        n = sum(int(np.prod(t.shape)) for t in tensors.values())
        print("%s: %d ops, %d layers, %d parameters, %s x %s -> %s"
              % (os.path.basename(src), len(tfl.ops), len(tensors) // 2, n,
                 meta["input_width"], meta["input_height"], dst))


if __name__ == "__main__":
    main()
