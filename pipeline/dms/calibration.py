"""Per-driver calibration: where this driver looks when looking at the road, and how open their eyes
are when open, learned online from their own first minute of frames; forgotten when the driver
changes (no face for long, or another identity from the bilinear fit)."""
from __future__ import annotations

import numpy as np

from pipeline.dms.settings import DmsSettings

CALIBRATING, CALIBRATED = "calibrating", "calibrated"
MEDIAN_EVERY_S = 0.5   # provisional medians are refreshed this often (not every frame: it is O(n))
GATE = 0.75            # the neutral is learned from directions within this share of the road zone of it


class Calibration:
    def __init__(self, settings: DmsSettings):
        self.settings = settings
        self.reset()

    def reset(self):
        self.seen_s = 0.0                    # time with a face, seconds
        self.head, self.gaze, self.openness, self.identities, self.blinks_ms = [], [], [], [], []
        self.neutral_head = self.neutral_gaze = (0.0, 0.0)
        self.open_level = self.settings.default_open
        self.identity = self.identity_spread = None
        self.blink_ms = None                 # the driver's usual blink duration, once calibrated
        self._refreshed_at = -np.inf
        self._no_gaze_yet = True
        self._other_since = None             # when the identity started to look like another driver's

    @property
    def state(self) -> str:
        return CALIBRATED if self.seen_s >= self.settings.calibration_s else CALIBRATING

    @property
    def progress(self) -> float:
        return round(min(1.0, self.seen_s / self.settings.calibration_s), 3)

    def update(self, dt: float, head, gaze, openness, identity):
        """One frame with a face: dt its share of time; head and gaze (yaw, pitch) or None; openness
        (the readable eyes' mean) or None; identity (the window-averaged fit's, in population spreads)
        or None."""
        if self.state == CALIBRATED:
            return
        self.seen_s += dt
        self.head.append(head)
        if gaze is not None:
            self.gaze.append(gaze)
        if openness is not None:
            self.openness.append(openness)
        if identity is not None:
            self.identities.append(identity)
        done = self.state == CALIBRATED
        if done or (self.seen_s >= self.settings.provisional_s and self.seen_s - self._refreshed_at >= MEDIAN_EVERY_S):
            self._refresh()
        if done:   # what is learned is kept; the samples are not needed any more
            self.head, self.gaze, self.openness, self.identities = [], [], [], []

    def _refresh(self):
        first = self._refreshed_at == -np.inf
        self._refreshed_at = self.seen_s
        done = self.state == CALIBRATED
        self.neutral_head = self._neutral(self.head, None if first else self.neutral_head, done)
        if self.gaze:
            self.neutral_gaze = self._neutral(self.gaze, None if first or self._no_gaze_yet else self.neutral_gaze, done)
            self._no_gaze_yet = False
        if self.openness:
            # Blinks and closures are a small share of an alert minute: the median is the open eye.
            self.open_level = float(np.median(self.openness))
        if self.identities:
            # Spread floor: a dimension that barely moved over the minute must not make noise look
            # like a new face (0.05 population spreads).
            self.identity = np.median(self.identities, axis=0)
            self.identity_spread = np.std(self.identities, axis=0) + 0.05
        if len(self.blinks_ms) >= self.settings.blink_drift_min:
            self.blink_ms = float(np.mean(self.blinks_ms))

    def _neutral(self, directions, current, done: bool) -> tuple:
        """Where this driver looks at the road. The first estimate is the median of the first
        provisional_s (drivers look ahead most of the time); after it, only the directions within
        GATE road zones of the estimate count, so glances away — even a long one in the first minute,
        which would drag a plain median off the road — do not move it. Should the gate hold less than
        half of the minute at its end (the first seconds were spent looking away), the densest
        direction is taken instead and gated again."""
        points = np.asarray(directions, dtype=np.float64)
        if current is None:
            return tuple(np.median(points, axis=0))
        inside = self._gated(points, current)
        if done and inside.mean() < 0.5:
            current = _densest(points, self.settings.road_yaw_deg)
            inside = self._gated(points, current)
        return tuple(np.median(points[inside], axis=0)) if inside.any() else tuple(current)

    def _gated(self, points, centre) -> np.ndarray:
        s = self.settings
        offset = points - np.asarray(centre)
        return ((np.abs(offset[:, 0]) <= GATE * s.road_yaw_deg)
                & (offset[:, 1] <= GATE * s.road_down_deg) & (offset[:, 1] >= -GATE * s.road_up_deg))

    def add_blink(self, duration_ms: float):
        if self.state == CALIBRATING:
            self.blinks_ms.append(duration_ms)

    def another_driver(self, t: float, identity) -> bool:
        """True once the (window-averaged) identity has stayed away from the calibrated one for
        identity_change_s. The distance is in the calibrated driver's own spreads: the fit pins some
        identity directions down far better than others."""
        if self.identity is None or identity is None or self.state == CALIBRATING:
            self._other_since = None
            return False
        distance = float(np.sqrt(np.mean(((np.asarray(identity) - self.identity) / self.identity_spread) ** 2)))
        if distance < self.settings.identity_change:
            self._other_since = None
            return False
        self._other_since = t if self._other_since is None else self._other_since
        return t - self._other_since >= self.settings.identity_change_s


def _densest(points: np.ndarray, cell_deg: float) -> tuple:
    """The centre of the cell_deg × cell_deg square holding the most directions (each direction
    tried as a centre: a minute of frames is a few thousand, once)."""
    step = max(1, len(points) // 500)   # a subsample of candidate centres is plenty
    candidates = points[::step]
    counts = [(np.abs(points - c) <= cell_deg / 2).all(axis=1).sum() for c in candidates]
    return tuple(candidates[int(np.argmax(counts))])

