"""Scripted episodes of a synthetic drive, with their per-frame ground truth.

- Eye events close both eyelids: blinks (100–400 ms, lids closing fast and reopening slower) and
  long drowsy closures (0.5–2 s).
- Gaze shifts: eye-only glances within the road scene (±5–15° yaw, ±3–8° pitch eye in head, held
  0.3–2 s, ~50 ms saccades), the head still; not off the road.
- Look-aways: short head-and-eyes turns off the road (a mirror, the centre console, a phone glance),
  0.5–2.5 s: not yet a distraction.
- Distractions: long off-road episodes of 3–8 s (phone, centre console, side window, passenger),
  at least 4 s from each other and from the look-aways.
- Glances: the head motion's own unscripted turns (train/synthetic/video.py HeadMotion), with
  eyes as below; they are recorded as look-aways of kind "glance".

In every off-road episode the eyes lead: they saccade towards the target `lead` (0.1–0.2 s) before
the head starts turning, hold their part of the turn while the head holds its part, and saccade
back `lead` before the head starts back. An episode's start/end span all of it: the eyes' first
move to the head's return. Angles follow scene.Pose and face.eyes: yaw > 0 towards the image's
right (the driver's left), pitch > 0 down; the car is left-hand drive, so the centre console, the
rear-view mirror and the passenger are on the driver's right (yaw < 0).
"""
from dataclasses import dataclass

import numpy as np

BLINK_S = (0.1, 0.4)
CLOSURE_S = (0.5, 2.0)
# kind: (head yaw, head pitch, eye yaw, eye pitch) held, degrees; yaw and pitch ±15 % per episode.
LOOK_AWAYS = {
    "left mirror": (45.0, 5.0, 15.0, 3.0),
    "right mirror": (-55.0, 5.0, -18.0, 3.0),
    "rear-view mirror": (-30.0, -12.0, -10.0, -8.0),
    "centre console": (-20.0, 35.0, -6.0, 12.0),
    "phone glance": (-12.0, 25.0, -6.0, 13.0),  # the lap, to the right: eyes + head 30–45° down
}
LOOK_AWAY_S = (0.5, 2.5)
DISTRACTIONS = {  # likewise, held 3–8 s
    "phone": (-12.0, 28.0, -6.0, 14.0),
    "centre console": (-22.0, 32.0, -6.0, 12.0),
    "side window": (55.0, 0.0, 18.0, -2.0),
    "passenger": (-58.0, 5.0, -20.0, 3.0),
}
DISTRACTION_S = (3.0, 8.0)
DISTRACTION_GAP_S = 4.0  # a distraction's distance to any other distraction or look-away
GAZE_SHIFT_S = (0.3, 2.0)
GAZE_SHIFT_DEG = ((5.0, 15.0), (3.0, 8.0))  # |yaw|, |pitch| ranges
LEAD_S = (0.1, 0.2)      # the eyes lead the head by this long
TURN_S = 0.3             # a look-away's head turn, and its return, takes this long (less if short)
CLEAR_S = 1.0            # scripted episodes keep this far from no-face moments and glances


@dataclass
class Event:
    kind: str
    start: float
    end: float
    yaw: float = 0.0         # the head turn held (look-aways, distractions, glances)
    pitch: float = 0.0
    gaze_yaw: float = 0.0    # the eye-in-head gaze held
    gaze_pitch: float = 0.0
    lead: float = 0.0        # the eyes move this long before the head

    def overlaps(self, start: float, end: float, margin: float = 0.0) -> bool:
        return start < self.end + margin and self.start < end + margin


def _place(rng, seconds: float, duration: float, taken: list[Event], margin: float,
           keep_clear: tuple = ()) -> float | None:
    """A start time in [1 s, seconds - duration) clear of `taken` by `margin` and of every
    (events, margin) pair in keep_clear, or None (also when the drive is too short)."""
    if seconds <= duration + 1.0:
        return None
    for _ in range(100):
        start = float(rng.uniform(1.0, seconds - duration))
        if not any(e.overlaps(start, start + duration, margin) for e in taken) and \
                not any(e.overlaps(start, start + duration, m) for events, m in keep_clear for e in events):
            return start
    return None


def eye_events(rng: np.random.Generator, seconds: float, blinks_per_minute: float = 0.0,
               closures: int = 0) -> list[Event]:
    """Long closures placed at random, then blinks at about `blinks_per_minute` (intervals of
    0.5–1.5 times the mean) skipping the closures; sorted by start."""
    events = []
    for _ in range(closures):
        duration = float(rng.uniform(*CLOSURE_S))
        start = _place(rng, seconds, duration, events, margin=1.0) if seconds > duration + 1.0 else None
        if start is not None:
            events.append(Event("closure", start, start + duration))
    closed = list(events)
    if blinks_per_minute > 0:
        mean_interval = 60.0 / blinks_per_minute
        t = float(rng.uniform(0.2, mean_interval))
        while True:
            duration = float(rng.uniform(*BLINK_S))
            if t + duration >= seconds:
                break
            if not any(e.overlaps(t, t + duration, margin=0.3) for e in closed):
                events.append(Event("blink", t, t + duration))
            t += duration + float(rng.uniform(0.5, 1.5)) * mean_interval
    return sorted(events, key=lambda e: e.start)


def _episodes(rng, seconds, count, table, durations, margin, keep_clear) -> list[Event]:
    """`count` episodes of kinds from `table` (kind: head and eye angles), `margin` apart, clear
    of keep_clear; fewer if the drive is too short or too full."""
    episodes = []
    for _ in range(count):
        kind = str(rng.choice(list(table)))
        duration = float(rng.uniform(*durations))
        jitter = rng.uniform(0.85, 1.15, size=2)  # on yaw and pitch, head and eyes alike
        yaw, pitch, gaze_yaw, gaze_pitch = np.array(table[kind]) * np.tile(jitter, 2)
        lead = float(rng.uniform(*LEAD_S))
        start = _place(rng, seconds, duration, episodes, margin, keep_clear)
        if start is not None:
            episodes.append(Event(kind, start, start + duration, float(yaw), float(pitch), float(gaze_yaw),
                                  float(gaze_pitch), lead))
    return sorted(episodes, key=lambda e: e.start)


def look_aways(rng: np.random.Generator, seconds: float, count: int, keep_clear: tuple = ()) -> list[Event]:
    """`count` non-overlapping look-aways (0.5–2.5 s) of random kinds, clear of keep_clear
    ((events, margin) pairs: no-face moments, glances)."""
    return _episodes(rng, seconds, count, LOOK_AWAYS, LOOK_AWAY_S, 1.0, keep_clear)


def distractions(rng: np.random.Generator, seconds: float, count: int, keep_clear: tuple = ()) -> list[Event]:
    """`count` distractions (3–8 s) of random kinds, DISTRACTION_GAP_S apart, clear of keep_clear
    (place them before the look-aways, which then keep DISTRACTION_GAP_S from them)."""
    return _episodes(rng, seconds, count, DISTRACTIONS, DISTRACTION_S, DISTRACTION_GAP_S, keep_clear)


def gaze_shifts(rng: np.random.Generator, seconds: float, per_minute: float, keep_clear: tuple = ()) -> list[Event]:
    """Eye-only glances at about `per_minute` (intervals of 0.5–1.5 times the mean), each to a random
    side and height; one that would meet keep_clear waits until that has passed. Sorted."""
    shifts = []
    if per_minute <= 0:
        return shifts
    mean_interval = 60.0 / per_minute
    t = float(rng.uniform(0.5, mean_interval))
    while True:
        duration = float(rng.uniform(*GAZE_SHIFT_S))
        (yaw, pitch), signs = [rng.uniform(*r) for r in GAZE_SHIFT_DEG], rng.choice([-1.0, 1.0], size=2)
        if t + duration >= seconds:
            break
        blocked = [e.end + m for events, m in keep_clear for e in events if e.overlaps(t, t + duration, m)]
        if blocked:
            t = max(blocked)
            continue
        shifts.append(Event("gaze shift", t, t + duration, gaze_yaw=float(signs[0] * yaw),
                            gaze_pitch=float(signs[1] * pitch)))
        t += duration + float(rng.uniform(0.5, 1.5)) * mean_interval
    return shifts


def _smooth(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def active(t: float, events: list[Event]) -> Event | None:
    """The event holding at time t (the first, should several)."""
    return next((e for e in events if e.start <= t < e.end), None)


def eyes_closed(t: float, events: list[Event]) -> tuple[float, str | None]:
    """(closure 0..1 of both eyes, the eye event's kind or None) at time t. A blink closes over its
    first third and reopens over the rest; a closure closes in 0.15 s, holds, reopens in 0.25 s."""
    event = active(t, events)
    if event is None:
        return 0.0, None
    duration, x = event.end - event.start, t - event.start
    closing, opening = (duration / 3, 2 * duration / 3) if event.kind == "blink" else (0.15, 0.25)
    return min(_smooth(x / closing), _smooth((duration - x) / opening)), event.kind


def saccade_s(amplitude: float) -> float:
    """A saccade's duration for an amplitude in degrees (the main sequence: ≈45 ms for 10°)."""
    return 0.025 + 0.002 * abs(amplitude)


def _amounts(t: float, e: Event) -> tuple[float, float]:
    """(head, eyes): how far into their turns the head and the eyes are at t, 0..1."""
    x, duration = t - e.start, e.end - e.start
    turn = min(TURN_S, (duration - e.lead) / 3)  # short episodes turn faster
    head = min(_smooth((x - e.lead) / turn), _smooth((duration - x) / turn))
    s = saccade_s(max(abs(e.gaze_yaw), abs(e.gaze_pitch)))
    # The eyes go back `lead` before the head does; with no head turn, at the end.
    back = duration - e.lead - turn if (e.yaw or e.pitch) else duration - s
    eyes = min(_smooth(x / s), _smooth((back + s - x) / s))
    return head, eyes


def head_turn(t: float, episodes: list[Event]) -> tuple[float, float, str | None]:
    """(yaw, pitch) added to the head pose at time t, and the episode's kind or None."""
    episode = active(t, episodes)
    if episode is None:
        return 0.0, 0.0, None
    amount = _amounts(t, episode)[0]
    return amount * episode.yaw, amount * episode.pitch, episode.kind


def eye_gaze(t: float, episodes: list[Event]) -> tuple[float, float]:
    """(yaw, pitch) of the eyes in the head at time t: 0 looking ahead (at the road)."""
    episode = active(t, episodes)
    if episode is None:
        return 0.0, 0.0
    amount = _amounts(t, episode)[1]
    return amount * episode.gaze_yaw, amount * episode.gaze_pitch
