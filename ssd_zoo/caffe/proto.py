"""The protobuf subset Caffe SSD needs, without caffe or generated code.

* ``read_caffemodel(path)``: binary ``NetParameter`` -> ``{layer name: [float32 arrays]}``.
  Only what a converter needs is decoded: NetParameter.layer (field 100) / legacy
  ``layers`` (field 2); LayerParameter name=1, blobs=7 (V1LayerParameter name=4,
  blobs=6); BlobProto num/channels/height/width=1..4, data=5 (float), shape=7
  (BlobShape.dim=1, int64), double_data=8.  Everything else is skipped by wire type.
* ``write_caffemodel(path, layers)``: the inverse, for tests and exports.

Every malformed input raises ``CaffeFormatError`` naming the file, layer and field.
(The text format of .prototxt files is parsed in ``textformat.py``.)
"""
from __future__ import annotations

import os
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from ..atomic import atomic_write_bytes


class CaffeFormatError(ValueError):
    """A prototxt/caffemodel is malformed or disagrees with itself."""


# ----------------------------------------------------------------------------- wire format
_WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "length-delimited", 5: "fixed32"}


class _Reader:
    """Walks protobuf wire-format fields of ``buf[start:end]``; context names the place."""

    def __init__(self, buf: memoryview, source: str):
        self.buf, self.source = buf, source

    def fail(self, pos: int, context: str, why: str):
        raise CaffeFormatError(f"{self.source}: {why} at byte {pos} ({context}); the file "
                               f"is truncated or not a .caffemodel")

    def varint(self, pos: int, end: int, context: str) -> Tuple[int, int]:
        result = shift = 0
        while True:
            if pos >= end:
                self.fail(pos, context, "truncated varint")
            b = self.buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                self.fail(pos, context, "varint longer than 10 bytes")

    def fields(self, start: int, end: int, context: str) -> Iterator[Tuple[int, int, object]]:
        """Yield (field number, wire type, value); value is an int for varints, a
        (start, end) pair for length-delimited fields and raw bytes for fixed ones."""
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end, context)
            field, wire = key >> 3, key & 7
            if field == 0:
                self.fail(pos, context, "invalid field number 0")
            if wire == 0:
                val, pos = self.varint(pos, end, f"{context}, field {field}")
            elif wire == 2:
                size, pos = self.varint(pos, end, f"{context}, field {field}")
                if pos + size > end:
                    self.fail(pos, f"{context}, field {field}",
                              f"field of {size} bytes runs past the end ({end})")
                val, pos = (pos, pos + size), pos + size
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                if pos + width > end:
                    self.fail(pos, f"{context}, field {field}", "truncated fixed-width value")
                val, pos = bytes(self.buf[pos:pos + width]), pos + width
            else:
                self.fail(pos, f"{context}, field {field}", f"unsupported wire type {wire}")
            yield field, wire, val


def _packed(reader: _Reader, wire: int, val, dtype: str, context: str) -> np.ndarray:
    """Decode one occurrence of a repeated numeric field (packed or not)."""
    if wire == 2:
        start, end = val
        if dtype in ("<f4", "<f8"):
            item = np.dtype(dtype).itemsize
            if (end - start) % item:
                reader.fail(start, context, f"packed {dtype} data of {end - start} bytes")
            return np.frombuffer(reader.buf[start:end], dtype=dtype)
        out, pos = [], start  # packed varints (BlobShape.dim)
        while pos < end:
            v, pos = reader.varint(pos, end, context)
            out.append(v - (1 << 64) if v >= 1 << 63 else v)
        return np.asarray(out, dtype=np.int64)
    if dtype in ("<f4", "<f8"):
        if not isinstance(val, bytes):
            reader.fail(0, context, f"expected {dtype} data, got wire type {wire}")
        return np.frombuffer(val, dtype=dtype)
    return np.asarray([val - (1 << 64) if val >= 1 << 63 else val], dtype=np.int64)


def _blob(reader: _Reader, start: int, end: int, context: str) -> np.ndarray:
    legacy = {1: 1, 2: 1, 3: 1, 4: 1}
    has_legacy, dims, chunks, dchunks = False, None, [], []
    for field, wire, val in reader.fields(start, end, context):
        if field in legacy and wire == 0:
            legacy[field], has_legacy = int(val), True
        elif field == 5:
            chunks.append(_packed(reader, wire, val, "<f4", f"{context}, field 'data'"))
        elif field == 8:
            dchunks.append(_packed(reader, wire, val, "<f8", f"{context}, field 'double_data'"))
        elif field == 7 and wire == 2:
            dims = []
            for f2, w2, v2 in reader.fields(val[0], val[1], f"{context}, field 'shape'"):
                if f2 == 1:
                    dims.extend(_packed(reader, w2, v2, "int64",
                                        f"{context}, field 'shape.dim'").tolist())
    data = (np.concatenate(chunks) if chunks else np.concatenate(dchunks).astype(np.float32)
            if dchunks else np.zeros(0, np.float32))
    if dims is None:
        dims = [legacy[1], legacy[2], legacy[3], legacy[4]] if has_legacy else [data.size]
    count = int(np.prod(dims)) if dims else 1
    if count != data.size:
        raise CaffeFormatError(f"{reader.source}: {context}: shape {list(dims)} holds {count} "
                               f"values but field 'data' has {data.size}")
    return data.astype(np.float32, copy=True).reshape(dims)


def _layer_name(reader: _Reader, start: int, end: int, name_f: int) -> str:
    """Best-effort name of a (possibly cut) layer message, for error messages."""
    try:
        for f, w, v in reader.fields(start, end, ""):
            if f == name_f and w == 2:
                return bytes(reader.buf[v[0]:v[1]]).decode("utf-8", "replace")
    except CaffeFormatError:
        pass
    return "?"


def _top_fields(reader: _Reader, end: int):
    """Yield (field, 2, (start, end)) for the layer fields of NetParameter (100 and legacy
    2), skipping the others; a layer cut short by the end of the file is reported with
    its number and name."""
    pos, n = 0, 0
    while pos < end:
        key, pos = reader.varint(pos, end, "NetParameter")
        field, wire = key >> 3, key & 7
        if wire == 0:
            pos = reader.varint(pos, end, f"NetParameter, field {field}")[1]
            continue
        if wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                reader.fail(pos, f"NetParameter, field {field}", "truncated fixed value")
            continue
        if wire != 2:
            reader.fail(pos, f"NetParameter, field {field}", f"unsupported wire type {wire}")
        is_layer = field in (100, 2)
        n += is_layer
        size, pos = reader.varint(pos, end, f"NetParameter, field {field}")
        if pos + size > end:
            if is_layer:
                name = _layer_name(reader, pos, end, 1 if field == 100 else 4)
                raise CaffeFormatError(
                    f"{reader.source}: truncated: layer #{n} '{name}' (field "
                    f"'{'layer' if field == 100 else 'layers'}') needs {size} bytes from "
                    f"byte {pos} but the file ends at {end}; its field 'blobs' is cut")
            reader.fail(pos, f"NetParameter, field {field}", "field runs past the end")
        if is_layer:
            yield field, wire, (pos, pos + size)
        pos += size


def read_caffemodel(path: str) -> Dict[str, List[np.ndarray]]:
    """Blobs of every layer that has any: ``{layer name: [float32 array, ...]}`` in file
    order.  Reads both ``layer`` (field 100) and legacy V1 ``layers`` (field 2)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    reader = _Reader(memoryview(raw), path)
    out: Dict[str, List[np.ndarray]] = {}
    n_layers = 0
    for field, wire, val in _top_fields(reader, len(raw)):
        if field not in (100, 2) or wire != 2:
            continue
        n_layers += 1
        name_f, blob_f = (1, 7) if field == 100 else (4, 6)
        name, blobs = None, []
        context = f"layer #{n_layers}"
        for f2, w2, v2 in reader.fields(val[0], val[1], context):
            if f2 == name_f and w2 == 2:
                name = bytes(reader.buf[v2[0]:v2[1]]).decode("utf-8", "replace")
                context = f"layer #{n_layers} '{name}'"
            elif f2 == blob_f and w2 == 2:
                blobs.append(_blob(reader, v2[0], v2[1],
                                   f"{context}, field 'blobs' #{len(blobs)}"))
        if name is None:
            raise CaffeFormatError(f"{path}: {context} has no field 'name'")
        if blobs:
            out[name] = blobs
    if n_layers == 0:
        raise CaffeFormatError(f"{path}: no layers found (fields 'layer'=100 / 'layers'=2); "
                               "not a .caffemodel")
    return out


# ----------------------------------------------------------------------------- writer
def _varint_bytes(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(payload)) + payload


def encode_caffemodel(layers: Sequence[Tuple[str, str, Sequence[np.ndarray]]],
                      legacy: bool = False) -> bytes:
    """NetParameter bytes for ``[(name, type, [blobs])]``.  ``legacy`` writes V1
    ``layers`` entries with legacy num/channels/height/width blob dims."""
    parts = []
    for name, ltype, blobs in layers:
        body = bytearray()
        body += _field(4 if legacy else 1, name.encode())
        if not legacy:
            body += _field(2, ltype.encode())
        for arr in blobs:
            arr = np.asarray(arr, dtype=np.float32)
            if legacy:
                dims = [1] * (4 - arr.ndim) + list(arr.shape)
                blob = b"".join(_varint_bytes(i << 3) + _varint_bytes(d)
                                for i, d in enumerate(dims, 1))
            else:
                shape = b"".join(_varint_bytes(int(d)) for d in arr.shape)
                blob = _field(7, _field(1, shape))
            blob += _field(5, arr.astype("<f4").tobytes())
            body += _field(6 if legacy else 7, blob)
        parts.append(_field(2 if legacy else 100, bytes(body)))
    return b"".join(parts)


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ssd_zoo.atomic)."""
    atomic_write_bytes(path, data)


def write_caffemodel(path: str, layers, legacy: bool = False) -> None:
    """Write a .caffemodel holding ``[(name, type, [blobs])]`` (atomically)."""
    atomic_write(path, encode_caffemodel(layers, legacy))


__all__ = ["CaffeFormatError", "read_caffemodel", "encode_caffemodel", "write_caffemodel",
           "atomic_write"]
