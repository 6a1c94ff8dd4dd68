#!/usr/bin/python3
"""Convert OpenCV dnn_superres FSRCNN / ESPCN TensorFlow frozen graphs (.pb) into safetensors.

    /usr/bin/python3 tools/convert_opencv_sr.py ../shared/data/sr/opencv-dnn-superres/FSRCNN_x2.pb \
        models/fsrcnn-x2.safetensors
    /usr/bin/python3 tools/convert_opencv_sr.py --all ../shared/data/sr/opencv-dnn-superres models

No TensorFlow is needed: the GraphDef protobuf is decoded here from its wire format (field
numbers of tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto).
The converter understands the graph rather than assuming it: it walks the ops from the input
Placeholder to the output, knows Conv2D (NHWC, stride 1, dilation 1, SAME or VALID), Add /
BiasAdd of a constant, Relu, Tanh, the PReLU sub-graph these graphs spell out as
    relu(x) + (alpha * (x - |x|)) * y          (slope = 2*y*alpha; y is 0.5 in every graph)
DepthToSpace (NHWC), Identity and a final NHWC->NCHW Transpose, and refuses anything else
(including Conv2DBackpropInput, which none of the OpenCV graphs uses). The op chain must then
match FSRCNN (Dong et al. 2016, as Saafke/FSRCNN_Tensorflow builds it, with a sub-pixel
upsampling layer) or ESPCN (Shi et al. 2016, as fannymonori/TF-ESPCN builds it).

Output layout (what cmd/sr-run/fsrcnn.c and espcn.c read), all F32:
  fN      conv weights, PyTorch OIHW [cout][cin][kh][kw] (TF stores HWIO)
  bN      biases [cout]; FSRCNN's last bias bN has shape [1] and is added after the shuffle
  alphaN  PReLU slopes [cout] (already multiplied by 2*y, i.e. PyTorch PReLU weights)
The names are the graph's own constant names (f1, b1, alpha1, ...). The last convolution's
output channels are reordered from TF DepthToSpace order (channel (dy*r+dx)*C + c) to PyTorch
pixel_shuffle order (c*r*r + dy*r+dx), so the C side uses lr_pixel_shuffle.
Metadata: arch fsrcnn (d, s, m, kernel_first, kernel_mid, kernel_last) or espcn (c1, c2, k1,
k2, k3, output "tanh"), scale, padding "same", input "Y of full-range BT.601 YCbCr, 0..1",
source, license Apache-2.0, description.
"""

import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402


class GraphError(Exception):
    pass


# ---- protobuf wire format ----

def _varint(buf, i):
    result, shift = 0, 0
    while True:
        if i >= len(buf):
            raise GraphError("truncated varint")
        c = buf[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i
        if shift > 63:
            raise GraphError("varint too long")


def _fields(buf):
    """Yields (field number, wire type, value) of one message; value is int or bytes."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        else:
            raise GraphError("unsupported wire type %d" % wire)
        if i > n:
            raise GraphError("truncated message")
        yield field, wire, value


def _packed_varints(wire, value):
    if wire == 0:
        return [value]
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(v)
    return out


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


DT_FLOAT, DT_INT32 = 1, 3


def _tensor(buf):
    """TensorProto -> numpy array (float32 or int32 only)."""
    dtype, shape, content, floats, ints = None, [], None, [], []
    for f, w, v in _fields(buf):
        if f == 1:
            dtype = v
        elif f == 2:  # TensorShapeProto: dim = 2 (Dim: size = 1), unknown_rank = 3
            for g, _, d in _fields(v):
                if g == 2:
                    size = 0
                    for h, _, s in _fields(d):
                        if h == 1:
                            size = _signed(s)
                    shape.append(size)
                elif g == 3 and d:
                    raise GraphError("tensor of unknown rank")
        elif f == 4:
            content = v
        elif f == 5:  # float_val, packed or not
            if w == 5:
                floats.append(struct.unpack("<f", v)[0])
            else:
                floats.extend(struct.unpack("<%df" % (len(v) // 4), v))
        elif f == 7:
            ints.extend(_signed(x) & 0xFFFFFFFF for x in _packed_varints(w, v))
    count = int(np.prod(shape)) if shape else 1
    if dtype == DT_FLOAT:
        if content is not None:
            arr = np.frombuffer(content, "<f4").astype(np.float32)
        else:
            arr = np.array(floats, np.float32)
    elif dtype == DT_INT32:
        if content is not None:
            arr = np.frombuffer(content, "<i4").astype(np.int32)
        else:
            arr = np.array(ints, np.uint32).astype(np.int32)
    else:
        raise GraphError("constant of dtype %r (only float32 and int32 are known)" % dtype)
    if arr.size == 1 and count > 1:  # TF repeats a single value to fill the shape
        arr = np.full(count, arr[0], arr.dtype)
    if arr.size != count:
        raise GraphError("constant holds %d values for shape %s" % (arr.size, shape))
    return arr.reshape(shape)


def _attr_value(buf):
    """AttrValue -> python value: s (2) str, i (3) int, f (4) float, b (5) bool, type (6),
    tensor (8) ndarray, list (1) of ints/strings."""
    for f, w, v in _fields(buf):
        if f == 2:
            return v.decode()
        if f == 3:
            return _signed(v)
        if f == 4:
            return struct.unpack("<f", v)[0]
        if f in (5, 6):
            return v
        if f == 8:
            return _tensor(v)
        if f == 1:
            items = []
            for g, gw, x in _fields(v):
                if g == 3:
                    items.extend(_signed(y) for y in _packed_varints(gw, x))
                elif g == 2:
                    items.append(x.decode())
            return items
        if f == 7:
            return ("shape", v)
    return None


class Node:
    def __init__(self, name, op, inputs, attrs):
        self.name, self.op, self.inputs, self.attrs = name, op, inputs, attrs


def parse_graph(data):
    """GraphDef bytes -> {name: Node} (GraphDef.node = 1; NodeDef name 1, op 2, input 3,
    attr 5 as map entries key 1 / value 2)."""
    nodes = {}
    for f, _, v in _fields(data):
        if f != 1:
            continue  # versions, library
        name, op, inputs, attrs = None, None, [], {}
        for g, _, x in _fields(v):
            if g == 1:
                name = x.decode()
            elif g == 2:
                op = x.decode()
            elif g == 3:
                inputs.append(x.decode())
            elif g == 5:
                key, value = None, b""
                for h, _, y in _fields(x):
                    if h == 1:
                        key = y.decode()
                    elif h == 2:
                        value = y
                attrs[key] = _attr_value(value)
        if not name or not op:
            raise GraphError("a node without name or op")
        if name in nodes:
            raise GraphError("node %s defined twice" % name)
        for i, inp in enumerate(inputs):
            if inp.startswith("^"):
                raise GraphError("node %s has a control dependency" % name)
            if inp.endswith(":0"):
                inputs[i] = inp[:-2]
            elif ":" in inp:
                raise GraphError("node %s reads output %s (only :0 is known)" % (name, inp))
        nodes[name] = Node(name, op, inputs, attrs)
    return nodes


# ---- graph walk ----

def walk(nodes):
    """The op chain from the Placeholder to the output as a list of layers (dicts)."""
    consumers = {n: [] for n in nodes}
    for node in nodes.values():
        for inp in node.inputs:
            if inp not in nodes:
                raise GraphError("node %s reads unknown node %s" % (node.name, inp))
            consumers[inp].append(node)
    placeholders = [n for n in nodes.values() if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise GraphError("expected one Placeholder, found %d" % len(placeholders))
    visited = {placeholders[0].name}

    def const(name, why):
        node = nodes[name]
        if node.op != "Const":
            raise GraphError("%s: %s is a %s, expected a Const" % (why, name, node.op))
        visited.add(name)
        return name, node.attrs["value"]

    def other_input(node, cur):
        if len(node.inputs) != 2 or cur not in node.inputs:
            raise GraphError("%s %s: unexpected inputs %s" % (node.op, node.name, node.inputs))
        return node.inputs[1] if node.inputs[0] == cur else node.inputs[0]

    def check_nhwc(node):
        fmt = node.attrs.get("data_format", "NHWC")
        if fmt != "NHWC":
            raise GraphError("%s %s: data_format %s" % (node.op, node.name, fmt))

    layers, cur = [], placeholders[0].name
    while True:
        users = consumers[cur]
        if not users:
            break
        ops = sorted(u.op for u in users)
        if len(users) == 1:
            node = users[0]
            op = node.op
            if op == "Conv2D":
                check_nhwc(node)
                if node.inputs[0] != cur:
                    raise GraphError("Conv2D %s: the activation is not its first input" % node.name)
                for key in ("strides", "dilations"):
                    if list(node.attrs.get(key, [1, 1, 1, 1])) != [1, 1, 1, 1]:
                        raise GraphError("Conv2D %s: %s %s (only 1 is known)"
                                         % (node.name, key, node.attrs[key]))
                padding = node.attrs.get("padding")
                if padding not in ("SAME", "VALID"):
                    raise GraphError("Conv2D %s: padding %s" % (node.name, padding))
                wname, w = const(node.inputs[1], "Conv2D " + node.name)
                if w.ndim != 4:
                    raise GraphError("Conv2D %s: filter of shape %s" % (node.name, list(w.shape)))
                layers.append({"op": "conv", "name": wname, "w": w, "padding": padding})
            elif op in ("Add", "BiasAdd", "AddV2"):
                if op == "BiasAdd":
                    check_nhwc(node)
                bname, b = const(other_input(node, cur), op + " " + node.name)
                if b.ndim != 1:
                    raise GraphError("%s %s: bias of shape %s" % (op, node.name, list(b.shape)))
                layers.append({"op": "bias", "name": bname, "b": b})
            elif op == "Relu":
                layers.append({"op": "relu"})
            elif op == "Tanh":
                layers.append({"op": "tanh"})
            elif op == "Identity":
                pass
            elif op == "DepthToSpace":
                check_nhwc(node)
                layers.append({"op": "depth_to_space", "r": int(node.attrs["block_size"])})
            elif op == "Transpose":
                _, perm = const(other_input(node, cur), "Transpose " + node.name)
                if list(perm) != [0, 3, 1, 2] or consumers[node.name]:
                    raise GraphError("Transpose %s: only the final NHWC->NCHW one is known"
                                     % node.name)
            else:
                raise GraphError("op %s (%s) is not one this converter knows" % (op, node.name))
            visited.add(node.name)
            cur = node.name
        elif ops == ["Abs", "Relu", "Sub"]:
            # PReLU: relu(x) + (alpha * (x - |x|)) * y
            by = {u.op: u for u in users}
            absn, relu, sub = by["Abs"], by["Relu"], by["Sub"]
            if sub.inputs != [cur, absn.name] or consumers[absn.name] != [sub]:
                raise GraphError("PReLU at %s: unexpected Sub/Abs wiring" % cur)
            mul1 = consumers[sub.name]
            if len(mul1) != 1 or mul1[0].op != "Mul":
                raise GraphError("PReLU at %s: Sub is not followed by one Mul" % cur)
            mul1 = mul1[0]
            aname, alpha = const(other_input(mul1, sub.name), "PReLU " + mul1.name)
            mul2 = consumers[mul1.name]
            if len(mul2) != 1 or mul2[0].op != "Mul":
                raise GraphError("PReLU at %s: second Mul missing" % cur)
            mul2 = mul2[0]
            _, y = const(other_input(mul2, mul1.name), "PReLU " + mul2.name)
            add = consumers[mul2.name]
            if (len(add) != 1 or add[0].op not in ("Add", "AddV2")
                    or sorted(add[0].inputs) != sorted([relu.name, mul2.name])
                    or consumers[relu.name] != [add[0]]):
                raise GraphError("PReLU at %s: final Add missing" % cur)
            if alpha.ndim != 1 or y.size != 1:
                raise GraphError("PReLU at %s: alpha %s, y %s" % (cur, alpha.shape, y.shape))
            slope = (alpha.astype(np.float64) * 2.0 * float(y.reshape(-1)[0])).astype(np.float32)
            layers.append({"op": "prelu", "name": aname, "alpha": slope})
            visited.update(n.name for n in (absn, relu, sub, mul1, mul2, add[0]))
            cur = add[0].name
        else:
            raise GraphError("%s feeds %s: not a pattern this converter knows" % (cur, ops))
    unused = sorted(n for n in nodes if n not in visited)
    if unused:
        raise GraphError("nodes off the input-output path: %s" % ", ".join(unused))
    return layers


# ---- architectures ----

def _fuse(layers):
    """Groups conv [+ bias] [+ activation] into blocks; other layers stay as they are."""
    blocks, i = [], 0
    while i < len(layers):
        layer = layers[i]
        if layer["op"] != "conv":
            blocks.append(layer)
            i += 1
            continue
        block = {"op": "conv", "conv": layer, "bias": None, "act": None}
        i += 1
        if i < len(layers) and layers[i]["op"] == "bias":
            block["bias"] = layers[i]
            i += 1
        if i < len(layers) and layers[i]["op"] in ("relu", "prelu"):
            block["act"] = layers[i]
            i += 1
        blocks.append(block)
    return blocks


def _oihw(w):
    return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)).astype(np.float32))


def _to_pixel_shuffle_order(w_oihw, bias, r, c):
    """TF DepthToSpace channel (dy*r+dx)*c + ch  ->  pixel_shuffle channel ch*r*r + dy*r+dx."""
    perm = np.array([k * c + ch for ch in range(c) for k in range(r * r)])
    return w_oihw[perm], (None if bias is None else bias[perm])


def _conv_block(block, cin, cout, k, act, why):
    conv = block["conv"]
    w = conv["w"]
    if list(w.shape) != [k, k, cin, cout]:
        raise GraphError("%s: %s has shape %s, expected %s"
                         % (why, conv["name"], list(w.shape), [k, k, cin, cout]))
    if conv["padding"] != "SAME":
        raise GraphError("%s: %s uses %s padding, expected SAME" % (why, conv["name"],
                                                                    conv["padding"]))
    got = block["act"]["op"] if block["act"] else None
    if got != act:
        raise GraphError("%s: activation %s, expected %s" % (why, got, act))


def build(layers):
    """layers -> (arch, tensors, metadata)."""
    blocks = _fuse(layers)
    shape = [b["op"] for b in blocks]
    if shape[-2:] == ["depth_to_space", "bias"] and all(s == "conv" for s in shape[:-2]):
        return _fsrcnn(blocks)
    if shape[-2:] == ["depth_to_space", "tanh"] and all(s == "conv" for s in shape[:-2]):
        return _espcn(blocks)
    raise GraphError("the layer sequence %s is neither FSRCNN nor ESPCN" % shape)


def _fsrcnn(blocks):
    convs = blocks[:-2]
    r = blocks[-2]["r"]
    out_bias = blocks[-1]
    if len(convs) < 5:
        raise GraphError("FSRCNN needs at least 5 convolutions, found %d" % len(convs))
    m = len(convs) - 4
    k1 = convs[0]["conv"]["w"].shape[0]
    d = convs[0]["conv"]["w"].shape[3]
    s = convs[1]["conv"]["w"].shape[3]
    kmid = convs[2]["conv"]["w"].shape[0]
    klast = convs[-1]["conv"]["w"].shape[0]
    c = 1
    plan = [(1, d, k1, "prelu"), (d, s, 1, "prelu")] + [(s, s, kmid, "prelu")] * m + \
           [(s, d, 1, "prelu"), (d, r * r * c, klast, None)]
    tensors = {}
    for i, (block, (cin, cout, k, act)) in enumerate(zip(convs, plan), 1):
        why = "FSRCNN layer %d" % i
        _conv_block(block, cin, cout, k, act, why)
        if i < len(plan) and block["bias"] is None:
            raise GraphError("%s: no bias" % why)
        if i == len(plan) and block["bias"] is not None:
            raise GraphError("%s: a bias before the shuffle (expected after it)" % why)
        names = ["f%d" % i, "b%d" % i, "alpha%d" % i]
        given = [block["conv"]["name"], block["bias"] and block["bias"]["name"],
                 block["act"] and block["act"]["name"]]
        for want, got in zip(names, given):
            if got is not None and got != want:
                raise GraphError("%s: constant %s, expected the name %s" % (why, got, want))
        w = _oihw(block["conv"]["w"])
        if i == len(plan):
            w, _ = _to_pixel_shuffle_order(w, None, r, c)
        tensors["f%d" % i] = w
        if block["bias"] is not None:
            tensors["b%d" % i] = block["bias"]["b"].astype(np.float32)
        if block["act"] is not None:
            if block["act"]["alpha"].shape != (cout,):
                raise GraphError("%s: PReLU slopes of shape %s" % (why, block["act"]["alpha"].shape))
            tensors["alpha%d" % i] = block["act"]["alpha"]
    last = "b%d" % len(plan)
    if out_bias["name"] != last or out_bias["b"].shape != (c,):
        raise GraphError("FSRCNN output bias %s of shape %s, expected %s [%d]"
                         % (out_bias["name"], out_bias["b"].shape, last, c))
    tensors[last] = out_bias["b"].astype(np.float32)
    meta = {"arch": "fsrcnn", "scale": str(r), "d": str(d), "s": str(s), "m": str(m),
            "kernel_first": str(k1), "kernel_mid": str(kmid), "kernel_last": str(klast)}
    return "fsrcnn", tensors, meta


def _espcn(blocks):
    convs = blocks[:-2]
    r = blocks[-2]["r"]
    if len(convs) != 3:
        raise GraphError("ESPCN has 3 convolutions, found %d" % len(convs))
    k = [b["conv"]["w"].shape[0] for b in convs]
    c1 = convs[0]["conv"]["w"].shape[3]
    c2 = convs[1]["conv"]["w"].shape[3]
    c = 1
    plan = [(1, c1, k[0], "relu"), (c1, c2, k[1], "relu"), (c2, r * r * c, k[2], None)]
    tensors = {}
    for i, (block, (cin, cout, kk, act)) in enumerate(zip(convs, plan), 1):
        why = "ESPCN layer %d" % i
        _conv_block(block, cin, cout, kk, act, why)
        if block["bias"] is None:
            raise GraphError("%s: no bias" % why)
        for want, got in (("f%d" % i, block["conv"]["name"]), ("b%d" % i, block["bias"]["name"])):
            if got != want:
                raise GraphError("%s: constant %s, expected the name %s" % (why, got, want))
        w, b = _oihw(block["conv"]["w"]), block["bias"]["b"].astype(np.float32)
        if b.shape != (cout,):
            raise GraphError("%s: bias of shape %s" % (why, b.shape))
        if i == 3:
            w, b = _to_pixel_shuffle_order(w, b, r, c)
        tensors["f%d" % i], tensors["b%d" % i] = w, np.ascontiguousarray(b)
    meta = {"arch": "espcn", "scale": str(r), "c1": str(c1), "c2": str(c2), "k1": str(k[0]),
            "k2": str(k[1]), "k3": str(k[2]), "output": "tanh"}
    return "espcn", tensors, meta


def convert(pb_path, out_path):
    with open(pb_path, "rb") as f:
        data = f.read()
    try:
        arch, tensors, meta = build(walk(parse_graph(data)))
    except (GraphError, KeyError, ValueError, struct.error) as e:
        raise SystemExit("convert_opencv_sr: %s: %s" % (pb_path, e))
    base = os.path.basename(pb_path)
    meta.update({
        "padding": "same",
        "input": "Y of full-range BT.601 YCbCr (as OpenCV's COLOR_BGR2YCrCb), scaled to 0..1",
        "layout": "weights OIHW (PyTorch Conv2d); last conv in pixel_shuffle channel order",
        "source": "OpenCV dnn_superres model %s (trained with %s), converted by "
                  "tools/convert_opencv_sr.py"
                  % (base, "github.com/Saafke/FSRCNN_Tensorflow" if arch == "fsrcnn"
                     else "github.com/fannymonori/TF-ESPCN"),
        "license": "Apache-2.0",
        "description": "%s x%s single-image super-resolution on the luma channel"
                       % ("FSRCNN" if arch == "fsrcnn" else "ESPCN", meta["scale"]),
    })
    if "small" in base.lower():
        meta["description"] = meta["description"].replace("FSRCNN", "FSRCNN-small")
    st.save(out_path, tensors, meta)
    return arch, meta


SHIPPED = [("FSRCNN_x2.pb", "fsrcnn-x2"), ("FSRCNN_x4.pb", "fsrcnn-x4"),
           ("FSRCNN-small_x2.pb", "fsrcnn-small-x2"), ("ESPCN_x2.pb", "espcn-x2"),
           ("ESPCN_x4.pb", "espcn-x4")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a .pb file, or with --all the folder holding them")
    ap.add_argument("output", help="the .safetensors file, or with --all the models folder")
    ap.add_argument("--all", action="store_true",
                    help="convert every shipped model: %s" % ", ".join(n for _, n in SHIPPED))
    args = ap.parse_args()
    if args.all:
        os.makedirs(args.output, exist_ok=True)
    pairs = ([(os.path.join(args.input, pb), os.path.join(args.output, name + ".safetensors"))
              for pb, name in SHIPPED] if args.all else [(args.input, args.output)])
    for pb, out in pairs:
        arch, meta = convert(pb, out)
        print("%s -> %s (%s x%s)" % (pb, out, arch, meta["scale"]))


if __name__ == "__main__":
    main()
