"""The eyes over time: closed or open on each frame (against the driver's open eyes), closures split
into blinks and long closures, PERCLOS over a sliding window, and the blinks' durations."""
from __future__ import annotations

import math
from collections import deque

from pipeline.dms.settings import DmsSettings

LOST_CLOSURE_S = 0.3   # eyes unreadable this long in the middle of a closure: it is given up


def readable_openness(eyes) -> float | None:
    """The mean openness of the eyes that can be read (the visible ones), or None."""
    if eyes is None:
        return None
    values = [v for v, seen in ((eyes.openness_left, eyes.left_visible), (eyes.openness_right, eyes.right_visible))
              if seen]
    return sum(values) / len(values) if values else None


def closed_probability(ratio: float, settings: DmsSettings) -> float:
    """P(closed) from the openness over the driver's open level: ½ at closed_ratio, logistic."""
    z = (ratio - settings.closed_ratio) / settings.closed_width
    return 1.0 / (1.0 + math.exp(min(60.0, z)))


class Closures:
    """Open ⇄ closed with hysteresis (closed below closed_ratio, open again above reopen_ratio);
    a closure that ends within blink_max_s is a blink."""

    def __init__(self, settings: DmsSettings):
        self.settings = settings
        self.closed_since = None      # seconds, while the eyes are closed
        self.last_read = None
        self.closed_probs = []        # over the closure in progress

    @property
    def closed(self) -> bool:
        return self.closed_since is not None

    def closed_for(self, t: float) -> float:
        return t - self.closed_since if self.closed else 0.0

    def update(self, t: float, ratio: float | None, p_closed: float | None):
        """One frame (ratio None: eyes unreadable). Returns the finished closure as (start, end) or
        None; the caller tells blinks from long closures by its length."""
        s = self.settings
        if ratio is None:
            if self.closed and self.last_read is not None and t - self.last_read > LOST_CLOSURE_S:
                self.closed_since, self.closed_probs = None, []
            return None
        self.last_read = t
        if not self.closed:
            if ratio < s.closed_ratio:
                self.closed_since, self.closed_probs = t, [p_closed]
            return None
        if ratio <= s.reopen_ratio:
            self.closed_probs.append(p_closed)
            return None
        finished = (self.closed_since, t)
        self.closed_since = None
        return finished

    def mean_closed_prob(self) -> float:
        return sum(self.closed_probs) / len(self.closed_probs) if self.closed_probs else 0.0


class Window:
    """Sums of (duration, value) over the last `seconds`: frames' readable and closed time, blinks."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.items = deque()      # (t, *values)
        self.sums = None

    def add(self, t: float, *values):
        self.items.append((t, *values))
        self.sums = list(values) if self.sums is None else [a + b for a, b in zip(self.sums, values)]
        while self.items and self.items[0][0] <= t - self.seconds:
            old = self.items.popleft()
            self.sums = [a - b for a, b in zip(self.sums, old[1:])]

    def total(self, index: int) -> float:
        return self.sums[index] if self.sums else 0.0

    def __len__(self):
        return len(self.items)

    def clear(self):
        self.items.clear()
        self.sums = None
