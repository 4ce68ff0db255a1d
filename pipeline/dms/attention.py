"""Where the driver looks: on or off the road zone on each frame, glances away over time, and how
much of the recent past they add up to (visual time-sharing)."""
from __future__ import annotations

from collections import deque

from pipeline.dms.settings import DmsSettings


def off_road(direction, neutral, settings: DmsSettings) -> bool:
    """Is (yaw, pitch) outside the road zone around the driver's neutral? Pitch > 0 looks down."""
    yaw, pitch = direction[0] - neutral[0], direction[1] - neutral[1]
    return abs(yaw) > settings.road_yaw_deg or pitch > settings.road_down_deg or pitch < -settings.road_up_deg


class Glances:
    """Glances away from the road: one starts on the first off-road frame and ends once the gaze has
    been back for glance_end_s (shorter returns — a noisy frame — do not split it). A frame without a
    face continues a glance that was under way (a head turned out of the camera's view is still
    looking away) and otherwise counts as neither."""

    def __init__(self, settings: DmsSettings):
        self.settings = settings
        self.since = None          # start of the glance in progress
        self.back_since = None     # when the gaze came back, while that may end the glance
        self.frames = self.off_frames = 0
        self.finished = deque()    # (start, end, counted) of recent glances, for time-sharing
        self.current_counted = True

    @property
    def away(self) -> bool:
        return self.since is not None

    def away_for(self, t: float) -> float:
        return t - self.since if self.away else 0.0

    def share_off(self) -> float:
        """The share of the glance's frames that were judged off the road."""
        return self.off_frames / self.frames if self.frames else 0.0

    def update(self, t: float, off: bool | None):
        """One frame: off True / False, or None (no face). Returns (start, end) of a glance that has
        just ended, else None."""
        if off is None:
            off = True if self.away and self.back_since is None else None
            if off is None:
                return None
        if off:
            if not self.away:
                self.since, self.frames, self.off_frames, self.current_counted = t, 0, 0, True
            self.back_since = None
            self.frames += 1
            self.off_frames += 1
            return None
        if not self.away:
            return None
        self.frames += 1
        if self.back_since is None:
            self.back_since = t
        if t - self.back_since < self.settings.glance_end_s:
            return None
        ended = (self.since, self.back_since)
        self.finished.append((*ended, self.current_counted))
        self.since = self.back_since = None
        return ended

    def exclude_current(self):
        """The glance in progress is a distraction: it is reported as one, not as time-sharing."""
        self.current_counted = False

    def shared_time(self, t: float) -> float:
        """Seconds spent in counted glances within the time-sharing window that ends at t."""
        start = t - self.settings.time_sharing_window_s
        while self.finished and self.finished[0][1] <= start:
            self.finished.popleft()
        total = sum(min(end, t) - max(begin, start) for begin, end, counted in self.finished if counted)
        if self.away and self.current_counted:
            total += t - max(self.since, start) - (t - self.back_since if self.back_since is not None else 0.0)
        return max(0.0, total)
