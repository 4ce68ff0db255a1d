"""Decide: perception's per-frame probabilities → the emotion message, with a smoothed label.

Smoothing is an exponential moving average of the probabilities; the smoothed label changes only
when another class leads the current one by `margin` (hysteresis: no flicker between two close
classes). A frame without a face is published as `valid: false`, never skipped; the smoothed label
is held through `hold_frames` such frames (a blink of the tracker), then cleared.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from pipeline.fusion import PATHS

EMOTION_SCHEMA = "exprada.emotion/1"
STATUS_SCHEMA = "exprada.status/1"


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


def emotion_message(header: dict, smoothed_label, classes, t_publish_ns: int) -> dict:
    """The published JSON for one frame (schema exprada.emotion/1, documented in the README)."""
    valid = bool(header.get("valid")) and header.get("probs") is not None
    probs = header.get("probs") if valid else None
    latency = {stage: round((end - start) / 1e6, 3) for stage, (start, end) in header["timing"].items()}
    latency["total"] = round((t_publish_ns - header["t_capture_ns"]) / 1e6, 3)
    message = {
        "schema": EMOTION_SCHEMA,
        "frame_id": header["frame_id"],
        "source": header["source"],
        "t_capture_ns": header["t_capture_ns"],
        "t_publish_ns": t_publish_ns,
        "valid": valid,
        "label": classes[int(np.argmax(probs))] if valid else None,
        "probs": dict(zip(classes, probs)) if valid else None,
        "smoothed_label": smoothed_label,
        "face": _face(header.get("face")),
        "latency_ms": latency,
    }
    if valid:
        # Additive fields (schema unchanged): where `probs` came from, and every path classified
        # when there were two or more (one path alone is `probs` itself).
        if header.get("published_from"):
            message["published_from"] = header["published_from"]
        paths = {path: dict(zip(classes, header[f"probs_{path}"])) for path in PATHS
                 if header.get(f"probs_{path}") is not None}
        if len(paths) >= 2:
            message["paths"] = paths
    else:
        message["reason"] = header.get("reason") or "no classification"
    return message


def _face(face):
    if not face:
        return None
    return {"box": face["box"], "yaw": face["yaw"], "pitch": face["pitch"], "roll": face["roll"]}


def path_labels(header: dict, classes) -> dict:
    """{"translated": label | None, "render": label | None, "crop": label | None}: each path's own
    label on this frame (None where the path was not classified, or the frame is not valid)."""
    labels = {}
    for path in PATHS:
        probs = header.get(f"probs_{path}")
        labels[path] = classes[int(np.argmax(probs))] if header.get("valid") and probs is not None else None
    return labels


def result_record(header: dict, emotion: dict, classes) -> dict:
    """What decide hands the summary for one frame (the staged runner and the sequential loop alike):
    the published message, the ground truth, and each path's label (pipeline/summary.py)."""
    return {"emotion": emotion, "truth": header.get("truth"), **path_labels(header, classes)}


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

    def push(self, header: dict, arrays: dict):
        replica = header.get("replica", 0)
        queue = self.queues[replica % len(self.queues) if isinstance(replica, int) else 0]
        queue.append((time.monotonic(), header, arrays))

    @property
    def waiting(self) -> bool:
        return any(self.queues)

    def pop(self, flush: bool = False) -> list:
        """The frames that may leave now, in order; flush: all of them (end of stream)."""
        out = []
        while self.waiting:
            heads = [q for q in self.queues if q]
            queue = min(heads, key=lambda q: q[0][1]["frame_id"])
            frame_id = queue[0][1]["frame_id"]
            oldest = min(q[0][0] for q in heads)
            if not (flush or frame_id == self.last + 1 or len(heads) == len(self.queues)
                    or time.monotonic() - oldest > self.patience_s):
                break
            self.last = max(self.last, frame_id)
            out.append(queue.popleft()[1:])
        return out
