#!/usr/bin/python3
"""Convert a PyTorch checkpoint (.pt/.pth/.ckpt) into a safetensors model file for longrange.

The tensor names stay those of the checkpoint's state_dict (the authors' official names), so
the C loaders find them without renaming. Lightning checkpoints keep their weights under
"state_dict" and prefix them (usually "model."): --strip-prefix removes such a prefix.

    /usr/bin/python3 tools/convert_torch.py ckpt.pt model.safetensors --meta arch=hyenadna \
        --meta d_model=256 --strip-prefix model.

Hyper-parameters given with --meta land in the file's __metadata__ (all values are text, as
the format requires); a Hugging Face config.json can be merged in with --config.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402


def state_dict_of(obj):
    """The tensor dictionary inside what torch.load returned."""
    import torch
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SystemExit("convert_torch: no tensors found in the checkpoint")
    return tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="metadata entry (repeatable), e.g. arch=hyenadna")
    ap.add_argument("--config", help="a config.json whose top-level entries become metadata")
    ap.add_argument("--strip-prefix", default="", help="remove this prefix from tensor names")
    ap.add_argument("--dtype", choices=["keep", "f32", "f16", "bf16"], default="f32",
                    help="store floating-point tensors as this type (default f32)")
    args = ap.parse_args()

    import torch
    obj = torch.load(args.checkpoint, map_location="cpu")
    tensors = {}
    for name, t in state_dict_of(obj).items():
        if args.strip_prefix and name.startswith(args.strip_prefix):
            name = name[len(args.strip_prefix):]
        t = t.detach().contiguous()
        if t.is_floating_point() and args.dtype != "keep":
            t = t.to({"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype])
        tensors[name] = t

    meta = {}
    if args.config:
        with open(args.config) as f:
            for k, v in json.load(f).items():
                meta[k] = v if isinstance(v, str) else json.dumps(v)
    for kv in args.meta:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise SystemExit(f"convert_torch: --meta wants KEY=VALUE, got {kv!r}")
        meta[key] = value
    st.save(args.output, tensors, meta)
    print(f"{args.output}: {len(tensors)} tensors", file=sys.stderr)


if __name__ == "__main__":
    main()
