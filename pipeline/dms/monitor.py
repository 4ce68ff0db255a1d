"""The driver monitor: one frame's face, eyes and identity (from the face stage) → the per-frame
`driver` fields of the emotion message and the events that start or end on it (topic `event`).

Durations are measured on the source's clock (`t_media_ns`), so a recorded drive replayed `--fast`
gives the same events as at its recorded pace. One monitor per stream, in decide (pipeline/decide.py).
"""
from __future__ import annotations

from collections import deque

import msgspec
import numpy as np

from pipeline.dms.attention import Glances, off_road
from pipeline.dms.calibration import Calibration
from pipeline.dms.episodes import Episodes
from pipeline.dms.eyelids import Closures, Window, closed_probability, readable_openness
from pipeline.dms.settings import DmsSettings
from pipeline.messages import Blink, Driver, Event, FrameHeader

MAX_FRAME_S = 0.2        # a gap between frames counts at most this much (a stall is not time observed)
PERCLOS_END = 0.75       # drowsiness (perclos) ends below this share of its threshold: no flicker at the line
DRIFT_END = 0.9          # likewise for the blink-duration drift

DISTRACTION, TIME_SHARING = ("distraction", None), ("time_sharing", None)
MICROSLEEP, PERCLOS, BLINK_DRIFT = ("microsleep", None), ("drowsiness", "perclos"), ("drowsiness", "blink_duration")
NO_FACE, EYES_UNSEEN = ("no_face", None), ("eyes_unseen", None)


def trusted_gaze(eyes, face, closed: bool, settings: DmsSettings):
    """(yaw, pitch) of the gaze in camera terms, or None where the eyes cannot be trusted: closed,
    no iris, or the head turned further than eyes_max_head_yaw_deg (FaceMesh's far-side eye corners
    and iris are then guesses: on synthetic drivers with the head at 50° it read the eyes as turned
    back by 40–50°, the gaze as on the road). The pitch is the head's: FaceMesh's irises follow the
    eyes up and down at a quarter of their movement, and read a head pitched down as eyes looking
    up, so the eyes' pitch would cancel the head's."""
    if eyes is None or eyes.camera_gaze_yaw is None or closed or abs(face.yaw) > settings.eyes_max_head_yaw_deg:
        return None
    return eyes.camera_gaze_yaw, face.pitch


class DriverMonitor:
    def __init__(self, settings: DmsSettings | None = None):
        self.settings = settings or DmsSettings()
        self.calibration = Calibration(self.settings)
        self.closures = Closures(self.settings)
        self.glances = Glances(self.settings)
        self.perclos = Window(self.settings.perclos_window_s)   # (readable s, closed s) per frame
        self.blinks = Window(self.settings.perclos_window_s)    # (1, duration s) per blink
        self.identities = deque()   # (t, identity) over the last identity_window_s
        self.episodes = None
        self.t0_ns = self.last_t = None
        self.absent_since = self.unseen_since = None

    def _to_ns(self, t: float) -> int:
        return self.t0_ns + int(round(t * 1e9))

    def __call__(self, header: FrameHeader) -> tuple[Driver, list[Event]]:
        t_ns = header.t_media_ns if header.t_media_ns is not None else header.t_capture_ns
        if self.t0_ns is None:
            self.t0_ns = t_ns
            self.episodes = Episodes(header.source, self._to_ns)
        t = (t_ns - self.t0_ns) / 1e9
        dt = 0.0 if self.last_t is None else min(max(t - self.last_t, 0.0), MAX_FRAME_S)
        self.last_t = t
        events = []
        if header.face is None:
            driver = self._absent(header.frame_id, t, events)
        else:
            driver = self._present(header, t, dt, events)
        driver.events = self.episodes.kinds()
        return driver, [e for e in events if e is not None]

    def _absent(self, frame_id: int, t: float, events: list) -> Driver:
        s, episodes = self.settings, self.episodes
        self.absent_since = t if self.absent_since is None else self.absent_since
        gone = t - self.absent_since
        events.append(episodes.set(NO_FACE, gone >= s.no_face_s, frame_id, t, self.absent_since))
        if gone >= s.reset_after_s and self.calibration.seen_s > 0:
            self._new_driver()   # whoever sits down next is calibrated anew
        self.unseen_since = None
        self.closures.update(t, None, None)
        if MICROSLEEP in episodes and not self.closures.closed:
            events.append(episodes.end(MICROSLEEP, frame_id, t, t))
        self.glances.update(t, None)
        events += self._distraction(frame_id, t, None)
        return Driver(state=self.calibration.state, calibration=self.calibration.progress, present=False,
                      off_road_s=round(self.glances.away_for(t), 3), perclos=self._perclos())

    def _present(self, header: FrameHeader, t: float, dt: float, events: list) -> Driver:
        s, episodes, calibration, frame_id = self.settings, self.episodes, self.calibration, header.frame_id
        events.append(episodes.end(NO_FACE, frame_id, t, t))
        self.absent_since = None
        identity = self._identity(t, header.identity)
        if calibration.another_driver(t, identity):
            self._new_driver()
            events += episodes.end_all(frame_id, t)

        # The eyes: closed or open against this driver's open eyes; blinks; microsleep; PERCLOS.
        eyes = header.eyes
        # Beyond eyes_max_head_yaw_deg FaceMesh keeps an open-eye guess for lids it cannot see (shut
        # eyes read 0.6 of open at 40°): the eyes count as unreadable there.
        facing = abs(header.face.yaw) <= s.eyes_max_head_yaw_deg
        openness = readable_openness(eyes) if facing else None
        ratio = None if openness is None else openness / calibration.open_level
        p_closed = None if ratio is None else closed_probability(ratio, s)
        finished = self.closures.update(t, ratio, p_closed)
        blink = None
        if finished is not None and finished[1] - finished[0] < s.blink_max_s:
            duration = finished[1] - finished[0]
            blink = Blink(t_start_ns=self._to_ns(finished[0]), t_end_ns=self._to_ns(finished[1]),
                          duration_ms=round(duration * 1e3, 1))
            calibration.add_blink(duration * 1e3)
            self.blinks.add(t, 1, duration)
        closed = self.closures.closed
        if closed and self.closures.closed_for(t) >= s.microsleep_s and MICROSLEEP not in episodes:
            events.append(episodes.start(MICROSLEEP, frame_id, t, self.closures.closed_since,
                                         self.closures.mean_closed_prob(), value=self.closures.closed_for(t)))
        elif not closed and MICROSLEEP in episodes:
            events.append(episodes.end(MICROSLEEP, frame_id, t, finished[1] if finished else t))
        self.perclos.add(t, dt if ratio is not None else 0.0, dt if ratio is not None and closed else 0.0)
        events += self._drowsiness(frame_id, t)
        # Eyes unseen on a face turned to the camera (a hand, an occlusion); a head turned away is not that.
        if not (facing and openness is None):
            self.unseen_since = None
        elif self.unseen_since is None:
            self.unseen_since = t
        unseen_for = 0.0 if self.unseen_since is None else t - self.unseen_since
        events.append(episodes.set(EYES_UNSEEN, self.unseen_since is not None and unseen_for >= s.eyes_unseen_s,
                                   frame_id, t, t - unseen_for))

        # Attention: the eyes' gaze when they can be trusted, else the head's direction.
        head = (header.face.yaw, header.face.pitch)
        gaze = trusted_gaze(eyes, header.face, closed, s)
        direction, neutral, gaze_from = ((gaze, calibration.neutral_gaze, "eyes") if gaze is not None
                                         else (head, calibration.neutral_head, "head"))
        off = off_road(direction, neutral, s)
        self.glances.update(t, off)
        events += self._distraction(frame_id, t, gaze_from)

        calibration.update(dt, head, gaze, openness, identity)
        if eyes is not None and p_closed is not None:
            eyes = msgspec.structs.replace(eyes, closed_prob=round(p_closed, 3))
        return Driver(state=calibration.state, calibration=calibration.progress, present=True, eyes=eyes,
                      on_road=not off, gaze_from=gaze_from, off_road_s=round(self.glances.away_for(t), 3),
                      perclos=self._perclos(), blink=blink)

    def _distraction(self, frame_id: int, t: float, gaze_from) -> list:
        s, episodes, glances = self.settings, self.episodes, self.glances
        events = []
        if glances.away and glances.away_for(t) >= s.distraction_s and DISTRACTION not in episodes:
            events.append(episodes.start(DISTRACTION, frame_id, t, glances.since, glances.share_off(),
                                         value=glances.away_for(t), cause=gaze_from))
            glances.exclude_current()   # reported as a distraction, not as time-sharing as well
        elif not glances.away and DISTRACTION in episodes:
            end = glances.finished[-1][1] if glances.finished else t
            events.append(episodes.end(DISTRACTION, frame_id, t, end))
        shared = glances.shared_time(t)
        if shared >= s.time_sharing_s and TIME_SHARING not in episodes:
            events.append(episodes.start(TIME_SHARING, frame_id, t, t - s.time_sharing_window_s, 1.0, value=shared))
        elif shared < s.time_sharing_s and TIME_SHARING in episodes:
            events.append(episodes.end(TIME_SHARING, frame_id, t, t))
        return events

    def _perclos(self) -> float | None:
        readable = self.perclos.total(0)
        if readable < self.settings.perclos_min_readable * self.settings.perclos_window_s:
            return None
        return round(self.perclos.total(1) / readable, 4)

    def _drowsiness(self, frame_id: int, t: float) -> list:
        s, episodes = self.settings, self.episodes
        events = []
        perclos = self._perclos()
        readable_share = min(1.0, self.perclos.total(0) / s.perclos_window_s)
        if perclos is not None and perclos >= s.perclos_threshold and PERCLOS not in episodes:
            events.append(episodes.start(PERCLOS, frame_id, t, t - s.perclos_window_s, readable_share, perclos))
        elif PERCLOS in episodes and (perclos is None or perclos < PERCLOS_END * s.perclos_threshold):
            events.append(episodes.end(PERCLOS, frame_id, t, t))
        baseline, count = self.calibration.blink_ms, self.blinks.total(0)
        mean_ms = 1e3 * self.blinks.total(1) / count if count else None
        drifting = baseline is not None and count >= s.blink_drift_min and mean_ms >= s.blink_drift * baseline
        if drifting and BLINK_DRIFT not in episodes:
            events.append(episodes.start(BLINK_DRIFT, frame_id, t, t - s.perclos_window_s, readable_share, mean_ms))
        elif BLINK_DRIFT in episodes and not (baseline is not None and count >= s.blink_drift_min
                                              and mean_ms >= DRIFT_END * s.blink_drift * baseline):
            events.append(episodes.end(BLINK_DRIFT, frame_id, t, t))
        return events

    def _identity(self, t: float, identity):
        """The fit's identity averaged over the last identity_window_s (None without one)."""
        if identity is None:
            return None
        self.identities.append((t, identity))
        while self.identities[0][0] <= t - self.settings.identity_window_s:
            self.identities.popleft()
        return np.mean([v for _, v in self.identities], axis=0)

    def _new_driver(self):
        """Another driver (or the seat empty for long): forget what was learned about the last one."""
        self.calibration.reset()
        self.identities.clear()
        self.closures = Closures(self.settings)
        self.perclos.clear()
        self.blinks.clear()
