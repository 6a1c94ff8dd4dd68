"""Read and write safetensors files with numpy alone (no `safetensors` package).

A file is an 8-byte little-endian header length N, N bytes of JSON
    {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}}
and the data section, where each tensor occupies bytes [b, e) in C order, little-endian.

numpy has no bfloat16, so BF16 tensors travel as `BF16` objects holding the uint16 bit
patterns; `BF16.from_float` rounds float32 to nearest even like torch does. torch tensors are
accepted by `save` when torch is importable (bfloat16 ones become BF16).

    from longrange import safetensors as st
    st.save("m.safetensors", {"w": np.zeros((2, 3), np.float32)}, {"arch": "hyenadna"})
    tensors, meta = st.load("m.safetensors")

Files written here pad the header with spaces to a multiple of 8 and place the data in order
of decreasing element size, so libcore maps every tensor aligned, without copying.
"""

import json
import os
import struct
import tempfile

import numpy as np

MAX_HEADER = 100 << 20  # the cap libcore and the reference implementation apply

# safetensors dtype name -> numpy dtype (little-endian); BF16 is carried as uint16 bits.
_NUMPY = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}
_FROM_NUMPY = {np.dtype(v).newbyteorder("<") if np.dtype(v).itemsize > 1 else np.dtype(v): k
               for k, v in _NUMPY.items() if k != "BF16"}


class BF16:
    """A bfloat16 tensor as its uint16 bit patterns (numpy has no bfloat16 dtype)."""

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise TypeError("BF16 holds uint16 bit patterns; use BF16.from_float for floats")
        self.bits = bits

    @classmethod
    def from_float(cls, values):
        """Rounds to the nearest bfloat16, ties to even; NaN stays NaN."""
        f = np.asarray(values, dtype=np.float32, order="C")
        u = f.view(np.uint32)
        one, half, shift = np.uint32(1), np.uint32(0x7FFF), np.uint32(16)
        with np.errstate(over="ignore"):  # only NaN patterns can wrap, and they are replaced
            rounded = ((u + half + ((u >> shift) & one)) >> shift).astype(np.uint16)
        rounded = np.where(np.isnan(f), ((u >> shift) | np.uint32(0x40)).astype(np.uint16), rounded)
        return cls(rounded)

    def to_float(self):
        return (self.bits.astype(np.uint32) << np.uint32(16)).view(np.float32)

    @property
    def shape(self):
        return self.bits.shape

    def __eq__(self, other):
        return isinstance(other, BF16) and np.array_equal(self.bits, other.bits)

    def __repr__(self):
        return "BF16(%r)" % (self.to_float(),)


def _as_numpy(name, value):
    """(safetensors dtype, contiguous little-endian array) for one tensor to write."""
    if isinstance(value, BF16):
        return "BF16", np.asarray(value.bits, dtype="<u2", order="C")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        import torch
        t = value.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return "BF16", t.view(torch.int16).numpy().view("<u2")
        value = t.numpy()
    a = np.asarray(value)
    dtype = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
    if dtype not in _FROM_NUMPY:
        raise TypeError("tensor %r: dtype %s has no safetensors equivalent" % (name, a.dtype))
    return _FROM_NUMPY[dtype], np.asarray(a, dtype=dtype, order="C")


def encode(tensors, metadata=None):
    """The bytes of a safetensors file. tensors: mapping (or pairs) name -> array."""
    items = list(tensors.items() if hasattr(tensors, "items") else tensors)
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names")
    if "__metadata__" in names:
        raise ValueError("a tensor cannot be named __metadata__")
    arrays = [(n,) + _as_numpy(n, v) for n, v in items]
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata maps str to str; got %r: %r" % (k, v))
        header["__metadata__"] = dict(metadata)
    # Larger elements first keeps every tensor aligned for its dtype.
    order = sorted(range(len(arrays)), key=lambda i: (-arrays[i][2].dtype.itemsize, i))
    offsets, pos = {}, 0
    for i in order:
        offsets[i] = pos
        pos += arrays[i][2].nbytes
    for i, (name, st_dtype, a) in enumerate(arrays):
        header[name] = {"dtype": st_dtype, "shape": list(a.shape),
                        "data_offsets": [offsets[i], offsets[i] + a.nbytes]}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    if len(text) > MAX_HEADER:
        raise ValueError("header of %d bytes exceeds the %d-byte limit" % (len(text), MAX_HEADER))
    return b"".join([struct.pack("<Q", len(text)), text] + [arrays[i][2].tobytes() for i in order])


def save(path, tensors, metadata=None):
    """Writes atomically: a temporary file in the same directory, renamed on success."""
    blob = encode(tensors, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in header")
    return dict(pairs)


def _elements(shape):
    n = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise ValueError("bad dimension %r" % (d,))
        n *= d
    return n


def decode_header(blob):
    """(header without __metadata__, metadata, data offset) of a file's bytes, checked."""
    if len(blob) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or n > len(blob) - 8:
        raise ValueError("header length %d beyond the file or the limit" % n)
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ must map strings to strings")
    data_size = len(blob) - 8 - n
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("tensor %r: needs exactly dtype, shape and data_offsets" % name)
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ValueError("tensor %r: data_offsets must be two integers" % name)
        begin, end = offsets
        if info["dtype"] not in _NUMPY:
            raise ValueError("tensor %r: dtype %s not readable here" % (name, info["dtype"]))
        size = _elements(info["shape"]) * np.dtype(_NUMPY[info["dtype"]]).itemsize
        if not 0 <= begin <= end <= data_size or end - begin != size:
            raise ValueError("tensor %r: data_offsets [%d, %d] do not fit" % (name, begin, end))
        spans.append((begin, end))
    # The same rule as libcore: sorted by offset, each range starts where the last ended.
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise ValueError("tensor data overlaps or leaves a gap at byte %d" % min(begin, covered))
        covered = end
    if covered != data_size:
        raise ValueError("data section not covered exactly by the tensors")
    return header, metadata, 8 + n


def decode(blob, bf16_as_float=False):
    """(tensors, metadata) from a file's bytes; tensors keep the header's order."""
    header, metadata, base = decode_header(blob)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        a = np.frombuffer(blob, dtype=_NUMPY[info["dtype"]], count=_elements(info["shape"]),
                          offset=base + begin).reshape(tuple(info["shape"])).copy()
        if info["dtype"] == "BF16":
            a = BF16(a)
            if bf16_as_float:
                a = a.to_float()
        tensors[name] = a
    return tensors, dict(metadata)


def load(path, bf16_as_float=False):
    """(tensors, metadata): dict name -> numpy array (BF16 objects for bfloat16 unless
    bf16_as_float), and dict str -> str."""
    with open(path, "rb") as f:
        return decode(f.read(), bf16_as_float)


def read_header(path):
    """(header, metadata) without the data: header maps name -> {dtype, shape, data_offsets}."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("%s: shorter than 8 bytes" % path)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER:
            raise ValueError("%s: header length %d exceeds the limit" % (path, n))
        header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=_no_duplicates)
    metadata = header.pop("__metadata__", {})
    return header, metadata
