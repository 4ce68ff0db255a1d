"""A synthetic drive: one driver, ~60 s at 30 fps, changing expressions, head motion (slow sways and
glances to the mirrors, scaled by `sway`), and moments with no face (the seat empty, the camera
covered), with per-frame truth. Scripted episodes are train/synthetic/events.py's."""
from dataclasses import dataclass

import numpy as np

from face.expressions import EXPRESSIONS
from train.synthetic.events import Event
from train.synthetic.scene import Pose

TRANSITION_S = 0.4
GLANCE_S = 1.2          # a glance: turn, hold, return
GLANCE_LEAD_S = 0.15    # the eyes lead a glance's head turn by this long
GLANCE_EYES = 0.35      # and take this share of its turn (at most GLANCE_EYES_MAX_DEG)
GLANCE_EYES_MAX_DEG = 20.0


@dataclass
class Segment:
    start: float
    end: float
    label: int | None      # None: no face in the frame
    reason: str = ""       # why there is no face


def timeline(rng: np.random.Generator, seconds: float) -> list[Segment]:
    """Expression segments of 1.5–4 s covering all seven expressions in turn, with a no-face
    moment (1–2 s) about every 25 s, never in the first 3 s."""
    segments, t, order = [], 0.0, []
    next_gap = 3.0 + rng.uniform(8.0, 20.0)
    while t < seconds:
        if t >= next_gap:
            d = float(rng.uniform(1.0, 2.0))
            segments.append(Segment(t, min(t + d, seconds), None, str(rng.choice(["seat empty", "camera covered"]))))
            t += d
            next_gap = t + rng.uniform(15.0, 30.0)
            continue
        if not order:
            order = list(rng.permutation(len(EXPRESSIONS)))
        d = float(rng.uniform(1.5, 4.0))
        segments.append(Segment(t, min(t + d, seconds), int(order.pop())))
        t += d
    return segments


class HeadMotion:
    """Smooth head pose and position: slow sways plus glances to the side mirrors, both scaled by
    `sway` (1: as they always were; 0: a still head, no glances)."""

    def __init__(self, rng: np.random.Generator, seconds: float, width: int, height: int, sway: float = 1.0):
        self.sway = sway
        self.freq = rng.uniform(0.05, 0.25, size=(3, 2))
        self.phase = rng.uniform(0, 2 * np.pi, size=(3, 2))
        self.amp = np.array([[14.0, 6.0], [6.0, 3.0], [4.0, 2.0]]) * rng.uniform(0.7, 1.3, size=(3, 2)) * sway
        self.glances = [(float(rng.uniform(2, max(seconds - 2, 2.5))), float(rng.choice([-1, 1])) * rng.uniform(35, 58))
                        for _ in range(max(1, int(seconds / 15)))]
        self.centre = np.array([width * rng.uniform(0.45, 0.55), height * rng.uniform(0.42, 0.5)])
        self.height = rng.uniform(185, 225)

    def pose(self, t: float, turn: tuple[float, float] = (0.0, 0.0)) -> Pose:
        """The pose at time t, with a scripted (yaw, pitch) turn added (events.head_turn)."""
        waves = (self.amp * np.sin(2 * np.pi * self.freq * t + self.phase)).sum(axis=1)
        yaw, pitch, roll = waves + [turn[0], turn[1], 0.0]
        for start, target in self.glances:  # 1.2 s: turn, hold, return
            x = (t - start) / GLANCE_S
            if 0 <= x <= 1 and self.sway:
                yaw += self.sway * target * np.sin(np.pi * x) ** 2
        drift = np.array([np.sin(0.13 * t + self.phase[0, 0]), np.sin(0.11 * t + self.phase[1, 0])]) * [25, 12]
        return Pose(yaw=float(yaw), pitch=float(pitch), roll=float(roll), cx=float(self.centre[0] + drift[0] + 0.6 * yaw),
                    cy=float(self.centre[1] + drift[1]), height=float(self.height * (1 + 0.04 * np.sin(0.2 * t))))

    def glance_events(self, eyes: bool = True) -> list[Event]:
        """The glances as off-road episodes (kind "glance"): with `eyes` (eyeballs that move) the
        eyes saccade GLANCE_LEAD_S ahead of the head and take GLANCE_EYES of its turn, so an episode
        runs from the eyes' first move to the head's return. None when the head is still (sway 0)."""
        if not self.sway:
            return []
        out = []
        for start, target in sorted(self.glances):
            yaw = self.sway * target
            gaze = float(np.sign(yaw) * min(GLANCE_EYES * abs(yaw), GLANCE_EYES_MAX_DEG)) if eyes else 0.0
            lead = GLANCE_LEAD_S if eyes else 0.0
            out.append(Event("glance", start - lead, start + GLANCE_S, yaw=float(yaw), gaze_yaw=gaze, lead=lead))
        return out


def blend_weight(t: float, segment: Segment) -> float:
    """How far into a segment's expression the face is (0 → 1 over the transition)."""
    return float(np.clip((t - segment.start) / TRANSITION_S, 0.0, 1.0))
