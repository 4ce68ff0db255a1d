"""How far a replay has got, kept where a crash cannot take it: two tiny files in the run folder.

    published   the id of the last frame decide published (decide writes it after each frame)
    resends     how many times the supervisor asked capture to send the unpublished frames again
                (after restarting a stage that may have held frames when it died)

Capture keeps every frame it sent until `published` passes it, and sends them again when `resends`
grows; a restarted decide takes up from `published`; a restarted capture reads on from there. So a
replay publishes every frame once, in order, through any stage's crash or hang. The files are read
and written with pread/pwrite of 8 bytes: no locking is needed for a single writer of an aligned word.

In --single-process mode (threads, no run folder) the progress lives in memory and nothing is
resent: threads are not killed one by one.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

_WORD = struct.Struct("<q")


class Counter:
    """One int64 in a file (or in memory when there is no run folder)."""

    def __init__(self, run_dir, name: str, initial: int):
        self.value = initial
        self.fd = None
        if run_dir is not None:
            path = Path(run_dir) / name
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self.fd).st_size < _WORD.size:
                os.pwrite(self.fd, _WORD.pack(initial), 0)

    def read(self) -> int:
        if self.fd is not None:
            self.value = _WORD.unpack(os.pread(self.fd, _WORD.size, 0))[0]
        return self.value

    def write(self, value: int) -> None:
        self.value = int(value)
        if self.fd is not None:
            os.pwrite(self.fd, _WORD.pack(self.value), 0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def published(run_dir) -> Counter:
    """The id of the last published frame (-1: none yet)."""
    return Counter(run_dir, "published", -1)


def resends(run_dir) -> Counter:
    """How many resends the supervisor has asked for."""
    return Counter(run_dir, "resends", 0)
