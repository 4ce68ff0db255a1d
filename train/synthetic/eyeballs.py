"""The synthetic driver's eyes: eyelids that shut, and eyeballs that look around.

- Eyelids (`lid_weights`, `close_lids`): shutting moves the whole upper lid — FaceMesh's seven
  upper-lid vertices (face.eyes RIGHT_EYE/LEFT_EYE `upper`) — onto the paired lower-lid vertices
  (a little below them: MEET_BELOW), the skin above following and fading out below the brow; the
  opening's triangles then have no area, so nothing of the eyeball shows. The upper lid also
  follows the eye up and down (`lid_closure`).
- Eyeballs (`EyeDrawer`): a sphere of EYEBALL_RADIUS_CM behind each opening, turned by the gaze
  (yaw, pitch: eye in head, the head pose's sign conventions: yaw > 0 towards the image's right,
  pitch > 0 down). What the opening shows is drawn per pixel: the sclera shaded as a sphere under
  the on-axis illuminator, the iris as a flat disk in the limbus plane, the pupil in it.
- Eye skin (`eye_look`): the photo textures have their own irises, lashes and eye shadow painted
  round the eyes; with moving eyes these are repainted as plain skin with lash lines, so that the
  lids uncover only the drawn eyeball and a shut eye shows lid skin and lashes.

Units are cm in the model frame (x to the image's right, y up, z towards the camera).
"""
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from face.eyes import LEFT_EYE, RIGHT_EYE
from face.fit import rotation_from_angles

LID_SKIN_CM = 2.0           # shutting, the upper lid's skin moves up to this far above its margin (not the brow)
LOWER_LID_SKIN_CM = 1.0     # and the lower lid's down to this far below its margin
# The lids meet this fraction of their gap below the open lower lid (≈2 mm, the lower lid giving
# way): where they meet at the lower lid, FaceMesh reads a shut eye's gap as ≈40 % of an open
# one's (frontal), meeting lower as ≈30 % (it anchors the lower lid on the skin below it).
MEET_BELOW = 0.2
EYEBALL_RADIUS_CM = 1.2     # anatomical averages
IRIS_RADIUS_CM = 0.6
PUPIL_RADIUS_CM = 0.22      # a dark cabin: a wide pupil
LIMBUS_CM = float(np.sqrt(EYEBALL_RADIUS_CM ** 2 - IRIS_RADIUS_CM ** 2))  # iris plane from the centre
# The eyeball's centre from the midpoint of the eye's corners: centred across, the iris centred in
# the mean face's lid opening when looking ahead (0.25 cm up), 0.3 cm behind the corners (the
# limbus then sits just ahead of the lids, as the cornea bulges through them).
CENTRE_FROM_CORNERS_CM = np.array([0.0, 0.25, -0.3])
MEAN_LID_GAP_CM = 0.95      # the mean face's mid-lid gap
SKIN_GROW_PX = 8            # atlas px (≈0.6 cm) around the opening repainted as skin (the photos' eye shadow)


def _eyes():
    return RIGHT_EYE, LEFT_EYE


def contour(eye: dict) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower): the eye's 9 lid-contour vertices each, outer corner to inner corner (the
    corners in both), paired in order."""
    return (np.array([eye["outer"], *eye["upper"], eye["inner"]]),
            np.array([eye["outer"], *eye["lower"], eye["inner"]]))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def lid_weights(mesh: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per eye (right, left): (upper, lower, weights) from `mesh` (the model's mean face, V×3 cm).
    weights: V×9, how much of each contour pair's gap (lower − upper, taken on a frame's own mesh)
    a vertex moves as the eye shuts: 1 + MEET_BELOW on the upper lid, fading (smoothstep) with the
    height above it over LID_SKIN_CM; MEET_BELOW on the lower lid, fading with the depth below it
    over LOWER_LID_SKIN_CM; 0 beyond the corners (whose gap is 0). The fades are gentle enough that
    the skin above does not fold over for gaps below LID_SKIN_CM / (1.5 (1 + MEET_BELOW)) ≈ 1.1 cm."""
    out = []
    for eye in _eyes():
        upper, lower = contour(eye)
        order = np.argsort(mesh[upper, 0])  # np.interp wants increasing x
        xs = mesh[upper[order], 0]
        # Along the lids: hat functions over the contour's x (clamped to the corners beyond them).
        along = np.stack([np.interp(mesh[:, 0], xs, np.eye(len(xs))[k]) for k in np.argsort(order)], axis=1)
        # Across: the upper lid and the skin above it, the lower lid and the skin below it.
        above = mesh[:, 1] - np.interp(mesh[:, 0], xs, mesh[upper[order], 1])
        below = np.interp(mesh[:, 0], xs, mesh[lower[order], 1]) - mesh[:, 1]
        upper_skin = np.where(above < -1e-6, 0.0, 1.0 - _smoothstep(above / LID_SKIN_CM))
        lower_skin = np.where(below < -1e-6, 0.0, 1.0 - _smoothstep(below / LOWER_LID_SKIN_CM))
        across = (1.0 + MEET_BELOW) * upper_skin + MEET_BELOW * lower_skin
        out.append((upper, lower, along * across[:, None]))
    return out


def close_lids(vertices: np.ndarray, weights: list, closed) -> np.ndarray:
    """`vertices` (V×3) with the lids shut by `closed` (0 open … 1 shut; one value or (right, left))."""
    for amount, (upper, lower, w) in zip(np.broadcast_to(closed, 2), weights):
        if amount != 0:  # below 0: wider open (looking up)
            # This frame's own gaps: shut means shut whatever the expression.
            vertices = vertices + amount * (w @ (vertices[lower] - vertices[upper]))
    return vertices


def lid_closure(closed, gaze_pitch: float):
    """How far the lids are shut with the upper lid following the eye up or down (it keeps to the
    iris's top: looking down narrows the eye, looking up widens it), given `closed`, the blink's
    own closure (one value or (right, left)) and the eye-in-head pitch in degrees."""
    follow = np.clip(LIMBUS_CM * np.sin(np.radians(gaze_pitch)) / MEAN_LID_GAP_CM, -0.3, 0.8)
    closed = np.asarray(closed, dtype=np.float64)
    return closed + (1.0 - closed) * follow


def gaze_vector(yaw: float, pitch: float) -> np.ndarray:
    """Unit direction (x right, y up, z forward) of a gaze (yaw, pitch) in degrees."""
    return rotation_from_angles(yaw, pitch, 0.0) @ np.array([0.0, 0.0, 1.0])


def angles(direction) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a direction (x right, y up, z forward); inverse of gaze_vector."""
    yaw = np.degrees(np.arctan2(direction[0], direction[2]))
    pitch = np.degrees(np.arcsin(np.clip(-direction[1] / np.linalg.norm(direction), -1.0, 1.0)))
    return float(yaw), float(pitch)


def camera_gaze(head: tuple[float, float, float], gaze: tuple[float, float]) -> tuple[float, float]:
    """The eyes' direction in camera terms, (yaw, pitch) degrees: the eye-in-head `gaze` turned by
    the head pose (yaw, pitch, roll) — as face.eyes defines camera_gaze."""
    return angles(rotation_from_angles(*head) @ gaze_vector(*gaze))


@dataclass
class EyeLook:
    """A driver's moving-eye look (NIR reflectances): the texture with plain skin round the eyes,
    and the eyeball's tones."""

    texture: np.ndarray
    sclera: float
    iris: float
    pupil: float


def eye_look(texture: np.ndarray, skin: float, template_xy: np.ndarray) -> EyeLook:
    """The EyeLook of a driver with NIR `texture` (atlas, grey) and median skin tone `skin`;
    template_xy: V×2 atlas positions of the vertices. Random choices are seeded by the texture
    itself: no random stream of the drive is touched."""
    rng = np.random.default_rng(np.frombuffer(hashlib.sha256(texture.tobytes()).digest(), np.uint32))
    out = texture.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SKIN_GROW_PX + 1,) * 2)
    for eye in _eyes():
        upper, lower = contour(eye)
        ring = np.round(template_xy[np.concatenate([upper, lower[::-1]])] * 16).astype(np.int32)
        hole = np.zeros(texture.shape, np.uint8)
        cv2.fillPoly(hole, [ring], 1, cv2.LINE_AA, shift=4)
        hole = cv2.dilate(hole, kernel).astype(np.float32)
        # Skin from around the hole (a normalised blur of what is outside it), no darker than the
        # median skin: a shut lid is smooth and faces the illuminator (a shadow or a crease above
        # the lash line reads to FaceMesh as an upper lid still open).
        keep = 1.0 - hole
        fill = cv2.GaussianBlur(texture * keep, (0, 0), 6) / np.maximum(cv2.GaussianBlur(keep, (0, 0), 6), 1e-3)
        soft = cv2.GaussianBlur(hole, (0, 0), 1.5)
        out = out * (1 - soft) + np.maximum(fill, skin) * soft
        # Upper lashes: a dark crescent on the lid's skin side of its margin (what a shut eye
        # shows), thickest mid-lid; atlas y runs down, so the lid's skin is above. A faint lower one.
        margin = template_xy[upper]
        taper = np.sin(np.linspace(0, np.pi, len(upper))) ** 0.7
        crescent = np.concatenate([margin + [0.0, 0.5], (margin - np.outer(2.5 * taper, [0.0, 1.0]))[::-1]])
        for outline, darkness, fill_it in ((crescent, rng.uniform(0.8, 0.9), True), (template_xy[lower], 0.3, False)):
            lash = np.zeros(texture.shape, np.float32)
            points = [np.round(outline * 16).astype(np.int32)]
            if fill_it:
                cv2.fillPoly(lash, points, 1.0, cv2.LINE_AA, shift=4)
            else:
                cv2.polylines(lash, points, False, 1.0, 1, cv2.LINE_AA, shift=4)
            out *= 1.0 - darkness * cv2.GaussianBlur(lash, (0, 0), 0.7)
    # NIR: the sclera about as bright as skin, the iris darker, the pupil dark.
    return EyeLook(texture=np.clip(out, 0, 1).astype(np.float32), sclera=float(skin * rng.uniform(1.0, 1.2)),
                   iris=float(skin * rng.uniform(0.3, 0.5)), pupil=0.04)


class EyeDrawer:
    """Eyeballs behind a posed face: which pixels an opening shows, and what they show."""

    @staticmethod
    def centres(vertices: np.ndarray) -> np.ndarray:
        """2×3 eyeball centres (right, left) for a frame's vertices (cm, model frame): fixed to the
        eye corners, which closing the lids does not move."""
        return np.stack([(vertices[e["outer"]] + vertices[e["inner"]]) / 2 + CENTRE_FROM_CORNERS_CM
                         for e in _eyes()])

    @staticmethod
    def openings(num_vertices: int) -> np.ndarray:
        """V×2 per-vertex indicators of the right and left eye's lid contour: interpolated over the
        raster, ≈1 only inside the opening (its triangles join contour vertices alone)."""
        out = np.zeros((num_vertices, 2), np.float32)
        for k, eye in enumerate(_eyes()):
            out[np.concatenate(contour(eye)), k] = 1.0
        return out

    @staticmethod
    def shade(xy: np.ndarray, centre: np.ndarray, iris_centre: np.ndarray, scale: float,
              look: EyeLook) -> np.ndarray:
        """Reflectance × on-axis light of the eyeball at pixels `xy` (N×2 frame px). centre,
        iris_centre: the posed eyeball centre and iris (limbus plane) centre in frame px (x, y down,
        z nearer-smaller); scale: px per cm."""
        radius = EYEBALL_RADIUS_CM * scale
        d2 = ((xy - centre[:2]) ** 2).sum(axis=1) / radius ** 2
        facing = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))  # the sphere's normal towards the camera
        value = np.full(len(xy), look.sclera)
        normal = (iris_centre - centre) / np.linalg.norm(iris_centre - centre)
        if normal[2] < -0.05:  # the iris faces the camera (nearer is smaller z)
            # Where the view ray through each pixel meets the iris plane, and how far from its centre.
            offset = xy - iris_centre[:2]
            depth = -(normal[:2] * offset).sum(axis=1) / normal[2]
            r = np.sqrt((offset ** 2).sum(axis=1) + depth ** 2) / scale
            pixel = 1.0 / scale  # one pixel in cm: soft edges
            in_iris = np.clip((IRIS_RADIUS_CM - r) / pixel + 0.5, 0.0, 1.0)
            in_pupil = np.clip((PUPIL_RADIUS_CM - r) / pixel + 0.5, 0.0, 1.0)
            rim = np.clip(r / IRIS_RADIUS_CM, 0.0, 1.0) ** 4  # a darker limbal ring
            iris = look.iris * (1.0 - 0.4 * rim) * (1 - in_pupil) + look.pupil * in_pupil
            value = value * (1 - in_iris) + iris * in_iris
        return value * (0.6 + 0.4 * facing ** 0.7)  # rounder towards the corners
