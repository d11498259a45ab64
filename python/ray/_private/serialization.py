"""How Python values become object bytes and back (ARCHITECTURE §13).

An object is one contiguous byte string, laid out so that large buffers (numpy arrays and
anything else pickle protocol 5 hands out of band) are read in place, zero-copy, from the
node's shared memory:

    offset 0   b"RC", kind (1 byte: 0 value, 1 raised error), 1 reserved byte,
               nbufs (u32), pickle length (u64)
    offset 16  nbufs x (offset u64, length u64), each buffer's place in the object
    then       the pickle (cloudpickle, protocol 5)
    then       each out-of-band buffer, 64-byte aligned

`serialize` returns the parts (header, pickle, padding and buffers) that the core copies
once into the object; `deserialize` builds the value over a read-only view of it, so an
array read back is a read-only view on the object, which stays pinned while it lives.
"""

import pickle
import struct

import cloudpickle

_HEADER = struct.Struct("<2sBBIQ")
_ENTRY = struct.Struct("<QQ")
_MAGIC = b"RC"
_ALIGN = 64
# Buffers smaller than this stay inside the pickle: a separate part costs more than it saves.
_OUT_OF_BAND_MIN = 4096

KIND_VALUE = 0
KIND_ERROR = 1

_PADDING = bytes(_ALIGN)


def serialize(value, kind=KIND_VALUE):
    """Returns (parts, total size) of value's object bytes."""
    buffers = []

    def keep_out_of_band(buf):
        raw = buf.raw()
        if raw.nbytes < _OUT_OF_BAND_MIN:
            return True  # in band
        buffers.append(raw)
        return False

    data = cloudpickle.dumps(value, protocol=5, buffer_callback=keep_out_of_band)
    if not buffers:
        header = _HEADER.pack(_MAGIC, kind, 0, 0, len(data))
        return [header, data], len(header) + len(data)
    table_end = _HEADER.size + _ENTRY.size * len(buffers)
    at = table_end + len(data)
    entries = []
    layout = []
    for raw in buffers:
        pad = -at % _ALIGN
        at += pad
        entries.append(_ENTRY.pack(at, raw.nbytes))
        layout.append((pad, raw))
        at += raw.nbytes
    parts = [_HEADER.pack(_MAGIC, kind, 0, len(buffers), len(data)), b"".join(entries), data]
    for pad, raw in layout:
        if pad:
            parts.append(_PADDING[:pad])
        parts.append(raw)
    return parts, at


def deserialize(buffer):
    """Returns (kind, value) from an object's bytes (any buffer: kept alive by the views)."""
    view = memoryview(buffer)
    if view.ndim != 1 or view.format not in ("B", "b", "c"):
        view = view.cast("B")
    if len(view) < _HEADER.size:
        raise ValueError("this object was not written by rayc's Python serializer (%d bytes)" % len(view))
    magic, kind, _, nbufs, plen = _HEADER.unpack_from(view, 0)
    if magic != _MAGIC:
        raise ValueError("this object was not written by rayc's Python serializer (it may come from a C task)")
    start = _HEADER.size + _ENTRY.size * nbufs
    bufs = []
    for i in range(nbufs):
        off, length = _ENTRY.unpack_from(view, _HEADER.size + _ENTRY.size * i)
        bufs.append(view[off:off + length])
    payload = view[start:start + plen]
    return kind, pickle.loads(payload, buffers=bufs)


def dumps_value(value):
    """One bytes object (for small values passed inline)."""
    parts, _ = serialize(value)
    return b"".join(parts)
