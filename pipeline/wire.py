"""Frame messages on the wire: multipart [header JSON, array bytes, array bytes, ...].

The header (pipeline/messages.py: FrameHeader) carries the name, dtype and shape of every array part
that follows, so a receiver never trusts a part it cannot account for. Arrays travel without a copy
(zero-copy send; receivers get read-only views of the message buffers), so a sender must never
write into an array it has sent: every frame is a fresh array.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.messages import (HEADER_VERSION, ArraySpec, DecodeError, EndOfStream, StageMessage, decode_header,
                               encode as encode_json)

DEFAULT_MAX_BYTES = 64 << 20   # a 4K 16-bit frame plus renders fits; anything larger is refused
ALLOWED_DTYPES = ("uint8", "uint16", "int32", "int64", "float32", "float64")
MAX_HEADER_BYTES = 1 << 20


class BadMessage(ValueError):
    """A message that is not a well-formed frame message; the receiver drops and counts it."""


def encode(header: StageMessage, arrays: dict[str, np.ndarray] | None = None) -> list:
    """Header + arrays → message parts for `send_multipart(parts, copy=False)`."""
    arrays = arrays or {}
    parts, described = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r}: dtype {array.dtype.name} cannot travel; allowed {ALLOWED_DTYPES}")
        described.append(ArraySpec(name, array.dtype.name, list(array.shape)))
        parts.append(array)
    if isinstance(header, EndOfStream):
        if parts:
            raise ValueError("an end of stream carries no arrays")
    else:
        header.arrays = described
    return [encode_json(header)] + parts


def decode(parts, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[StageMessage, dict[str, np.ndarray]]:
    """Message parts (bytes or zmq.Frame) → (header, {name: read-only array}); BadMessage on anything off."""
    if not parts:
        raise BadMessage("empty message")
    buffers = [_buffer(p) for p in parts]
    total = sum(len(b) for b in buffers)
    if total > max_bytes:
        raise BadMessage(f"message of {total} bytes exceeds the maximum of {max_bytes}")
    if len(buffers[0]) > MAX_HEADER_BYTES:
        raise BadMessage(f"header of {len(buffers[0])} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = decode_header(buffers[0])
    except DecodeError as error:
        raise BadMessage(f"bad header: {error}") from None
    if header.v != HEADER_VERSION:
        raise BadMessage(f"header version expected {HEADER_VERSION}, got {header.v!r}")
    if isinstance(header, EndOfStream):
        if len(buffers) > 1:
            raise BadMessage(f"an end of stream with {len(buffers) - 1} data parts")
        return header, {}
    if len(header.arrays) != len(buffers) - 1:
        raise BadMessage(f"header describes {len(header.arrays)} arrays but the message has "
                         f"{len(buffers) - 1} data parts")
    return header, {spec.name: _array(spec, buffer) for spec, buffer in zip(header.arrays, buffers[1:])}


def _buffer(part) -> memoryview:
    if hasattr(part, "buffer"):          # zmq.Frame received with copy=False
        return part.buffer
    return memoryview(part)


def _array(spec: ArraySpec, buffer: memoryview) -> np.ndarray:
    if spec.dtype not in ALLOWED_DTYPES:
        raise BadMessage(f"array {spec.name!r}: dtype {spec.dtype!r} not allowed")
    if not all(d >= 0 for d in spec.shape):
        raise BadMessage(f"array {spec.name!r}: bad shape {spec.shape!r}")
    expected = math.prod(spec.shape) * np.dtype(spec.dtype).itemsize   # Python ints: no overflow
    if expected != len(buffer):
        raise BadMessage(f"array {spec.name!r}: {spec.dtype}{spec.shape} needs {expected} bytes, "
                         f"part has {len(buffer)}")
    return np.frombuffer(buffer, dtype=spec.dtype).reshape(spec.shape)
