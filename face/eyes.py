"""Eye openness and gaze from one frame's FaceMesh landmarks and the fitted head pose (no model of its own).

Eyes are the subject's: the right eye shows on the image's left. Angles follow face.fit: yaw > 0
looks towards the image's right, pitch > 0 looks down, degrees.

- openness: mean lid gap over the eye's corner-to-corner width (the eye aspect ratio), each divided
  by how much the head pose foreshortens it in the image; ≈0.2–0.35 open, near 0 closed.
- gaze: the iris centre taken as a point on the eyeball, whose centre sits at a fixed place behind
  the corners (anatomical averages, not fitted per driver); gives the eye's direction in camera
  terms, and through the head rotation the eye-in-head direction.
"""
import math
from dataclasses import dataclass

import numpy as np

from face.fit import rotation_from_angles

# From mediapipe 0.10.21's FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE (face_mesh_connections): each
# eye's contour from the outer corner to the inner one, along the upper lid and along the lower lid
# (tests/face/test_eyes.py checks them against those sets).
RIGHT_EYE = dict(outer=33, inner=133, upper=(246, 161, 160, 159, 158, 157, 173),
                 lower=(7, 163, 144, 145, 153, 154, 155), iris=468)
LEFT_EYE = dict(outer=263, inner=362, upper=(466, 388, 387, 386, 385, 384, 398),
                lower=(249, 390, 373, 374, 380, 381, 382), iris=473)
LID_PAIRS = slice(2, 5)  # the three middle upper/lower pairs: the corners' pairs barely open
# Every point eye_state reads, the two irises last.
_POINTS = sorted({i for eye in (LEFT_EYE, RIGHT_EYE) for key in ("outer", "inner", "upper", "lower")
                  for i in (eye[key] if isinstance(eye[key], tuple) else (eye[key],))}) + [
    LEFT_EYE["iris"], RIGHT_EYE["iris"]]
# Eyeball geometry in units of half the corner-to-corner width (≈1.45 cm): the iris centre turns on
# a circle of ≈1.0 cm about the eyeball centre, which lies ≈0.3 cm behind the corners' midpoint and
# ≈1.5 mm above it (the rise: 0.1 reads the eight test photos' camera-facing people at ≈0° pitch
# instead of 9° up).
IRIS_RADIUS = 0.7
EYEBALL_DEPTH = 0.2
EYEBALL_RISE = 0.1
HIDDEN_TURN_DEG = 45.0  # head turned further than this away from an eye: that eye is unreliable
CLOSED = 0.1            # openness below this: the iris is covered, no gaze from that eye


@dataclass(frozen=True)
class EyeState:
    """Per-frame eye signals. Gazes are (yaw, pitch) in degrees or None; `*_visible` is False when
    the head is turned more than 45° away from that eye (its openness and gaze then unreliable)."""

    openness_left: float
    openness_right: float
    left_visible: bool
    right_visible: bool
    gaze_left: tuple | None = None         # eye in head
    gaze_right: tuple | None = None
    gaze_yaw: float | None = None          # both eyes combined, eye in head
    gaze_pitch: float | None = None
    camera_gaze_yaw: float | None = None   # combined, in camera terms (head pose + eye in head)
    camera_gaze_pitch: float | None = None


def eye_state(landmarks: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> EyeState | None:
    """EyeState from N×2 (or N×3) frame-pixel FaceMesh landmarks and the head pose (face.fit's
    angles); no gaze without the 478-point mesh's irises; None if an eye is degenerate.

    Plain float arithmetic on the ~30 points it reads: it runs on every frame, where numpy's per-call
    cost on 2-vectors was most of its time (measured on one machine: 0.19 ms a frame, 0.07 now)."""
    landmarks = np.asarray(landmarks)
    has_irises = len(landmarks) > max(LEFT_EYE["iris"], RIGHT_EYE["iris"])
    # Camera x, y (y up) of the points read, as Python floats.
    wanted = _POINTS if has_irises else _POINTS[:-2]
    xy = landmarks[wanted, :2].astype(np.float64).tolist()
    points = {index: (x, -y) for index, (x, y) in zip(wanted, xy)}
    rotation = rotation_from_angles(yaw, pitch, roll).tolist()
    across = math.hypot(rotation[0][0], rotation[1][0])  # image length of a unit head-x (eye width) vector
    down = math.hypot(rotation[0][1], rotation[1][1])    # and of a unit head-y (lid gap) vector
    if min(across, down) < 1e-3:
        return None
    eyes = {}
    for name, eye in (("left", LEFT_EYE), ("right", RIGHT_EYE)):
        width = _distance(points[eye["outer"]], points[eye["inner"]])
        if width < 1e-6:
            return None
        pairs = zip(eye["upper"][LID_PAIRS], eye["lower"][LID_PAIRS])
        gaps = [_distance(points[u], points[d]) for u, d in pairs]
        openness = float((sum(gaps) / len(gaps) / down) / (width / across))
        gaze = None
        if has_irises and openness >= CLOSED:
            gaze = _eye_direction(points, eye, width / across, rotation)
        eyes[name] = (openness, gaze)
    # yaw > 0 turns the nose towards the image's right, the left eye away from the camera.
    left_visible, right_visible = yaw < HIDDEN_TURN_DEG, yaw > -HIDDEN_TURN_DEG
    found = [(eyes[name][1], seen) for name, seen in (("left", left_visible), ("right", right_visible))
             if eyes[name][1] is not None]
    gazes = [g for g, seen in found if seen] or [g for g, _ in found]  # the visible eyes, else any
    state = dict(openness_left=eyes["left"][0], openness_right=eyes["right"][0],
                 left_visible=bool(left_visible), right_visible=bool(right_visible))
    for name in ("left", "right"):
        if eyes[name][1] is not None:
            state[f"gaze_{name}"] = _angles(_in_head(rotation, eyes[name][1]))
    if gazes:
        camera = [sum(g[k] for g in gazes) / len(gazes) for k in range(3)]
        length = math.sqrt(sum(c * c for c in camera))
        camera = [c / length for c in camera]
        state["gaze_yaw"], state["gaze_pitch"] = _angles(_in_head(rotation, camera))
        state["camera_gaze_yaw"], state["camera_gaze_pitch"] = _angles(camera)
    return EyeState(**state)


def _distance(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _in_head(rotation, direction):
    """Rᵀ·direction: a camera-frame direction in head terms."""
    return [sum(rotation[i][k] * direction[i] for i in range(3)) for k in range(3)]


def _eye_direction(points, eye, true_width, rotation):
    """Unit gaze vector in the camera frame (x right, y up, z towards the camera) from the iris centre.

    true_width: the eye's corner-to-corner width in pixels with the foreshortening undone; half of
    it is the unit of the eyeball geometry."""
    unit = true_width / 2.0
    (ox, oy), (ix, iy) = points[eye["outer"]], points[eye["inner"]]
    # The eyeball's centre: head y up, z out.
    ex = (ox + ix) / 2.0 + unit * (EYEBALL_RISE * rotation[0][1] - EYEBALL_DEPTH * rotation[0][2])
    ey = (oy + iy) / 2.0 + unit * (EYEBALL_RISE * rotation[1][1] - EYEBALL_DEPTH * rotation[1][2])
    px, py = points[eye["iris"]]
    sx, sy = (px - ex) / (unit * IRIS_RADIUS), (py - ey) / (unit * IRIS_RADIUS)
    norm = math.hypot(sx, sy)
    if norm > 1.0:   # iris further out than the eyeball allows: clamp to looking sideways
        sx, sy, norm = sx / norm, sy / norm, 1.0
    return [sx, sy, math.sqrt(max(1.0 - norm ** 2, 0.0))]


def _angles(direction):
    """(yaw, pitch) in degrees of a direction (x right, y up, z towards the camera): the angles whose
    rotation_from_angles(yaw, pitch, 0) turns (0, 0, 1) onto it."""
    yaw = math.degrees(math.atan2(direction[0], direction[2]))
    pitch = math.degrees(math.asin(min(max(-direction[1], -1.0), 1.0)))
    return float(yaw), float(pitch)
