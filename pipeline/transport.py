"""ZeroMQ sockets between stages, in the two modes a run can be in.

live:   latest frame wins. Small high-water marks, non-blocking sends (a full queue drops the frame,
        counted), and a receiver that drains its queue and keeps only the newest frame (the rest
        counted as drops). CONFLATE would do this but does not work with multipart messages.
replay: lossless. Blocking sends give back-pressure; PUSH/PULL over one pipe keeps order.

Between processes, every array of at least shared_frames.MIN_BYTES (camera frames) goes through a
shared-memory ring of the sending outlet, only its header on the socket (pipeline/shared_frames.py);
an inlet hands out views of those slots and gives them back when asked for the next message.

Every receive and send waits in short slices so a stage notices a stop request within ~0.1 s.
Each process (or the one process, in --single-process mode) makes its own zmq.Context after the
fork; sockets are never shared between threads.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import zmq

from pipeline import wire
from pipeline.messages import Counters, EndOfStream, StageMessage
from pipeline.shared_frames import MIN_BYTES, NoRoom, Ring, RingReader

LIVE, REPLAY = "live", "replay"
SLICE_MS = 100
HWM = {LIVE: 1, REPLAY: 4}


def endpoint(run_dir: str | None, name: str) -> str:
    """ipc socket in the run's folder for processes; inproc when everything shares one context."""
    return f"inproc://exprada-{name}" if run_dir is None else f"ipc://{run_dir}/{name}.sock"


def open_inlet(ctx: zmq.Context, run_dir: str | None, name: str, config, counters: Counters) -> Inlet:
    """A worker's input socket `name`; between processes it reads frames from shared memory too."""
    rings = RingReader(run_dir) if run_dir is not None else None
    return Inlet(ctx, endpoint(run_dir, name), config.mode, counters, config.max_bytes, token=config.token,
                 rings=rings)


def open_outlet(ctx: zmq.Context, run_dir: str | None, sender: str, address: str, config, counters: Counters) -> Outlet:
    """A worker's output to the input `address`; between processes large arrays go by shared memory."""
    ring = Ring(run_dir, sender, address, live=config.mode == LIVE) if run_dir is not None else None
    return Outlet(ctx, endpoint(run_dir, address), config.mode, counters, config.token, ring=ring)


def configure(sock: zmq.Socket, hwm: int, linger_ms: int = 0) -> zmq.Socket:
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.LINGER, linger_ms)
    return sock


class Inlet:
    """A stage's input: PULL, bound at its own endpoint so a restarted stage takes up the same address."""

    def __init__(self, ctx: zmq.Context, address: str, mode: str, counters: Counters,
                 max_bytes: int = wire.DEFAULT_MAX_BYTES, bind: bool = True, token: bytes = b"",
                 rings: RingReader | None = None):
        self.mode, self.counters, self.max_bytes, self.token = mode, counters, max_bytes, token
        self.rings = rings
        self.pending = None
        self.wait_ms = None                # the socket's RCVTIMEO, set when a wait needs another
        self.sock = configure(ctx.socket(zmq.PULL), HWM[mode])
        # ZeroMQ refuses any part larger than this before reading it into memory (the peer is
        # disconnected); wire.decode then bounds the whole message.
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        self.sock.bind(address) if bind else self.sock.connect(address)

    def receive(self, timeout_ms: int = SLICE_MS):
        """(header, arrays) of the next frame (newest, in live mode), or None when no well-formed
        message came within the timeout (malformed ones are counted and skipped). The arrays of the
        message before are given back to their senders now: a stage uses them until it asks again."""
        self._release()
        if self.pending is not None:       # an end of stream that arrived behind a live frame
            message, self.pending = self.pending, None
            return message
        deadline = time.monotonic() + timeout_ms / 1000
        wait_ms = timeout_ms
        while (message := self._drain(wait_ms)) is None:
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                return None
        return message

    def _recv(self, wait_ms: int):
        """The next message's parts, waiting up to `wait_ms` (0: only one already queued), or None.
        Why not poll, then receive: a receive that blocks inside ZeroMQ (RCVTIMEO) wakes sooner, and
        asking EVENTS costs less than the exception a receive with nothing queued raises. The token
        and header are small: copied (cheaper than a zmq.Frame); array parts are not."""
        if wait_ms <= 0:
            if not self.sock.get(zmq.EVENTS) & zmq.POLLIN:
                return None
        elif wait_ms != self.wait_ms:
            self.sock.setsockopt(zmq.RCVTIMEO, wait_ms)
            self.wait_ms = wait_ms
        try:
            parts = [self.sock.recv(zmq.NOBLOCK if wait_ms <= 0 else 0)]
        except zmq.Again:
            return None
        if self.sock.get(zmq.RCVMORE):
            parts.append(self.sock.recv())   # a multipart message arrives whole: no waiting from here
            while self.sock.get(zmq.RCVMORE):
                parts.append(self.sock.recv(copy=False))
        return parts

    def _drain(self, wait_ms: int = 0):
        """The next message (replay) or the newest queued (live), waiting up to `wait_ms` for the first."""
        latest, latest_mark = None, 0
        while (parts := self._recv(wait_ms)) is not None:
            wait_ms = 0
            mark = self._held()
            try:
                message = wire.decode(parts, self.max_bytes, self.token, self.rings)
            except wire.StaleFrame:
                self._release(mark)
                self.counters.stale += 1
                self.counters.drops += self.mode == LIVE   # replay: the resend brings the frame again
                continue
            except wire.BadMessage:
                self._release(mark)
                self.counters.malformed += 1
                continue
            end = isinstance(message[0], EndOfStream)
            if end and latest is not None:
                self.pending = message     # the newest frame still goes first
                break
            if self.mode == REPLAY or end:
                return self._count(message)
            if latest is not None:
                self.counters.drops += 1   # superseded by a newer frame
                self.counters.superseded += 1
                self._release(latest_mark, mark)
            latest, latest_mark = message, mark
        return self._count(latest) if latest is not None else None

    def _held(self) -> int:
        return len(self.rings.held) if self.rings else 0

    def _release(self, start: int = 0, stop: int | None = None):
        if self.rings:
            self.rings.release(start, stop)

    def intact(self) -> bool:
        """Whether the arrays of the last message still hold its frame (shared memory is taken back
        from a stage that keeps a live frame too long, or when a replay resends after a restart)."""
        return self.rings.intact() if self.rings else True

    def _count(self, message):
        if not isinstance(message[0], EndOfStream):
            self.counters.frames_in += 1
        return message

    def close(self):
        self.sock.close(0)
        if self.rings:
            self.rings.close()


class Outlet:
    """A stage's output: PUSH, connected to the next stage's endpoint (it reconnects after a restart);
    with a `ring`, large arrays go through shared memory."""

    def __init__(self, ctx: zmq.Context, address: str, mode: str, counters: Counters, token: bytes = b"",
                 ring: Ring | None = None):
        self.mode, self.counters, self.token, self.ring = mode, counters, token, ring
        self.inline = ring is None   # also once the ring's file system has had no room
        self.sock = configure(ctx.socket(zmq.PUSH), HWM[mode])
        self.sock.connect(address)

    def _place(self, header: StageMessage, arrays, should_stop):
        """Large arrays into the ring; replay waits for a free slot, live gives up (None)."""
        if self.inline or not arrays or all(a.nbytes < MIN_BYTES for a in arrays.values()):
            return arrays or {}
        placed = {}
        for name, array in arrays.items():
            if array.nbytes < MIN_BYTES:
                placed[name] = array
                continue
            try:
                slot = self.ring.put(array, header.frame_id)
            except NoRoom as error:   # frames go inside the messages from now on: slower, never lost
                print(f"exprada pipeline: {error}; frames travel inside the messages instead (a container "
                      f"needs more shared memory: docker run --shm-size)", file=sys.stderr, flush=True)
                self._unplace(placed)
                self.inline = True
                return arrays
            while slot is None:
                if self.mode == LIVE or should_stop():
                    self._unplace(placed)
                    return None
                time.sleep(0.001)   # replay: the next stage gives a slot back as it takes a frame
                slot = self.ring.put(array, header.frame_id)
            placed[name] = slot
        return placed

    def lease(self, frame_id: int, shape: tuple, dtype) -> np.ndarray | None:
        """Shared memory for frame `frame_id` to be made in, sent then without a copy
        (shared_frames.Ring.lease); None where this outlet sends frames inside the messages, for a
        small array, or when no slot is free now."""
        if self.inline or math.prod(shape) * np.dtype(dtype).itemsize < MIN_BYTES:
            return None
        try:
            return self.ring.lease(shape, dtype, frame_id)
        except NoRoom:   # said, and frames sent inline, when the frame is sent (_place)
            return None

    def reclaim(self, published: int | None = None):
        """Replay: see shared_frames.Ring.reclaim."""
        if self.ring:
            self.ring.reclaim(published)

    def _unplace(self, arrays):
        if self.ring and arrays:
            self.ring.cancel(arrays)

    def send(self, header: StageMessage, arrays=None, should_stop=lambda: False) -> bool:
        """Send a frame; live: drop it (counted) if the next stage is busy; replay: wait for room."""
        end = isinstance(header, EndOfStream)
        if not end:
            arrays = self._place(header, arrays, should_stop)
            if arrays is None:
                if self.mode == LIVE:
                    self.counters.drops += 1
                return False
        parts = wire.encode(header, arrays, self.token)
        if self.mode == LIVE and not end:
            try:
                self.sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self._unplace(arrays)
                self.counters.drops += 1
                return False
        elif not send_waiting(self.sock, parts, should_stop):
            self._unplace(arrays)
            return False
        if not end:
            self.counters.frames_out += 1
            self.counters.last_frame_id = header.frame_id
        return True

    def offer(self, header: StageMessage, arrays=None) -> bool:
        """Live: send if the next stage has room now; False (nothing counted) if not."""
        if self.sock.poll(0, zmq.POLLOUT) == 0 or (arrays := self._place(header, arrays, lambda: True)) is None:
            return False
        try:
            self.sock.send_multipart(wire.encode(header, arrays, self.token), zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self._unplace(arrays)
            return False
        self.counters.frames_out += 1
        self.counters.last_frame_id = header.frame_id
        return True

    def close(self, flush_ms: int = 0):
        self.sock.close(flush_ms)
        if self.ring:
            self.ring.close()


def send_waiting(sock: zmq.Socket, parts, should_stop, copy: bool = False) -> bool:
    """Blocking send in slices; gives up (False) only when asked to stop. Tries first, polls only
    when the queue is full (the usual case has room: one call instead of two)."""
    while True:
        try:
            sock.send_multipart(parts, zmq.NOBLOCK, copy=copy)
            return True
        except zmq.Again:
            pass
        if should_stop():
            return False
        sock.poll(SLICE_MS, zmq.POLLOUT)


class Ticker:
    """True once per `period` seconds (monotonic): when to send stats or status."""

    def __init__(self, period: float = 1.0):
        self.period, self.next = period, time.monotonic() + period

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.period
        return True
