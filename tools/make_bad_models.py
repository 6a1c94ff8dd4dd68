#!/usr/bin/python3
"""Writes the model-file fixtures: a malformed corpus and a few good files.

    /usr/bin/python3 tools/make_bad_models.py      (from the repository root)

tests/fixtures/models/bad/   one malformed file (or Hugging Face directory) per case; each must
                             be rejected with LR_ERR_MODEL and a message naming the problem
                             (tests/unit/test_model.c lists the keyword for every case)
tests/fixtures/models/good/  files that must load, with known shapes and values
tests/fuzz/seeds/model/      copies of every fixture file, seeding the model fuzz target

Everything is deterministic, so rerunning reproduces the committed bytes.
"""

import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from longrange import safetensors as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "models")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds", "model")


def header_text(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def raw(header, data=b"", length=None):
    """A file from a header (bytes, str or JSON-able object) and data, as given: no checks.
    `length` overrides the 8-byte header length."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    elif not isinstance(header, bytes):
        header = header_text(header)
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def f32(*values):
    return np.array(values, dtype="<f4").tobytes()


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def write(path, blob):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)


def save(path, tensors, metadata=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    st.save(path, tensors, metadata)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def bad_files():
    """name -> bytes. Names say what is wrong."""
    ok_w = {"w": tensor("F32", [2], 0, 8)}
    return {
        "empty.safetensors": b"",
        "truncated_length.safetensors": b"\x10\x00\x00\x00\x00",
        "truncated_data.safetensors": raw({"w": tensor("F32", [4], 0, 16)}, f32(1, 2)),
        "header_beyond_file.safetensors": raw(ok_w, f32(1, 2), length=4096),
        "header_over_cap.safetensors": struct.pack("<Q", 200 << 20),
        "invalid_json.safetensors": raw('{"w": {"dtype": "F32", "shape": [2], ', f32(1, 2)),
        "trailing_comma.safetensors": raw('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}',
                                          f32(1, 2)),
        "comment_in_header.safetensors": raw('{/* weights */"w":{"dtype":"F32","shape":[2],'
                                             '"data_offsets":[0,8]}}', f32(1, 2)),
        "invalid_utf8.safetensors": raw(b'{"w\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                        f32(1, 2)),
        "lone_surrogate.safetensors": raw('{"w\\ud800":{"dtype":"F32","shape":[2],'
                                          '"data_offsets":[0,8]}}', f32(1, 2)),
        "deep_nesting.safetensors": raw("[" * 100 + "]" * 100),
        "header_not_object.safetensors": raw("[]"),
        "duplicate_tensor.safetensors": raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                            '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
                                            f32(1, 2)),
        "nul_in_name.safetensors": raw('{"w\\u0000x":{"dtype":"F32","shape":[2],'
                                       '"data_offsets":[0,8]}}', f32(1, 2)),
        "overlapping_offsets.safetensors": raw({"a": tensor("F32", [2], 0, 8),
                                                "b": tensor("F32", [2], 4, 12)}, f32(1, 2, 3)),
        "offsets_out_of_range.safetensors": raw({"w": tensor("F32", [2], 8, 16)}, f32(1, 2)),
        "offsets_reversed.safetensors": raw({"w": tensor("F32", [0], 8, 0)}, f32(1, 2)),
        "offsets_not_pair.safetensors": raw({"w": {"dtype": "F32", "shape": [2],
                                                   "data_offsets": [0, 8, 8]}}, f32(1, 2)),
        "gap_not_covered.safetensors": raw({"a": tensor("F32", [1], 0, 4),
                                            "b": tensor("F32", [1], 8, 12)}, f32(1, 2, 3)),
        "trailing_bytes.safetensors": raw(ok_w, f32(1, 2, 3)),
        "subbyte_not_whole.safetensors": raw({"w": tensor("F4", [3], 0, 2)}, b"\0\0"),
        "unknown_dtype.safetensors": raw({"w": tensor("F24", [2], 0, 6)}, b"\0" * 6),
        "dtype_not_string.safetensors": raw({"w": tensor(4, [2], 0, 8)}, f32(1, 2)),
        "size_mismatch.safetensors": raw({"w": tensor("F32", [3], 0, 8)}, f32(1, 2)),
        "shape_overflow.safetensors": raw({"w": tensor("F32", [1 << 32, 1 << 32, 16], 0, 8)},
                                          f32(1, 2)),
        "bytes_overflow.safetensors": raw({"w": tensor("F64", [1 << 62], 0, 8)}, f32(1, 2)),
        "negative_dim.safetensors": raw({"w": tensor("F32", [-2], 0, 8)}, f32(1, 2)),
        "non_integer_dim.safetensors": raw({"w": tensor("F32", [2.5], 0, 8)}, f32(1, 2)),
        "string_dim.safetensors": raw({"w": tensor("F32", ["2"], 0, 8)}, f32(1, 2)),
        "dim_beyond_int64.safetensors": raw('{"w":{"dtype":"F32","shape":[99999999999999999999],'
                                            '"data_offsets":[0,8]}}', f32(1, 2)),
        "too_many_dims.safetensors": raw({"w": tensor("F32", [1] * 9 + [2], 0, 8)}, f32(1, 2)),
        "unknown_key.safetensors": raw({"w": dict(tensor("F32", [2], 0, 8), layout="NCHW")},
                                       f32(1, 2)),
        "missing_offsets.safetensors": raw({"w": {"dtype": "F32", "shape": [2]}}, f32(1, 2)),
        "tensor_not_object.safetensors": raw({"w": [0, 8]}, f32(1, 2)),
        "metadata_non_string.safetensors": raw({"__metadata__": {"arch": "test-model",
                                                                 "d_model": 4}, **ok_w}, f32(1, 2)),
        "metadata_nul.safetensors": raw('{"__metadata__":{"arch":"test\\u0000model"},'
                                        '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                        f32(1, 2)),
        "metadata_not_object.safetensors": raw({"__metadata__": "test-model", **ok_w}, f32(1, 2)),
        # Well formed: only lr_model_expect_arch rejects it.
        "wrong_arch.safetensors": st.encode({"w": np.array([1, 2], "<f4")}, {"arch": "not-a-model"}),
    }


def bad_directories(base):
    """Hugging Face directories that must be rejected."""
    shard = {"format": "pt"}
    one = np.array([1, 2], "<f4")

    d = os.path.join(base, "sharded_missing_tensor")
    save(os.path.join(d, "model-1.safetensors"), {"a": one}, shard)
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"weight_map": {"a": "model-1.safetensors", "b": "model-1.safetensors"}})

    d = os.path.join(base, "sharded_duplicate")
    save(os.path.join(d, "model-1.safetensors"), {"a": one}, shard)
    save(os.path.join(d, "model-2.safetensors"), {"a": one, "b": one}, shard)
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})

    d = os.path.join(base, "sharded_unlisted")
    save(os.path.join(d, "model-1.safetensors"), {"a": one, "extra": one}, shard)
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"weight_map": {"a": "model-1.safetensors"}})

    d = os.path.join(base, "sharded_path_escape")
    save(os.path.join(d, "model-1.safetensors"), {"a": one}, shard)
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"weight_map": {"a": "../sharded_path_escape/model-1.safetensors"}})

    d = os.path.join(base, "sharded_bad_shard")
    write(os.path.join(d, "model-1.safetensors"), raw({"a": tensor("F32", [2], 0, 16)}, f32(1, 2)))
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"weight_map": {"a": "model-1.safetensors"}})

    d = os.path.join(base, "dir_invalid_config")
    save(os.path.join(d, "model.safetensors"), {"a": one})
    write(os.path.join(d, "config.json"), b'{"model_type": "test-model", "hidden_size": 04}\n')

    d = os.path.join(base, "dir_without_weights")
    write_json(os.path.join(d, "config.json"), {"model_type": "test-model"})


def good(base):
    save(os.path.join(base, "with_metadata.safetensors"), {
        "embed.weight": (np.arange(12, dtype="<f4") * 0.5).reshape(3, 4),
        "norm.bias": np.array([-1, 0, 1, 2.5], "<f2"),
        "head.bf16": st.BF16.from_float(np.array([1.5, -2, 0.25], "<f4")),
        "ids": np.array([7, -3, 2147483647], "<i4"),
        "mask": np.array([0, 1, 255], "u1"),
        "positions": np.array([0, 1, 2], "<i8"),
        "empty": np.zeros((0, 4), "<f4"),
        "scalar": np.array(42, "<f4"),
    }, {"arch": "test-model", "d_model": "4", "eps": "1e-05",
        "note": "line\nbreak, \"quoted\", caf\u00e9"})

    # The data section starts at 8 + N with N odd, so both tensors sit misaligned in the file;
    # the header lists them in an order different from the data and names one in Unicode.
    header = header_text({"a\u00ef": tensor("F16", [2], 12, 16), "b": tensor("F32", [3], 0, 12),
                          "z": tensor("U8", [0], 16, 16)})
    header += b" " * ((1 - (8 + len(header))) % 4)
    assert (8 + len(header)) % 4 == 1
    write(os.path.join(base, "unaligned_header.safetensors"),
          raw(header, f32(1, 2, 3) + np.array([0.5, -0.5], "<f2").tobytes()))

    d = os.path.join(base, "hf_dir")
    save(os.path.join(d, "model.safetensors"),
            {"embed.weight": np.arange(8, dtype="<f4").reshape(2, 4)}, {"format": "pt"})
    write_json(os.path.join(d, "config.json"), {
        "architectures": ["TestModel"], "model_type": "test-model", "hidden_size": 4,
        "layer_norm_eps": 1e-05, "tie_word_embeddings": False, "name": "tiny"})

    d = os.path.join(base, "hf_sharded")
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    save(os.path.join(d, s1), {"embed": np.arange(4, dtype="<f4"),
                                  "layers.0.w": np.full((2, 2), 1, "<f4")}, {"format": "pt"})
    save(os.path.join(d, s2), {"layers.1.w": np.full((2, 2), 2, "<f4")}, {"format": "pt"})
    write_json(os.path.join(d, "model.safetensors.index.json"), {
        "metadata": {"total_size": 48},
        "weight_map": {"embed": s1, "layers.0.w": s1, "layers.1.w": s2}})
    write_json(os.path.join(d, "config.json"), {"model_type": "test-sharded", "num_layers": 2})


def main():
    bad = os.path.join(FIXTURES, "bad")
    good_dir = os.path.join(FIXTURES, "good")
    for d in (bad, good_dir, SEEDS):
        shutil.rmtree(d, ignore_errors=True)
    for name, blob in bad_files().items():
        write(os.path.join(bad, name), blob)
    bad_directories(bad)
    good(good_dir)
    # Seeds: every fixture file, flattened; shards and side files included.
    os.makedirs(SEEDS)
    for kind in ("good", "bad"):
        for dirpath, _, files in sorted(os.walk(os.path.join(FIXTURES, kind))):
            for f in sorted(files):
                if f.endswith(".safetensors"):
                    rel = os.path.relpath(os.path.join(dirpath, f), FIXTURES)
                    shutil.copyfile(os.path.join(dirpath, f),
                                    os.path.join(SEEDS, rel.replace(os.sep, "__")))


if __name__ == "__main__":
    main()
