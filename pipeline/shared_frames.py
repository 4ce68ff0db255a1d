"""Camera frames through shared memory, only their headers on the sockets (as openpilot's VisionIPC).

Sending a 640×480 frame through a ZeroMQ ipc socket costs its bytes twice (into the kernel's socket
buffer, out into the receiver's) plus the messaging; a slot in shared memory costs one copy. Every
array of at least MIN_BYTES that a stage sends leaves through its outlet's `Ring`: the bytes go into a
free slot of a file in the run folder (tmpfs where there is one: pipeline/rundirs.py), and the
message carries a `SlotRef` (ring name, slot, generation) in the array's place. The receiver's
`RingReader` maps the same file and hands the stage a read-only view of the slot, no copy; it gives
the slot back when the stage asks for its next message.

What keeps this lossless and crash-safe:
- A slot is reused only when its receiver gave it back, or (replay) once decide has published the
  frame it held, or when capture is about to send every unpublished frame again after a restart
  (pipeline/progress.py): a stage that died holding slots cannot keep them. Live: a slot not given back
  within STALE_S is taken back too (its receiver is presumed dead; a live frame is worth no more).
- Every slot carries a generation, written before its bytes: a receiver checks it when it maps the
  slot and again after the stage has used it (`intact`). A message whose slot was reused meanwhile is
  dropped, never published with another frame's pixels; in a replay its frame comes again by resend.
- A frame can also be made in its slot (`Ring.lease`: capture decodes the camera's or the file's next
  frame straight into shared memory, as VisionIPC's buffers): sending that array copies nothing. In a
  replay such a slot stays its frame's until decide has published it, whatever its receiver gave back,
  because capture keeps every unpublished frame to send again after a restart: a resend then sends the
  kept slot again under a new generation, still without a copy.
- A ring is named after its sender's pid: a restarted sender makes a new file, never rewrites one
  that a receiver still maps, and removes its dead predecessors' files. Names are checked against a
  pattern and opened inside the run folder only (no links): a message cannot point a stage at any
  other file.
"""
from __future__ import annotations

import functools
import math
import mmap
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from msgspec import Struct

from pipeline.rundirs import process_exists

MIN_BYTES = 128 << 10   # smaller arrays (renders, crops) travel inside the message: a slot buys nothing
SLOTS = 8
STALE_S = 1.0
PAGE = 4096
MAGIC = b"EXPRING1"
# File layout: MAGIC, slots (u64), slot_bytes (u64), then per slot 4 × int64 — generation (sender
# writes), released generation (receiver writes), frame id, time handed out (sender's monotonic ns)
# — padded to a page; then the slots, each slot_bytes long, page-aligned.
_FIELDS = 4
GEN, RELEASED, FRAME, HANDED = range(_FIELDS)
NAME = re.compile(r"ring-[a-z0-9.-]{1,80}")


class RingError(ValueError):
    """A SlotRef that cannot be honoured (unknown ring, bad slot, reused slot, too many bytes)."""


class NoRoom(OSError):
    """The run folder's file system cannot hold a ring (a container's small /dev/shm, say)."""


class SlotReused(RingError):
    """The slot holds another frame now: this message's frame was superseded, or will come again."""


class SlotRef(Struct, array_like=True, frozen=True):
    """Where an array's bytes lie: in `slot` of the ring file `ring`, written as generation `gen`."""

    ring: str
    slot: int
    gen: int


class _Lease(NamedTuple):
    """A slot handed out by `Ring.lease` and not sent yet, with the array made in it."""

    ring: str
    slot: int
    gen: int
    array: np.ndarray


@dataclass(frozen=True)
class Placed:
    """An array already in a ring: what the message says in its place."""

    ref: SlotRef
    dtype: str
    shape: tuple


@functools.cache
def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name   # numpy builds the name anew on every call: ~2 µs of a hop


@functools.cache
def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype named by a checked string (numpy's lookup costs ~0.15 µs a call)."""
    return np.dtype(dtype).itemsize


def _table_bytes(slots: int) -> int:
    return -(-(len(MAGIC) + 16 + slots * _FIELDS * 8) // PAGE) * PAGE


class _Mapped:
    """One ring file mapped: its slot table (int64, slots × 4, read and written field by field) and its
    slots. The table is a memoryview, not an array: a hop reads and writes a few of its fields, and a
    memoryview field costs a third of a numpy scalar's (19 against 56 ns warm here; more with the caches
    cold after a frame was written). Receivers read the slots through a read-only view of the file."""

    def __init__(self, fd: int, size: int):
        self.map = mmap.mmap(fd, size)
        if self.map[:len(MAGIC)] != MAGIC:
            self.map.close()
            raise RingError("not a ring file")
        self.slots, self.slot_bytes = (int(v) for v in np.frombuffer(self.map, np.uint64, 2, len(MAGIC)))
        if not (0 < self.slots <= 64 and self.slot_bytes % PAGE == 0
                and size >= _table_bytes(self.slots) + self.slots * self.slot_bytes):
            self.map.close()
            raise RingError("ring file of the wrong size")
        start = len(MAGIC) + 16
        self.table = memoryview(self.map)[start:start + self.slots * _FIELDS * 8].cast("q")
        self.start = _table_bytes(self.slots)   # where the first slot starts, in the file
        self.data = np.frombuffer(self.map, np.uint8, self.slots * self.slot_bytes, self.start)
        self.readonly = memoryview(self.map).toreadonly()
        self.address = self.data.__array_interface__["data"][0]   # where the first slot starts, in memory

    def read(self, k: int, field: int) -> int:
        return self.table[k * _FIELDS + field]

    def write(self, k: int, field: int, value: int):
        self.table[k * _FIELDS + field] = value

    def slot(self, k: int) -> np.ndarray:
        return self.data[k * self.slot_bytes:(k + 1) * self.slot_bytes]

    def view(self, k: int, dtype: str, shape: list[int], nbytes: int) -> np.ndarray:
        """The first `nbytes` of slot k as a read-only array (one numpy call: no slicing, no flags)."""
        count = nbytes // itemsize(dtype)
        return np.frombuffer(self.readonly, dtype, count, self.start + k * self.slot_bytes).reshape(shape)

    def close(self):
        self.table = self.data = self.readonly = None
        try:
            self.map.close()
        except BufferError:   # a view is still alive somewhere: the mapping goes with it
            pass


class Ring:
    """The sending side: one per outlet (one receiver). `put(array, frame_id)` → Placed, or None when
    no slot is free (replay: wait and try again; live: drop the frame)."""

    def __init__(self, folder: str, sender: str, receiver: str, live: bool, slots: int = SLOTS):
        self.folder, self.live, self.slots = Path(folder), live, slots
        self.prefix = f"ring-{sender}-{receiver}-{os.getpid()}".lower()
        self._remove_dead_senders_rings(f"ring-{sender}-{receiver}-".lower())
        self.rings: dict[str, _Mapped] = {}   # every size made, the newest last; unlinked at close
        self.next_gen = 1
        self.published = -1
        self.kept: set[tuple[str, int]] = set()   # replay: leased slots, their frame's until published
        self.leased: _Lease | None = None   # the last lease, until sent

    def _remove_dead_senders_rings(self, stem: str):
        """A restarted sender: the files of its dead predecessors go (a receiver still mapping one
        keeps its pages until it lets go), so crashes do not fill /dev/shm."""
        for path in self.folder.glob(stem + "*"):
            pid = path.name[len(stem):].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
                path.unlink(missing_ok=True)

    @property
    def name(self) -> str:
        return next(reversed(self.rings), "")

    @property
    def current(self) -> _Mapped | None:
        return self.rings[self.name] if self.rings else None

    def _ring_for(self, nbytes: int) -> _Mapped:
        if self.current is not None and nbytes <= self.current.slot_bytes:
            return self.current
        slot_bytes = -(-nbytes // PAGE) * PAGE
        name = f"{self.prefix}-{slot_bytes}"
        path = self.folder / name
        size = _table_bytes(self.slots) + self.slots * slot_bytes
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            # Every page reserved now: a write into a mapped page that a full tmpfs cannot back
            # kills the process (SIGBUS), where this says so. (No posix_fallocate: macOS.)
            os.posix_fallocate(fd, 0, size) if hasattr(os, "posix_fallocate") else os.ftruncate(fd, size)
        except OSError as error:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise NoRoom(f"no room for a {size >> 20} MiB frame ring in {self.folder} ({error.strerror})") from None
        try:
            os.pwrite(fd, MAGIC + np.array([self.slots, slot_bytes], np.uint64).tobytes(), 0)
            mapped = _Mapped(fd, size)
        finally:
            os.close(fd)
        self.rings[name] = mapped
        return mapped

    def _free_slot(self, ring: _Mapped) -> int | None:
        now, name = time.monotonic_ns(), self.name
        for k in range(ring.slots):
            if (name, k) in self.kept:   # a leased frame capture keeps: free once published
                continue
            if (ring.read(k, GEN) == ring.read(k, RELEASED) or ring.read(k, FRAME) <= self.published
                    or (self.live and now - ring.read(k, HANDED) > STALE_S * 1e9)):
                return k
        return None

    def _claim(self, ring: _Mapped, k: int, frame_id: int) -> int:
        """Slot k is frame_id's under a new generation, written first: a receiver still reading the
        old bytes sees the change (intact), and a message naming the old one is refused."""
        gen = self.next_gen
        self.next_gen += 1
        ring.write(k, GEN, gen)
        ring.write(k, RELEASED, 0)
        ring.write(k, FRAME, frame_id)
        ring.write(k, HANDED, time.monotonic_ns())
        return gen

    def lease(self, shape: tuple, dtype, frame_id: int) -> np.ndarray | None:
        """A free slot as a writable array, for frame `frame_id` to be made in: `put` of this very
        array copies nothing. In a replay the slot stays the frame's until it is published, and at
        most half the slots are kept so: the others come free as their receivers give them back, as
        before, so a frame that must wait for a slot never waits on a publish that waits on it (a
        resend after a restart). The lease before, if it was never sent, is given back. None when no
        slot can be leased (the frame is made in ordinary memory and `put` copies it, as always)."""
        self._give_back_lease()
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes == 0 or len(self.kept) >= self.slots // 2:
            return None
        ring = self._ring_for(nbytes)
        k = self._free_slot(ring)
        if k is None:
            return None
        gen = self._claim(ring, k, frame_id)
        array = ring.slot(k)[:nbytes].view(dtype).reshape(shape)
        self.leased = _Lease(self.name, k, gen, array)
        if not self.live:
            self.kept.add((self.name, k))
        return array

    def _give_back_lease(self):
        if self.leased is not None:
            name, k, gen, _ = self.leased
            self.leased = None
            self.kept.discard((name, k))
            ring = self.rings.get(name)
            if ring is not None and ring.read(k, GEN) == gen:
                ring.write(k, RELEASED, gen)   # never sent: nobody holds it

    def _slot_of(self, array: np.ndarray) -> tuple[str, int] | None:
        """(ring, slot) when `array` is contiguous and starts a slot of one of this ring's files: a
        leased frame, or a kept one sent again."""
        if not array.flags.c_contiguous:
            return None
        address = array.__array_interface__["data"][0]
        for name, ring in self.rings.items():
            offset = address - ring.address
            if 0 <= offset < ring.slots * ring.slot_bytes:
                k, within = divmod(offset, ring.slot_bytes)
                return (name, k) if within == 0 and array.nbytes <= ring.slot_bytes else None
        return None

    def put(self, array: np.ndarray, frame_id: int) -> Placed | None:
        if self.leased is not None and array is self.leased.array:   # the lease sent: no search
            in_slot = self.leased.ring, self.leased.slot
        else:
            in_slot = self._slot_of(array) if self.rings else None
        if in_slot is not None:   # made in its slot (or kept there): a new generation, no copy
            name, k = in_slot
            if self.leased is not None and (self.leased.ring, self.leased.slot) == in_slot:
                self.leased = None
            gen = self._claim(self.rings[name], k, frame_id)
            return Placed(SlotRef(name, k, gen), _dtype_name(array.dtype), tuple(array.shape))
        array = np.ascontiguousarray(array)
        ring = self._ring_for(array.nbytes)
        k = self._free_slot(ring)
        if k is None:
            return None
        gen = self._claim(ring, k, frame_id)
        ring.slot(k)[:array.nbytes] = array.reshape(-1).view(np.uint8)
        return Placed(SlotRef(self.name, k, gen), _dtype_name(array.dtype), tuple(array.shape))

    def cancel(self, arrays: dict):
        """The message holding these placed arrays was not sent: their slots are free again."""
        for array in arrays.values():
            if isinstance(array, Placed) and array.ref.ring in self.rings:
                self.rings[array.ref.ring].write(array.ref.slot, RELEASED, array.ref.gen)

    def reclaim(self, published: int | None = None):
        """Replay: slots of frames up to `published` are free; None: every slot is (all that was
        unpublished is about to be sent again, so no message in flight will be honoured)."""
        if published is not None:
            self.published = max(self.published, published)
            if self.kept:   # (called after every frame capture sends: nothing to do unless some are kept)
                self.kept = {(name, k) for name, k in self.kept
                             if name in self.rings and self.rings[name].read(k, FRAME) > self.published}
            return
        for ring in self.rings.values():
            for k in range(ring.slots):   # no message's generation: all refused
                ring.write(k, GEN, -1 - k)
                ring.write(k, RELEASED, -1 - k)

    def close(self):
        for name, ring in self.rings.items():
            ring.close()
            (self.folder / name).unlink(missing_ok=True)
        self.rings, self.kept, self.leased = {}, set(), None


class RingReader:
    """The receiving side: maps the rings its senders name (inside `folder` only) and hands out
    read-only views of their slots; `release()` gives back every slot handed out since the last call."""

    MAX_OPEN = 16

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.open: dict[str, _Mapped] = {}
        self.held: list[tuple[_Mapped, SlotRef]] = []

    def _ring(self, name: str) -> _Mapped:
        ring = self.open.get(name)
        if ring is not None:
            return ring
        if not NAME.fullmatch(name):
            raise RingError(f"bad ring name {name[:40]!r}")
        try:
            fd = os.open(self.folder / name, os.O_RDWR | os.O_NOFOLLOW)
        except OSError as error:
            raise RingError(f"ring {name!r}: {error.strerror}") from None
        try:
            ring = _Mapped(fd, os.fstat(fd).st_size)
        except (ValueError, OSError) as error:
            raise RingError(f"ring {name!r}: {error}") from None
        finally:
            os.close(fd)
        if len(self.open) >= self.MAX_OPEN:   # senders restarted or frames grew: forget the oldest
            oldest = next(iter(self.open))
            if all(held is not self.open[oldest] for held, _ in self.held):
                self.open.pop(oldest).close()
        self.open[name] = ring
        return ring

    def view(self, ref: SlotRef, dtype: str, shape: list[int], nbytes: int) -> np.ndarray:
        ring = self._ring(ref.ring)
        if not 0 <= ref.slot < ring.slots:
            raise RingError(f"ring {ref.ring!r} has no slot {ref.slot}")
        if nbytes > ring.slot_bytes:
            raise RingError(f"{nbytes} bytes do not fit a slot of {ring.slot_bytes}")
        if ring.read(ref.slot, GEN) != ref.gen:
            raise SlotReused(f"slot {ref.slot} of {ref.ring!r} was reused (frame superseded or resent)")
        self.held.append((ring, ref))
        return ring.view(ref.slot, dtype, shape, nbytes)

    def intact(self) -> bool:
        """Whether every slot handed out since the last release still holds what it did."""
        return all(ring.read(ref.slot, GEN) == ref.gen for ring, ref in self.held)

    def release(self, start: int = 0, stop: int | None = None):
        """Give back the slots handed out (held[start:stop], default all)."""
        for ring, ref in self.held[start:stop]:
            if ring.table is not None and ring.read(ref.slot, GEN) == ref.gen:
                ring.write(ref.slot, RELEASED, ref.gen)
        del self.held[start:stop]

    def close(self):
        self.release()
        for ring in self.open.values():
            ring.close()
        self.open.clear()
