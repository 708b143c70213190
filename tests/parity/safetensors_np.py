"""Minimal safetensors reader/writer using numpy only (no `safetensors` package).

File layout (https://github.com/huggingface/safetensors):
  bytes [0, 8)       N: header size, unsigned 64-bit little-endian
  bytes [8, 8+N)     UTF-8 JSON object {name: {"dtype", "shape", "data_offsets": [begin, end]}}
                     plus optional "__metadata__": {str: str}; the writer pads it with
                     spaces so that 8+N is a multiple of 8 (like the reference implementation)
  bytes [8+N, ...)   raw little-endian tensor data; data_offsets are relative to 8+N

Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
BF16 tensors are returned as float32 by `load_file` (the uint16 payload shifted into the
top half of a float32); pass `bf16_raw=True` to get the uint16 bit patterns instead.
To write BF16, pass `bf16=[names]` to `save_file` (float arrays are rounded to nearest even)
or wrap the bit patterns with `BF16Bits(uint16_array)`.
"""

import json
import struct

import numpy as np

__all__ = ["load_file", "save_file", "load_header", "BF16Bits",
           "float32_to_bf16_bits", "bf16_bits_to_float32", "SafetensorsError"]

# safetensors dtype -> numpy little-endian dtype
_ST_TO_NP = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NP_TO_ST = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}
_MAX_HEADER = 100 * 1024 * 1024  # same limit as the reference implementation


class SafetensorsError(ValueError):
    pass


class BF16Bits:
    """Wraps a uint16 array holding bfloat16 bit patterns so save_file writes it as BF16."""

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise SafetensorsError("BF16Bits needs a uint16 array")
        self.bits = bits


def float32_to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even, NaN kept NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)  # quiet NaN
    return rounded


def bf16_bits_to_float32(bits):
    bits = np.ascontiguousarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _read_header(f, file_size):
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError("file too small for a safetensors header")
    (n,) = struct.unpack("<Q", raw)
    if n > _MAX_HEADER or 8 + n > file_size:
        raise SafetensorsError(f"invalid header length {n} (file size {file_size})")
    hb = f.read(n)
    try:
        header = json.loads(hb.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"invalid JSON header: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    return n, header


def load_header(path):
    """Returns (metadata dict or None, {name: {"dtype", "shape", "data_offsets"}})."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        _, header = _read_header(f, size)
    meta = header.pop("__metadata__", None)
    return meta, header


def load_file(path, bf16_raw=False, with_metadata=False):
    """Reads a safetensors file into {name: numpy array} (arrays own their memory).

    Validates dtypes, shapes, that data_offsets match the byte sizes, and that the
    tensors tile the data section exactly (no gaps/overlaps), as the reference does.
    """
    with open(path, "rb") as f:
        buf = f.read()
    size = len(buf)
    if size < 8:
        raise SafetensorsError("file too small for a safetensors header")
    (n,) = struct.unpack_from("<Q", buf, 0)
    if n > _MAX_HEADER or 8 + n > size:
        raise SafetensorsError(f"invalid header length {n} (file size {size})")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"invalid JSON header: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        raise SafetensorsError("__metadata__ must be a map of strings to strings")
    data_start = 8 + n
    data_len = size - data_start
    out = {}
    spans = []
    for name, info in header.items():
        try:
            dt = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r}: malformed entry {info!r}") from None
        if dt not in _ST_TO_NP:
            raise SafetensorsError(f"tensor {name!r}: unsupported dtype {dt}")
        if any(d < 0 for d in shape):
            raise SafetensorsError(f"tensor {name!r}: negative dimension in {shape}")
        npdt = _ST_TO_NP[dt]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = count * npdt.itemsize
        if not (0 <= begin <= end <= data_len) or end - begin != nbytes:
            raise SafetensorsError(
                f"tensor {name!r}: data_offsets {[begin, end]} inconsistent with "
                f"{dt}{shape} ({nbytes} bytes, data section {data_len} bytes)")
        spans.append((begin, end, name))
        arr = np.frombuffer(buf, dtype=npdt, count=count, offset=data_start + begin)
        arr = arr.reshape(shape).copy()
        if dt == "BF16" and not bf16_raw:
            arr = bf16_bits_to_float32(arr).reshape(shape)
        out[name] = arr
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(f"tensor {name!r}: gap or overlap at data offset {begin}")
        pos = end
    if pos != data_len:
        raise SafetensorsError(f"data section has {data_len - pos} trailing bytes")
    if with_metadata:
        return out, meta
    return out


def save_file(tensors, path, metadata=None, bf16=()):
    """Writes {name: array-like | BF16Bits} to `path`.

    Float/int numpy arrays (or torch CPU tensors, via np.asarray) are written with their own
    dtype; names listed in `bf16` are converted from float to BF16. Tensors are laid out
    like the reference implementation: sorted by dtype alignment (descending) then name.
    """
    bf16 = set(bf16)
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsError(f"invalid tensor name {name!r}")
        if isinstance(value, BF16Bits):
            st, data, shape = "BF16", np.ascontiguousarray(value.bits, dtype="<u2"), value.bits.shape
        else:
            if hasattr(value, "detach"):  # torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(value)
            shape = arr.shape
            if name in bf16:
                st, data = "BF16", float32_to_bf16_bits(arr.astype(np.float32))
            else:
                if arr.dtype not in _NP_TO_ST:
                    raise SafetensorsError(f"tensor {name!r}: unsupported numpy dtype {arr.dtype}")
                st = _NP_TO_ST[arr.dtype]
                data = np.ascontiguousarray(arr, dtype=_ST_TO_NP[st])
        entries.append((st, name, shape, data))
    unknown = bf16 - {e[1] for e in entries}
    if unknown:
        raise SafetensorsError(f"bf16 names not among tensors: {sorted(unknown)}")
    entries.sort(key=lambda e: (-_ST_TO_NP[e[0]].itemsize, e[1]))

    header = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for st, name, shape, data in entries:
        header[name] = {"dtype": st, "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - (len(hb) % 8)) % 8)  # 8 + len(hb) stays a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, _, data in entries:
            f.write(data.tobytes(order="C"))
