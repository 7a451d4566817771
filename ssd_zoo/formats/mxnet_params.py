"""Reader (and writer, for tests) of MXNet's NDArray-list ``.params`` binary format.

Written with numpy alone so conversion never needs MXNet.  Layout (little endian):
uint64 magic 0x112, uint64 reserved, uint64 array count; per array: uint32 magic
(0xF993FAC9 = V2, 0xF993FACA = V3), int32 storage type (0 = dense), uint32 ndim,
ndim x int64 dims, int32 dev_type, int32 dev_id, int32 dtype flag, raw data; then uint64
name count and, per name, uint64 length + UTF-8 bytes.
"""
from __future__ import annotations

import os
import struct
from collections import OrderedDict

import numpy as np

from ..atomic import atomic_write_bytes

LIST_MAGIC = 0x112
ARRAY_MAGIC_V2 = 0xF993FAC9
ARRAY_MAGIC_V3 = 0xF993FACA
ARRAY_MAGIC_V1 = 0xF993FAC8
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32,
          5: np.int8, 6: np.int64}
DTYPE_FLAGS = {np.dtype(v): k for k, v in DTYPES.items()}


class ParamsFormatError(ValueError):
    """The file is not a valid (dense) MXNet .params file."""


class _Cursor:
    def __init__(self, buf: memoryview, path: str):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ParamsFormatError(
                f"{self.path}: truncated .params file (wanted {size} bytes at offset "
                f"{self.pos}, file has {len(self.buf)})")
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def bytes(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ParamsFormatError(
                f"{self.path}: truncated .params file (wanted {n} bytes at offset "
                f"{self.pos}, file has {len(self.buf)})")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def read_params(path_or_bytes, name: str | None = None) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.params`` file into an ordered ``{name: array}`` dict (file order).

    Args:
        path_or_bytes: file path or the file's bytes.
        name: label used in error messages when bytes are given.
    Raises:
        ParamsFormatError (a ValueError) on a bad magic, unsupported storage, or a
        truncated file.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, label = bytes(path_or_bytes), name or "<bytes>"
    else:
        label = os.fspath(path_or_bytes)
        with open(label, "rb") as f:
            data = f.read()
    cur = _Cursor(memoryview(data), label)
    magic, _reserved, count = cur.take("<QQQ")
    if magic != LIST_MAGIC:
        raise ParamsFormatError(f"{label}: not an MXNet .params file "
                                f"(magic {magic:#x}, expected {LIST_MAGIC:#x})")
    arrays = []
    for i in range(count):
        (amagic,) = cur.take("<I")
        if amagic in (ARRAY_MAGIC_V2, ARRAY_MAGIC_V3):
            (stype,) = cur.take("<i")
            if stype != 0:
                raise ParamsFormatError(f"{label}: array {i} has sparse storage type {stype}; "
                                        "only dense arrays are supported")
            (ndim,) = cur.take("<I")
            shape = cur.take(f"<{ndim}q") if ndim else ()
        elif amagic == ARRAY_MAGIC_V1:
            (ndim,) = cur.take("<I")
            shape = cur.take(f"<{ndim}q") if ndim else ()
        else:  # legacy V0: the magic word is ndim, dims are uint32
            ndim = amagic
            if ndim > 32:
                raise ParamsFormatError(f"{label}: array {i} has bad magic {amagic:#x}")
            shape = cur.take(f"<{ndim}I") if ndim else ()
        if ndim == 0:
            arrays.append(np.zeros((0,), np.float32))
            continue
        _dev_type, _dev_id, flag = cur.take("<iii")
        if flag not in DTYPES:
            raise ParamsFormatError(f"{label}: array {i} has unknown dtype flag {flag}")
        dtype = np.dtype(DTYPES[flag])
        n = int(np.prod(shape)) * dtype.itemsize
        arr = np.frombuffer(cur.bytes(n), dtype=dtype).reshape(shape)
        arrays.append(arr)
    (nnames,) = cur.take("<Q")
    if nnames not in (0, count):
        raise ParamsFormatError(f"{label}: {count} arrays but {nnames} names")
    names = []
    for _ in range(nnames):
        (length,) = cur.take("<Q")
        names.append(bytes(cur.bytes(length)).decode("utf-8"))
    if cur.pos != len(data):
        raise ParamsFormatError(f"{label}: {len(data) - cur.pos} trailing bytes after the "
                                "name table (corrupt or not a .params file)")
    if not names:
        names = [str(i) for i in range(count)]
    out = OrderedDict()
    for k, v in zip(names, arrays):
        if k in out:
            raise ParamsFormatError(f"{label}: duplicate array name {k!r}")
        out[k] = v
    return out


def write_params(path: str, arrays: "dict[str, np.ndarray]") -> None:
    """Write ``arrays`` in the V2 dense format MXNet's ``nd.save`` produces (atomic)."""
    chunks = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for arr in arrays.values():
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in DTYPE_FLAGS:
            raise ValueError(f"unsupported dtype {arr.dtype}")
        chunks.append(struct.pack("<IiI", ARRAY_MAGIC_V2, 0, arr.ndim))
        chunks.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
        chunks.append(struct.pack("<iii", 1, 0, DTYPE_FLAGS[arr.dtype]))
        chunks.append(arr.tobytes())
    chunks.append(struct.pack("<Q", len(arrays)))
    for k in arrays:
        b = k.encode("utf-8")
        chunks.append(struct.pack("<Q", len(b)) + b)
    atomic_write_bytes(path, b"".join(chunks))
