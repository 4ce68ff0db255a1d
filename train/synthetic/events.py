"""Scripted eye events and look-aways of a synthetic drive, with their per-frame ground truth.

Eye events close both eyelids: blinks (100–400 ms, lids closing fast and reopening slower) and
long drowsy closures (0.5–2 s). Look-aways are head turns held for a while (no eye-in-head gaze:
the iris is painted on the texture and does not move). Angles follow scene.Pose: yaw > 0 turns the
face towards the image's right (the driver's left), pitch > 0 tilts it down; the car is
left-hand drive, so the centre console and the rear-view mirror are on the driver's right.
"""
from dataclasses import dataclass

import numpy as np

BLINK_S = (0.1, 0.4)
CLOSURE_S = (0.5, 2.0)
LOOK_AWAYS = {  # kind: (yaw, pitch) held, degrees, ±15% per episode
    "left mirror": (45.0, 5.0),
    "right mirror": (-55.0, 5.0),
    "rear-view mirror": (-30.0, -12.0),
    "centre console": (-20.0, 35.0),
}
LOOK_AWAY_S = (0.8, 2.5)
TURN_S = 0.3  # a look-away's turn, and its return, takes this long


@dataclass
class Event:
    kind: str
    start: float
    end: float
    yaw: float = 0.0    # look-aways: the head turn held
    pitch: float = 0.0

    def overlaps(self, start: float, end: float, margin: float = 0.0) -> bool:
        return start < self.end + margin and self.start < end + margin


def _place(rng, seconds: float, duration: float, taken: list[Event], margin: float) -> float | None:
    """A start time in [1 s, seconds - duration) clear of `taken` by `margin`, or None."""
    for _ in range(100):
        start = float(rng.uniform(1.0, seconds - duration))
        if not any(e.overlaps(start, start + duration, margin) for e in taken):
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


def look_aways(rng: np.random.Generator, seconds: float, count: int) -> list[Event]:
    """`count` non-overlapping look-aways of random kinds (fewer if the drive is too short)."""
    episodes = []
    for _ in range(count):
        kind = str(rng.choice(list(LOOK_AWAYS)))
        duration = float(rng.uniform(*LOOK_AWAY_S))
        yaw, pitch = np.array(LOOK_AWAYS[kind]) * rng.uniform(0.85, 1.15, size=2)
        start = _place(rng, seconds, duration, episodes, margin=1.0) if seconds > duration + 1.0 else None
        if start is not None:
            episodes.append(Event(kind, start, start + duration, float(yaw), float(pitch)))
    return sorted(episodes, key=lambda e: e.start)


def _smooth(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def _active(t: float, events: list[Event]) -> Event | None:
    return next((e for e in events if e.start <= t < e.end), None)


def eyes_closed(t: float, events: list[Event]) -> tuple[float, str | None]:
    """(closure 0..1 of both eyes, the eye event's kind or None) at time t. A blink closes over its
    first third and reopens over the rest; a closure closes in 0.15 s, holds, reopens in 0.25 s."""
    event = _active(t, events)
    if event is None:
        return 0.0, None
    duration, x = event.end - event.start, t - event.start
    closing, opening = (duration / 3, 2 * duration / 3) if event.kind == "blink" else (0.15, 0.25)
    return min(_smooth(x / closing), _smooth((duration - x) / opening)), event.kind


def head_turn(t: float, episodes: list[Event]) -> tuple[float, float, str | None]:
    """(yaw, pitch) added to the head pose at time t, and the look-away's kind or None."""
    episode = _active(t, episodes)
    if episode is None:
        return 0.0, 0.0, None
    x = t - episode.start
    amount = min(_smooth(x / TURN_S), _smooth((episode.end - episode.start - x) / TURN_S))
    return amount * episode.yaw, amount * episode.pitch, episode.kind
