"""Frame messages between stages: multipart [header JSON, array bytes, array bytes, ...].

The header is versioned and self-describing: it carries the frame's identity and timing (frame_id,
source, monotonic capture time, each stage's [start, end] times, valid) and the name, dtype and
shape of every array part that follows, so a receiver never trusts a part it cannot account for.
Arrays travel without a copy (zero-copy send; receivers get read-only views of the message
buffers), so a sender must never write into an array it has sent: every frame is a fresh array.
"""
from __future__ import annotations

import json

import numpy as np

HEADER_VERSION = 1
DEFAULT_MAX_BYTES = 64 << 20   # a 4K 16-bit frame plus renders fits; anything larger is refused
ALLOWED_DTYPES = ("uint8", "uint16", "int32", "int64", "float32", "float64")
MAX_HEADER_BYTES = 1 << 20


class BadMessage(ValueError):
    """A message that is not a well-formed frame message; the receiver drops and counts it."""


def new_header(frame_id: int, source: str, t_capture_ns: int, **extra) -> dict:
    header = {"v": HEADER_VERSION, "frame_id": int(frame_id), "source": str(source),
              "t_capture_ns": int(t_capture_ns), "timing": {}, "valid": True}
    header.update(extra)
    return header


def end_of_stream(source: str, frames: int, reason: str = "end of source") -> dict:
    """The control header that tells every stage the source is finished (replay), then they exit."""
    return {"v": HEADER_VERSION, "eos": True, "source": str(source), "frames": int(frames), "reason": reason}


def encode(header: dict, arrays: dict[str, np.ndarray] | None = None) -> list:
    """Header + arrays → message parts for `send_multipart(parts, copy=False)`."""
    arrays = arrays or {}
    parts, described = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r}: dtype {array.dtype.name} cannot travel; allowed {ALLOWED_DTYPES}")
        described.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)})
        parts.append(array)
    header = dict(header, arrays=described)
    return [json.dumps(header, separators=(",", ":")).encode()] + parts


def decode(parts, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[dict, dict[str, np.ndarray]]:
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
        header = json.loads(bytes(buffers[0]))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadMessage(f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise BadMessage(f"header must be a JSON object, got {type(header).__name__}")
    if header.get("v") != HEADER_VERSION:
        raise BadMessage(f"header version expected {HEADER_VERSION}, got {header.get('v')!r}")
    if header.get("eos"):
        return header, {}
    for key, kind in (("frame_id", int), ("t_capture_ns", int), ("source", str), ("timing", dict)):
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            raise BadMessage(f"header field {key!r} expected {kind.__name__}, got {header.get(key)!r}")
    described = header.get("arrays", [])
    if not isinstance(described, list) or len(described) != len(buffers) - 1:
        raise BadMessage(f"header describes {len(described) if isinstance(described, list) else '?'} "
                         f"arrays but the message has {len(buffers) - 1} data parts")
    arrays = {}
    for spec, buffer in zip(described, buffers[1:]):
        arrays[_name(spec)] = _array(spec, buffer)
    return header, arrays


def _buffer(part) -> memoryview:
    if hasattr(part, "buffer"):          # zmq.Frame received with copy=False
        return part.buffer
    return memoryview(part)


def _name(spec) -> str:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BadMessage(f"array description must have a name, got {spec!r}")
    return spec["name"]


def _array(spec: dict, buffer: memoryview) -> np.ndarray:
    dtype, shape = spec.get("dtype"), spec.get("shape")
    if dtype not in ALLOWED_DTYPES:
        raise BadMessage(f"array {spec['name']!r}: dtype {dtype!r} not allowed")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadMessage(f"array {spec['name']!r}: bad shape {shape!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if expected != len(buffer):
        raise BadMessage(f"array {spec['name']!r}: {dtype}{shape} needs {expected} bytes, part has {len(buffer)}")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def stamp(header: dict, stage: str, t_start_ns: int, t_end_ns: int) -> dict:
    """Record one stage's [start, end] monotonic times in the header."""
    header["timing"][stage] = [int(t_start_ns), int(t_end_ns)]
    return header
