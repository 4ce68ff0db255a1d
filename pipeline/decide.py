"""Decide: perception's per-frame measurements → the emotion message, with a smoothed label and the
driver monitor's signals (pipeline/dms/), and the driver-monitor events (topic `event`).

Smoothing is an exponential moving average of the probabilities; the smoothed label changes only
when another class leads the current one by `margin` (hysteresis: no flicker between two close
classes). A frame without a face is published as `valid: false`, never skipped; the smoothed label
is held through `hold_frames` such frames (a blink of the tracker), then cleared.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from pipeline.dms import DmsSettings, DriverMonitor
from pipeline.messages import Driver, Emotion, FrameHeader, Result


class Decider:
    def __init__(self, classes, alpha: float = 0.35, margin: float = 0.15, hold_frames: int = 15):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.classes, self.alpha, self.margin, self.hold_frames = tuple(classes), alpha, margin, hold_frames
        self.reset()

    def reset(self):
        self.smoothed, self.current, self.missing = None, None, 0

    def update(self, probs) -> str | None:
        """One frame's probabilities (None: no face) → the smoothed label (None: no decision)."""
        if probs is None:
            self.missing += 1
            if self.missing > self.hold_frames:
                self.reset()
            return None if self.current is None else self.classes[self.current]
        self.missing = 0
        probs = np.asarray(probs, dtype=np.float64)
        self.smoothed = probs if self.smoothed is None else self.alpha * probs + (1 - self.alpha) * self.smoothed
        leader = int(np.argmax(self.smoothed))
        if self.current is None or self.smoothed[leader] >= self.smoothed[self.current] + self.margin:
            self.current = leader
        return self.classes[self.current]


class DecideStep:
    """The decide stage's per-frame work, one and the same in the staged pipeline and the
    sequential loop: a classified frame header → the Result (the emotion message to publish, the
    driver-monitor events decided on the frame, the ground truth and each path's own label, for the
    summary)."""

    def __init__(self, classes, dms: DmsSettings | None = None):
        self.classes = tuple(classes)
        self.decider = Decider(self.classes)
        self.monitor = DriverMonitor(dms)

    def __call__(self, header: FrameHeader) -> Result:
        started = time.monotonic_ns()
        smoothed = self.decider.update(header.probs if header.valid else None)
        driver, events = self.monitor(header)
        header.stamp("decide", started, time.monotonic_ns())
        emotion = emotion_message(header, smoothed, self.classes, time.monotonic_ns(), driver)
        return Result(emotion, header.truth, path_labels(header, self.classes), events)


def emotion_message(header: FrameHeader, smoothed_label, classes, t_publish_ns: int,
                    driver: Driver | None = None) -> Emotion:
    """The published message for one frame (topic `emotion`)."""
    valid = header.valid and header.probs is not None
    latency = {stage: round((end - start) / 1e6, 3) for stage, (start, end) in header.timing.items()}
    latency["total"] = round((t_publish_ns - header.t_capture_ns) / 1e6, 3)
    emotion = Emotion(frame_id=header.frame_id, source=header.source, t_capture_ns=header.t_capture_ns,
                      t_publish_ns=t_publish_ns, valid=valid, label=None, probs=None,
                      smoothed_label=smoothed_label, face=header.face, latency_ms=latency,
                      t_media_ns=header.t_media_ns, driver=driver)
    if not valid:
        emotion.reason = header.reason or "no classification"
        return emotion
    emotion.label = classes[int(np.argmax(header.probs))]
    emotion.probs = dict(zip(classes, map(float, header.probs)))
    emotion.published_from = header.published_from
    if len(header.paths) >= 2:   # one path alone is `probs` itself
        emotion.paths = {path: dict(zip(classes, probs)) for path, probs in header.paths.items()}
    return emotion


def path_labels(header: FrameHeader, classes) -> dict[str, str]:
    """Each classified path's own label on this frame ({} when the frame is not valid)."""
    if not header.valid:
        return {}
    return {path: classes[int(np.argmax(probs))] for path, probs in header.paths.items()}


class Merger:
    """Puts frames from the N face replicas back in frame order. Each replica's frames arrive in
    their own order (one pipe per hop keeps it), so the smallest frame id among the replicas' oldest
    frames goes next — at once when it follows the last one released (consecutive ids: no waiting in
    the common case), else once every replica has a frame waiting, or once the oldest has waited
    `patience_s` (live: a replica may have nothing coming, its frame dropped; replay: a replica being
    restarted)."""

    def __init__(self, replicas: int, patience_s: float):
        self.queues = [deque() for _ in range(max(1, replicas))]
        self.patience_s = patience_s
        self.last = -1

    def push(self, header: FrameHeader, arrays: dict) -> bool:
        queue = self.queues[header.replica % len(self.queues)]
        queue.append((time.monotonic(), header, arrays))
        return True

    @property
    def waiting(self) -> bool:
        return any(self.queues)

    def pop(self, flush: bool = False) -> list:
        """The frames that may leave now, in order; flush: all of them (end of stream)."""
        out = []
        while self.waiting:
            heads = [q for q in self.queues if q]
            queue = min(heads, key=lambda q: q[0][1].frame_id)
            frame_id = queue[0][1].frame_id
            oldest = min(q[0][0] for q in heads)
            if not (flush or frame_id == self.last + 1 or len(heads) == len(self.queues)
                    or time.monotonic() - oldest > self.patience_s):
                break
            self.last = max(self.last, frame_id)
            out.append(queue.popleft()[1:])
        return out


class ReplayOrder:
    """Replay: frames leave in the order capture sent them, each once. A frame goes when the frame
    capture sent before it (`previous_id`) has gone, however late either arrives (a stage restarted,
    frames sent again); a copy of a frame that has gone is refused. Nothing is skipped: no frame of a
    replay is lost, so there is nothing to give up waiting for."""

    PURGE_AT = 64   # held frames; beyond it, copies of frames that have gone are looked for and dropped

    def __init__(self, last_id: int = -1):
        self.last = last_id
        self.held: dict[int, tuple[FrameHeader, dict]] = {}   # previous_id → the frame that follows it

    @property
    def waiting(self) -> bool:
        return bool(self.held)

    def push(self, header: FrameHeader, arrays: dict) -> bool:
        """Hold a frame until its turn; False (refused) when it has already gone."""
        if header.frame_id <= self.last:
            return False
        self.held[header.previous_id] = (header, arrays)
        return True

    def pop(self, flush: bool = False) -> list:
        """The frames whose turn has come, in order (`flush` has no meaning here: nothing is skipped)."""
        out = []
        while self.last in self.held:
            header, arrays = self.held.pop(self.last)
            self.last = header.frame_id
            out.append((header, arrays))
        if len(self.held) > self.PURGE_AT:
            self.held = {k: v for k, v in self.held.items() if v[0].frame_id > self.last}
        return out
