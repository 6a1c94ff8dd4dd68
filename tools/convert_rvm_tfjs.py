#!/usr/bin/python3
"""Convert the RobustVideoMatting MobileNetV3 TF.js graph model into a safetensors model file.

    /usr/bin/python3 tools/convert_rvm_tfjs.py \
        ../shared/data/video/rvm-mobilenetv3-tfjs/model.json rvm-mobilenetv3.safetensors

The model (PeterL1n/RobustVideoMatting, GPL-3.0) is NOT distributed with longrange: users
convert their own copy; the file this writes says so in its metadata.

Input: model.json (a tensorflowjs "graph-model") and its weight shard(s) beside it. The
weightsManifest lists the constants in shard order; each has a name, shape and dtype, and the
float32 ones are stored as uint8 with an affine dequantisation, value = min + scale * q (the
manifest's quantization.min and .scale), computed here in float64 and rounded to float32 as
tfjs does on load. int32/bool constants (shapes, paddings, axes) are skipped.

Output (what cmd/video-animate/rvm.c reads): every float32 constant of rank >= 1 except the
two guided-filter box kernels (all 1/3, checked), under its manifest name with the common
prefix "StatefulPartitionedCall/matting_network_wrapper/StatefulPartitionedCall/" removed
(wherever it occurs, so "ConstantFolding/<prefix>x" becomes "ConstantFolding/x"), F32, with
conv kernels transposed from TF's HWIO to PyTorch/libcore OIHW ([out][in][kh][kw]) and
depthwise kernels from [kh][kw][C][1] to [C][1][kh][kw]. Rank-0 constants (hard-swish 3 and
1/6, GRU 1, clamp bounds 0 and 1, guided filter eps 1e-5, the ratio == 1 test) are checked
against those values and dropped: the C forward pass hard-codes them.
Metadata: arch "rvm-mobilenetv3", source (file names and sha256 of model.json and shards),
license "GPL-3.0 (user-supplied; not distributed with longrange)", layout "OIHW".
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

PREFIX = "StatefulPartitionedCall/matting_network_wrapper/StatefulPartitionedCall/"
NUMPY = {"float32": "<f4", "int32": "<i4", "bool": "?"}
BOX_KERNELS = ("Func/input/_644", "Func/input/_645")
SCALARS = {  # suffix of a rank-0 constant's name -> the value the C code hard-codes
    "truediv_recip": np.float32(1.0 / 6.0), "add/y": np.float32(3.0), "sub/x": np.float32(1.0),
    "Minimum/y": np.float32(1.0), "clip_by_value/y": np.float32(0.0),
    "clip_by_value_1/y": np.float32(0.0), "x": np.float32(1.0), "x_1": np.float32(1.0),
}
GF_EPS = "fast_guided_filter/add/y"


def fail(msg):
    sys.exit("convert_rvm_tfjs: " + msg)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_constants(model_json):
    """[(name, float32/int32/bool array)] in manifest order, uint8 data dequantised."""
    with open(model_json) as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        fail("%s: not a tensorflowjs graph-model" % model_json)
    base = os.path.dirname(os.path.abspath(model_json))
    out, sources = [], [(os.path.basename(model_json), sha256(model_json))]
    for group in model["weightsManifest"]:
        blob = b""
        for p in group["paths"]:
            path = os.path.join(base, p)
            with open(path, "rb") as f:
                blob += f.read()
            sources.append((p, sha256(path)))
        pos = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q:
                if q.get("dtype") != "uint8" or w["dtype"] != "float32":
                    fail("%s: unsupported quantisation %r" % (w["name"], q))
                raw = np.frombuffer(blob, np.uint8, count, pos)
                pos += count
                value = (q["min"] + q["scale"] * raw.astype(np.float64)).astype(np.float32)
            else:
                dt = np.dtype(NUMPY[w["dtype"]])
                value = np.frombuffer(blob, dt, count, pos).copy()
                pos += count * dt.itemsize
            out.append((w["name"].replace(PREFIX, ""), value.reshape(shape), w["dtype"]))
        if pos != len(blob):
            fail("weight group covers %d of %d shard bytes" % (pos, len(blob)))
    return out, sources


def convert(model_json):
    constants, sources = read_constants(model_json)
    tensors = {}
    for name, value, dtype in constants:
        if dtype != "float32":
            continue
        if name in BOX_KERNELS:
            if value.shape not in ((3, 1, 4, 1), (1, 3, 4, 1)) or \
                    not np.all(value == np.float32(1.0 / 3.0)):
                fail("%s: expected a 3-tap box kernel of 1/3" % name)
            continue
        if value.ndim == 0:
            want = np.float32(1e-5) if name.endswith(GF_EPS) else \
                next((v for k, v in SCALARS.items() if name == k or name.endswith("/" + k)), None)
            if want is None or value != want:
                fail("%s: scalar %r is not a value the C network hard-codes" % (name, value))
            continue
        if value.ndim == 4:
            if "depthwise" in name:  # [kh][kw][C][1] -> [C][1][kh][kw]
                value = value.transpose(2, 3, 0, 1)
            else:  # HWIO -> OIHW
                value = value.transpose(3, 2, 0, 1)
        elif value.ndim != 1:
            fail("%s: unexpected rank %d" % (name, value.ndim))
        tensors[name] = np.ascontiguousarray(value, dtype=np.float32)
    meta = {
        "arch": "rvm-mobilenetv3",
        "layout": "OIHW",
        "source": "RobustVideoMatting MobileNetV3 TF.js graph model: " +
                  ", ".join("%s sha256 %s" % s for s in sources),
        "license": "GPL-3.0 (user-supplied; not distributed with longrange)",
    }
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_json", help="the TF.js model.json (shards beside it)")
    ap.add_argument("output", help="safetensors file to write")
    args = ap.parse_args()
    tensors, meta = convert(args.model_json)
    st.save(args.output, tensors, meta)
    print("%s: %d tensors, %d parameters" % (args.output, len(tensors),
                                             sum(t.size for t in tensors.values())))


if __name__ == "__main__":
    main()
