"""The driver monitor's settings: every threshold, with its default and where the default comes from.
`run_pipeline.py --dms KEY=VALUE` sets any of them (`python run_pipeline.py --dms-help` lists them)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class DmsSettings:
    # Calibration: each driver's neutral gaze and open eyes, learned from their own frames (a camera on
    # the column or the pillar sees the driver's road-ward gaze off its axis, and eyes differ).
    calibration_s: float = 60.0      # seconds of frames with a face to learn from (the first minute)
    provisional_s: float = 2.0       # before this the population defaults, after it the running medians
                                     # (shorter than distraction_s: an off-axis camera raises no false alarm)
    reset_after_s: float = 10.0      # no face this long: whoever comes next is calibrated anew
    identity_window_s: float = 2.0   # the fit's identity is averaged over this long (one frame's is noisy)
    identity_change: float = 3.0     # that average this far from the calibrated one (RMS, in the driver's own
                                     # spreads, measured over the calibration)…
    identity_change_s: float = 2.0   # …for this long: another driver, calibrate anew
    default_open: float = 0.28       # open-eye openness before calibration (face/eyes.py: ≈0.2–0.35 open)
    # Eyes (PERCLOS: Wierwille et al. 1994 / FHWA; microsleep and blink duration: the fatigue literature)
    closed_ratio: float = 0.45       # eyes closed below this share of the driver's open openness
    reopen_ratio: float = 0.7        # …and open again above this one (a closure is not split by noise;
                                     # chosen on validation drives 501–502: 0.6 split closures at 20° of yaw)
    closed_width: float = 0.08       # closed_prob's logistic width, in the same ratio
    blink_max_s: float = 0.5         # a closure shorter than this is a blink (blinks: 0.1–0.4 s)
    microsleep_s: float = 1.0        # eyes closed this long: a `microsleep` event
    perclos_window_s: float = 60.0   # PERCLOS over a sliding minute
    perclos_threshold: float = 0.15  # `drowsiness` (cause perclos) from this share of closed time
    perclos_min_readable: float = 0.5  # of the window with readable eyes, or no PERCLOS
    blink_drift: float = 1.5         # `drowsiness` (cause blink_duration): mean blink this many times the calibrated one…
    blink_drift_min: int = 5         # …over at least this many blinks in the window
    # Attention (Euro NCAP 2026 driver state monitoring; EU ADDW, regulation 2023/2590)
    road_yaw_deg: float = 20.0       # road zone: gaze within ± this of the neutral, left and right…
    road_up_deg: float = 12.0        # …this far above it…
    road_down_deg: float = 15.0      # …and this far below it
    eyes_max_head_yaw_deg: float = 30.0  # the eyes' gaze is used up to this head yaw, the head's beyond
    distraction_s: float = 3.0       # off the road this long at once: `distraction` (Euro NCAP: long distraction)
    glance_end_s: float = 0.3        # back on the road this long ends a glance (a blink or a noisy frame does not)
    time_sharing_window_s: float = 30.0  # `time_sharing`: glances away adding up to…
    time_sharing_s: float = 10.0         # …this much within the window (Euro NCAP: visual time-sharing)
    # Presence
    no_face_s: float = 2.0           # no face this long: `no_face`
    eyes_unseen_s: float = 3.0       # a face whose eyes cannot be read this long: `eyes_unseen`

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"driver-monitor setting {f.name} must be positive, got {value}")
        if not self.closed_ratio < self.reopen_ratio:
            raise ValueError(f"closed_ratio ({self.closed_ratio}) must be below reopen_ratio ({self.reopen_ratio})")
        if self.provisional_s > self.calibration_s:
            raise ValueError(f"provisional_s ({self.provisional_s}) must not exceed calibration_s ({self.calibration_s})")


def parse_settings(pairs) -> DmsSettings:
    """["KEY=VALUE", …] → DmsSettings; ValueError naming the key or value that is wrong."""
    known = {f.name: f.type for f in fields(DmsSettings)}
    changes = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise ValueError(f"--dms {pair!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        try:
            changes[key] = int(text) if known[key] == "int" else float(text)
        except ValueError:
            raise ValueError(f"--dms {pair!r}: {text!r} is not a number") from None
    return replace(DmsSettings(), **changes)


def describe_settings() -> str:
    """One line per setting with its default, for --dms-help."""
    return "\n".join(f"{f.name} = {f.default}" for f in fields(DmsSettings))
