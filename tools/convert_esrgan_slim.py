#!/usr/bin/python3
"""Convert the UpscalerJS ESRGAN-slim TF.js layers-models (a Keras RDN by idealo's
image-super-resolution, exported with tensorflowjs) into longrange model files.

    /usr/bin/python3 tools/convert_esrgan_slim.py \
        ../shared/data/sr/upscalerjs-esrgan-slim/x2/model.json models/esrgan-slim-x2.safetensors

The layer graph in model.json is walked layer by layer: every layer class must be one this
converter understands (InputLayer, Conv2D, Activation relu, Concatenate on channels, Add,
UpSampling2D nearest), every Conv2D must be stride 1, dilation 1, one group, with bias and a
linear activation, and the whole graph must be exactly idealo's RDN (rdn.py) for the D, C, G,
G0 and scale read off the weights: anything else is refused, so the C network (cmd/sr-run/rdn.c)
can rely on that structure. The RDN, for d = 1..D and c = 1..C:

    F_m1 = conv3x3(LR)                 F_0 = conv3x3(F_m1)
    x = rdb_in (F_0 for d = 1)         x = concat(x, relu(F_d_c(x)))    (F_d_c: conv3x3 -> G)
    LRL_d = LFF_d(x) + rdb_in          (LFF_d: conv1x1 -> G0)
    FDF = GFF_2(GFF_1(concat(LRL_1..LRL_D))) + F_m1       (GFF_1 1x1, GFF_2 3x3)
    SR = conv3x3(nearest_upsample_scale(UPN3(relu(UPN2(relu(UPN1(FDF)))))))  (UPN1 5x5)

The network takes and gives pixel values in 0..255 (UpscalerJS's inputRange/outputRange for
the "rdn" architecture), recorded as metadata value_range = 255.

Tensors are named after the Keras layers with PyTorch suffixes ("F_0/kernel" becomes
"F_0.weight", "F_0/bias" becomes "F_0.bias"), kernels transposed from Keras HWIO to PyTorch
OIHW, float32 as shipped.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

KNOWN_LAYERS = {"InputLayer", "Conv2D", "Activation", "Concatenate", "Add", "UpSampling2D"}
SOURCE = ("npm @upscalerjs/esrgan-slim@1.0.0 models/x%d (MIT, Copyright (c) 2022 Kevin Scott); "
          "RDN trained with idealo/image-super-resolution")


class ConvertError(Exception):
    pass


def read_weights(model_dir, manifest):
    """name -> float32 array from the manifest's shards, read in order."""
    weights = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            if w.get("dtype") != "float32" or "quantization" in w:
                raise ConvertError("weight %s: only plain float32 is supported" % w["name"])
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            nbytes = 4 * count
            if pos + nbytes > len(blob):
                raise ConvertError("weight %s runs past the end of the shards" % w["name"])
            weights[w["name"]] = np.frombuffer(blob, "<f4", count, pos).reshape(w["shape"]).copy()
            pos += nbytes
        if pos != len(blob):
            raise ConvertError("shards hold %d bytes, the manifest describes %d" % (len(blob), pos))
    return weights


def inbound_names(layer):
    nodes = layer.get("inbound_nodes", [])
    if len(nodes) > 1:
        raise ConvertError("layer %s is shared (called %d times)" % (layer["name"], len(nodes)))
    if not nodes:
        return []
    for ref in nodes[0]:
        if ref[1] != 0 or ref[2] != 0:
            raise ConvertError("layer %s: multi-output inbound %r" % (layer["name"], ref))
    return [ref[0] for ref in nodes[0]]


def describe(layer):
    """A layer reduced to what the network computes: (class, details, inputs)."""
    cls, cfg, name = layer["class_name"], layer["config"], layer["name"]
    if cls not in KNOWN_LAYERS:
        raise ConvertError("layer %s: class %s is not supported" % (name, cls))
    if cfg.get("dtype", "float32") != "float32":
        raise ConvertError("layer %s: dtype %s" % (name, cfg.get("dtype")))
    if cls == "InputLayer":
        shape = cfg.get("batch_input_shape")
        if shape is None or len(shape) != 4 or shape[3] != 3:
            raise ConvertError("input %s: expected NHWC with 3 channels, found %r" % (name, shape))
        detail = ()
    elif cls == "Conv2D":
        if (cfg.get("strides") != [1, 1] or cfg.get("dilation_rate") != [1, 1]
                or cfg.get("groups", 1) != 1 or cfg.get("data_format") != "channels_last"
                or cfg.get("activation") != "linear" or not cfg.get("use_bias")):
            raise ConvertError("conv %s: only stride 1, dilation 1, 1 group, channels_last, "
                               "linear, with bias is supported" % name)
        kh, kw = cfg["kernel_size"]
        if kh != kw or kh % 2 != 1:
            raise ConvertError("conv %s: kernel %dx%d" % (name, kh, kw))
        pad = cfg["padding"]
        if pad not in ("same", "valid") or (pad == "valid" and kh != 1):
            raise ConvertError("conv %s: padding %s with kernel %d" % (name, pad, kh))
        detail = (cfg["filters"], kh)  # 'valid' 1x1 is the same as 'same' 1x1
    elif cls == "Activation":
        if cfg.get("activation") != "relu":
            raise ConvertError("activation %s: %s" % (name, cfg.get("activation")))
        detail = ("relu",)
    elif cls == "Concatenate":
        if cfg.get("axis") not in (3, -1):
            raise ConvertError("concatenate %s: axis %r" % (name, cfg.get("axis")))
        detail = ()
    elif cls == "Add":
        detail = ()
    else:  # UpSampling2D
        size = cfg.get("size")
        if (cfg.get("interpolation", "nearest") != "nearest" or not size or size[0] != size[1]
                or cfg.get("data_format") != "channels_last"):
            raise ConvertError("upsampling %s: only square nearest is supported" % name)
        detail = (size[0],)
    return (cls, detail, tuple(inbound_names(layer)))


def expected_rdn(D, C, G, G0, scale, ch=3):
    """idealo rdn.py's Keras graph: name -> (class, detail, inputs), in order."""
    g = [("LR", ("InputLayer", (), ())),
         ("F_m1", ("Conv2D", (G0, 3), ("LR",))),
         ("F_0", ("Conv2D", (G0, 3), ("F_m1",)))]
    rdb_in, lrls = "F_0", []
    for d in range(1, D + 1):
        x = rdb_in
        for c in range(1, C + 1):
            g.append(("F_%d_%d" % (d, c), ("Conv2D", (G, 3), (x,))))
            g.append(("F_%d_%d_Relu" % (d, c), ("Activation", ("relu",), ("F_%d_%d" % (d, c),))))
            g.append(("RDB_Concat_%d_%d" % (d, c),
                      ("Concatenate", (), (x, "F_%d_%d_Relu" % (d, c)))))
            x = "RDB_Concat_%d_%d" % (d, c)
        g.append(("LFF_%d" % d, ("Conv2D", (G0, 1), (x,))))
        g.append(("LRL_%d" % d, ("Add", (), ("LFF_%d" % d, rdb_in))))
        rdb_in = "LRL_%d" % d
        lrls.append(rdb_in)
    g += [("LRLs_Concat", ("Concatenate", (), tuple(lrls))),
          ("GFF_1", ("Conv2D", (G0, 1), ("LRLs_Concat",))),
          ("GFF_2", ("Conv2D", (G0, 3), ("GFF_1",))),
          ("FDF", ("Add", (), ("GFF_2", "F_m1"))),
          ("UPN1", ("Conv2D", (64, 5), ("FDF",))),
          ("UPN1_Relu", ("Activation", ("relu",), ("UPN1",))),
          ("UPN2", ("Conv2D", (32, 3), ("UPN1_Relu",))),
          ("UPN2_Relu", ("Activation", ("relu",), ("UPN2",))),
          ("UPN3", ("Conv2D", (ch * scale * scale, 3), ("UPN2_Relu",))),
          ("UPsample", ("UpSampling2D", (scale,), ("UPN3",))),
          ("SR", ("Conv2D", (ch, 3), ("UPsample",)))]
    return g


def convert(model_json, out_path):
    model_dir = os.path.dirname(os.path.abspath(model_json))
    with open(model_json) as f:
        m = json.load(f)
    if m.get("format") != "layers-model":
        raise ConvertError("not a TF.js layers-model (format %r)" % m.get("format"))
    config = m["modelTopology"]["model_config"]
    if config.get("class_name") not in ("Functional", "Model"):
        raise ConvertError("model class %s" % config.get("class_name"))
    layers = config["config"]["layers"]
    if config["config"].get("input_layers") != [["LR", 0, 0]] or \
            config["config"].get("output_layers") != [["SR", 0, 0]]:
        raise ConvertError("expected one input LR and one output SR")
    graph = [(layer["name"], describe(layer)) for layer in layers]
    weights = read_weights(model_dir, m["weightsManifest"])

    # Read the hyper-parameters off the graph, then demand the exact RDN they imply.
    names = {n for n, _ in graph}
    D = max(int(n.split("_")[1]) for n in names if n.startswith("LFF_"))
    C = max(int(n.split("_")[2]) for n in names if n.startswith("F_1_") and n.count("_") == 2)
    G0 = dict(graph)["F_0"][1][0]
    G = dict(graph)["F_1_1"][1][0]
    scale = dict(graph)["UPsample"][1][0]
    want = expected_rdn(D, C, G, G0, scale)
    if graph != want:
        for (gn, gd), (wn, wd) in zip(graph, want):
            if (gn, gd) != (wn, wd):
                raise ConvertError("layer %s %r differs from idealo's RDN (expected %s %r)"
                                   % (gn, gd, wn, wd))
        raise ConvertError("%d layers, the RDN with D=%d C=%d has %d" % (len(graph), D, C, len(want)))

    # Conv weights: check the Keras shapes against the graph, store OIHW.
    channels = {"LR": 3}
    tensors = {}
    for name, (cls, detail, inputs) in graph:
        if cls == "Conv2D":
            filters, k = detail
            cin = channels[inputs[0]]
            kernel = weights.pop(name + "/kernel", None)
            bias = weights.pop(name + "/bias", None)
            if kernel is None or bias is None:
                raise ConvertError("conv %s: weights missing" % name)
            if kernel.shape != (k, k, cin, filters) or bias.shape != (filters,):
                raise ConvertError("conv %s: kernel %r bias %r, expected (%d, %d, %d, %d)"
                                   % (name, kernel.shape, bias.shape, k, k, cin, filters))
            tensors[name + ".weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            tensors[name + ".bias"] = bias
            channels[name] = filters
        elif cls == "Concatenate":
            channels[name] = sum(channels[i] for i in inputs)
        elif cls == "Add":
            if len({channels[i] for i in inputs}) != 1:
                raise ConvertError("add %s: channel counts differ" % name)
            channels[name] = channels[inputs[0]]
        elif cls != "InputLayer":
            channels[name] = channels[inputs[0]]
    if weights:
        raise ConvertError("weights not used by any layer: %s" % ", ".join(sorted(weights)))
    if channels["SR"] != 3:
        raise ConvertError("output has %d channels" % channels["SR"])

    meta = {"arch": "esrgan-slim", "scale": str(scale), "D": str(D), "C": str(C), "G": str(G),
            "G0": str(G0), "upscaling": "ups", "value_range": "255", "channels": "3",
            "source": SOURCE % scale, "license": "MIT",
            "converted_by": "tools/convert_esrgan_slim.py"}
    st.save(out_path, tensors, meta)
    return D, C, G, G0, scale, sum(t.size for t in tensors.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_json")
    ap.add_argument("output")
    args = ap.parse_args()
    try:
        D, C, G, G0, scale, params = convert(args.model_json, args.output)
    except (ConvertError, KeyError, ValueError, TypeError, IndexError) as e:
        sys.exit("convert_esrgan_slim: %s: %s" % (args.model_json, e))
    print("%s: RDN D=%d C=%d G=%d G0=%d x%d, %d parameters"
          % (args.output, D, C, G, G0, scale, params))


if __name__ == "__main__":
    main()
