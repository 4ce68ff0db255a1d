"""Messages between the pipeline's processes on the wire: multipart [run token, payload, ...].

Every internal message opens with the run's token, a random secret the supervisor makes for each
run and hands its stages: a message without it (another program on the socket, a replay of another
run) is refused as malformed, so no peer can inject an end of stream, a frame or a status.

Frame messages are [token, header JSON, array bytes, array bytes, ...]. The header (pipeline/
messages.py: FrameHeader) carries the name, dtype and shape of every array part that follows, so a
receiver never trusts a part it cannot account for. Arrays travel without a copy (zero-copy send;
receivers get read-only views of the message buffers), so a sender must never write into an array
it has sent: every frame is a fresh array. Between processes, large arrays (camera frames) are placed
in shared memory by the sending outlet and the header says where (pipeline/shared_frames.py).
"""
from __future__ import annotations

import hmac
import math

import numpy as np

from pipeline.messages import (HEADER_VERSION, ArraySpec, DecodeError, EndOfStream, StageMessage, decode_header,
                               encode as encode_json)
from pipeline.shared_frames import Placed, RingError, RingReader, SlotReused, itemsize

DEFAULT_MAX_BYTES = 64 << 20   # a 4K 16-bit frame plus renders fits; anything larger is refused
ALLOWED_DTYPES = ("uint8", "uint16", "int32", "int64", "float32", "float64")
MAX_HEADER_BYTES = 1 << 20
MAX_CONTROL_BYTES = 1 << 20    # reports, results, status: small JSON
MAX_SHAPE_DIMS = 8


class BadMessage(ValueError):
    """A message that is not a well-formed frame message; the receiver drops and counts it."""


class StaleFrame(BadMessage):
    """A well-formed message whose frame's shared-memory slot holds another frame by now."""


def seal(payload: bytes, token: bytes = b"") -> list:
    """A control message (report, result, status) → [token, payload]."""
    return [token, payload]


def unseal(parts, token: bytes = b"", max_bytes: int = MAX_CONTROL_BYTES) -> bytes:
    """[token, payload] → payload; BadMessage for a wrong token, part count or size."""
    buffers = [_buffer(p) for p in parts]
    if len(buffers) != 2:
        raise BadMessage(f"expected [token, payload], got {len(buffers)} parts")
    _check_token(buffers[0], token)
    if len(buffers[1]) > max_bytes:
        raise BadMessage(f"message of {len(buffers[1])} bytes exceeds {max_bytes}")
    return bytes(buffers[1])


def _check_token(part, token: bytes):
    if not hmac.compare_digest(bytes(part), token):
        raise BadMessage("not from this run (wrong token)")


def encode(header: StageMessage, arrays: dict[str, np.ndarray | Placed] | None = None, token: bytes = b"") -> list:
    """Header + arrays → message parts for `send_multipart(parts, copy=False)`; an array already
    placed in shared memory (`Placed`) goes as its reference in the header, without a part."""
    arrays = arrays or {}
    parts, described = [], []
    for name, array in arrays.items():
        if isinstance(array, Placed):
            described.append(ArraySpec(name, array.dtype, list(array.shape), shm=array.ref))
            continue
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
    return [token, encode_json(header)] + parts


def decode(parts, max_bytes: int = DEFAULT_MAX_BYTES, token: bytes = b"",
           rings: RingReader | None = None) -> tuple[StageMessage, dict[str, np.ndarray]]:
    """Message parts (bytes or zmq.Frame) → (header, {name: read-only array}); BadMessage on anything
    off. Arrays in shared memory are read through `rings` (none: such a message is refused)."""
    if len(parts) < 2:
        raise BadMessage(f"a frame message has a token and a header, got {len(parts)} parts")
    _check_token(_buffer(parts[0]), token)
    buffers = [_buffer(p) for p in parts[1:]]
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
    inline = [spec for spec in header.arrays if spec.shm is None]
    if len(inline) != len(buffers) - 1:
        raise BadMessage(f"header describes {len(inline)} inline arrays but the message has "
                         f"{len(buffers) - 1} data parts")
    parts = iter(buffers[1:])
    arrays = {}
    for spec in header.arrays:
        if spec.shm is None:
            arrays[spec.name] = _array(spec, next(parts))
            continue
        nbytes = _checked_bytes(spec, max_bytes)
        if rings is None:
            raise BadMessage(f"array {spec.name!r} in shared memory, where none is shared")
        try:
            arrays[spec.name] = rings.view(spec.shm, spec.dtype, spec.shape, nbytes)
        except SlotReused as error:
            raise StaleFrame(f"array {spec.name!r}: {error}") from None
        except RingError as error:
            raise BadMessage(f"array {spec.name!r}: {error}") from None
    return header, arrays


def _buffer(part) -> memoryview:
    if hasattr(part, "buffer"):          # zmq.Frame received with copy=False
        return part.buffer
    view = memoryview(part)              # bytes, or an array not yet sent: its bytes, flat
    return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")


def _checked_bytes(spec: ArraySpec, max_bytes: int | None = None) -> int:
    """The bytes an array spec describes, once its dtype and shape are known to be sane."""
    if spec.dtype not in ALLOWED_DTYPES:
        raise BadMessage(f"array {spec.name!r}: dtype {spec.dtype!r} not allowed")
    if len(spec.shape) > MAX_SHAPE_DIMS or not all(d >= 0 for d in spec.shape):
        raise BadMessage(f"array {spec.name!r}: bad shape {spec.shape!r}")
    nbytes = math.prod(spec.shape) * itemsize(spec.dtype)   # Python ints: no overflow
    if max_bytes is not None and nbytes > max_bytes:
        raise BadMessage(f"array {spec.name!r}: {nbytes} bytes exceed the maximum of {max_bytes}")
    return nbytes


def _array(spec: ArraySpec, buffer: memoryview) -> np.ndarray:
    expected = _checked_bytes(spec)
    if expected != len(buffer):
        raise BadMessage(f"array {spec.name!r}: {spec.dtype}{spec.shape} needs {expected} bytes, "
                         f"part has {len(buffer)}")
    return np.frombuffer(buffer, dtype=spec.dtype).reshape(spec.shape)
