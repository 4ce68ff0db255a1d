"""Per-driver calibration: where this driver looks when looking at the road, and how open their eyes
are when open, learned online from their own first minute of frames; forgotten when the driver
changes (no face for long, or another identity from the bilinear fit)."""
from __future__ import annotations

import numpy as np

from pipeline.dms.settings import DmsSettings

CALIBRATING, CALIBRATED = "calibrating", "calibrated"
MEDIAN_EVERY_S = 0.5   # provisional medians are refreshed this often (not every frame: it is O(n))


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
        self._refreshed_at = self.seen_s
        self.neutral_head = tuple(np.median(self.head, axis=0))
        if self.gaze:
            self.neutral_gaze = tuple(np.median(self.gaze, axis=0))
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
