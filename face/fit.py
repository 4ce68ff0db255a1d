"""Fit the bilinear model to one frame's 3-D landmarks: pose, expression, and a pooled identity.

Landmarks arrive in frame pixels (x right, y down, z nearer-is-smaller). They are turned into a
camera frame with y up and z towards the viewer, so that P ≈ s·R·M + t for model vertices M.
Regularised alternating least squares: similarity pose → expression weights → identity weights,
repeated. The identity is slowly varying, so its normal equations are pooled over the frames of one
driver with exponential forgetting, and on a stream solved only every IDENTITY_EVERY frames (see
Fitter); `reset()` starts a new driver.

Which landmarks to trust (measured on synthetic drivers with known geometry, benchmarks/face_quality):
- the pose comes from the facial features alone (eyes, brows, nose, lips: FEATURE_LANDMARKS),
  mostly from their x and y. The cheek and outline points carry no texture of their own: on a
  turned head FaceMesh slides them towards the silhouette and the ear, and its depth (z) shrinks
  as the head turns (×0.82 at 45°); both pull the fitted yaw towards frontal (−11° at 45° with all
  points in 3-D, −5° with the features, depth faded out beyond 20° of yaw).
- the shape is fitted to every point, the featureless ones down-weighted (OTHER_WEIGHT).

Angles: R = Rz(roll)·Ry(yaw)·Rx(pitch), degrees. yaw > 0 turns the nose towards the image's right,
pitch > 0 tips it down, roll > 0 turns the face counter-clockwise on screen.

Pose uncertainty (`Fit.angles_std`, `pose_std_terms`): the pose solve's least-squares covariance
σ²·(JᵀWJ)⁻¹ at the fitted pose, σ² the weighted residual variance of the features, plus how far the
pose would move if the features that face away from the camera were dropped (FaceMesh guesses
those), calibrated on rendered NIR drivers with known pose (see POSE_STD_*).
"""
import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy.linalg import blas, lapack

from face.bilinear import BilinearModel
from face.render import incidence_matrix, vertex_normals

Z_WEIGHT = 0.3  # mediapipe's depth is a network's guess: trust it less than x and y (shape only)
OTHER_WEIGHT = 0.3  # weight of a featureless (cheek, outline) landmark in the shape, a feature's is 1
POSE_STEPS = 2  # Gauss-Newton steps refining the pose
# The depth axis's weight in the pose (x and y weigh 1): FaceMesh's depth helps the pitch of a
# frontal face, but shrinks as the head turns (its scale 1.00, 0.95, 0.86, 0.82 of the truth at yaw
# 0, 15, 30, 45°) and then drags the yaw towards frontal; so it fades out by DEPTH_FADE_DEG of yaw.
POSE_DEPTH_WEIGHT = 0.3
DEPTH_FADE_DEG = 20.0
# On a stream the pooled identity is solved every IDENTITY_EVERY frames, not every frame (see Fitter).
IDENTITY_EVERY = 4
MAX_ROLL_DEG = 90.0  # a driver's head never rolls this far: a warm-started pose beyond it is solved afresh
# Pose uncertainty: std² = (INFLATION·least-squares std)² + (HIDDEN·shift without hidden features)²
# + PITCH_FLOOR² (pitch only), in degrees. The three numbers maximise the Gaussian likelihood of the
# errors of 960 rendered NIR frames (16 drivers, |yaw| 0–60° evenly, pitch ±20°, roll ±10°, static
# fits; errors less each driver's median, the offset of its face's own geometry). Fitted on 8
# drivers, they put 66–74 % / 94–96 % of the other 8's errors within 1 / 2 std per angle (a Gaussian:
# 68 / 95); benchmarks/face_quality.py checks it on drivers of its own (pose_std_calibration).
# - INFLATION: the least-squares std treats the ~116 feature residuals as independent, but
#   FaceMesh's errors and the model's shape mismatch are smooth over the face: the pose errors are
#   ~7× that std, as if there were only a couple of independent points.
# - HIDDEN: on a turned head the far side's features are FaceMesh's guesses; the pose shift when they
#   are dropped measures how much the fit leans on them (it follows the yaw under-read beyond 45°).
# - PITCH_FLOOR: pitch error that the residuals do not show, most of it on near-frontal faces
#   (whose pitch rests on the depth profile: FaceMesh's depth and the fitted nose).
POSE_STD_INFLATION = 6.9
POSE_STD_HIDDEN = 2.5
POSE_STD_PITCH_FLOOR = 2.8
# A feature counts as seen from the cosine of the angle between its (mean-face) normal and the view:
# not at all below the first value, fully above the second.
POSE_STD_FACING = (0.2, 0.5)
# MediaPipe FaceMesh points on the lips, eyes, eyebrows and nose (its FACEMESH_LIPS, _LEFT_EYE,
# _RIGHT_EYE, _LEFT_EYEBROW, _RIGHT_EYEBROW and _NOSE contours): drawn on texture, so found where
# the image shows them.
FEATURE_LANDMARKS = (
    0, 1, 2, 4, 5, 6, 7, 13, 14, 17, 19, 33, 37, 39, 40, 45, 46, 48, 52, 53, 55, 61, 63, 64, 65, 66, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 94, 95, 97, 98, 105, 107, 115, 133, 144, 145, 146, 153, 154, 155, 157, 158,
    159, 160, 161, 163, 168, 173, 178, 181, 185, 191, 195, 197, 220, 246, 249, 263, 267, 269, 270, 275, 276,
    278, 282, 283, 285, 291, 293, 294, 295, 296, 300, 308, 310, 311, 312, 314, 317, 318, 321, 324, 326, 327,
    334, 336, 344, 362, 373, 374, 375, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 402, 405, 409, 415,
    440, 466)


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, the inverse of rotation_from_angles."""
    r = rotation
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


_FLIP_Y_Z = np.array([1.0, -1.0, -1.0])


def image_to_camera(points: np.ndarray) -> np.ndarray:
    """Frame-pixel landmarks (x, y down, z nearer-smaller) → camera frame (x, y up, z to viewer)."""
    return np.asarray(points, dtype=np.float64) * _FLIP_Y_Z


def camera_to_image(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def similarity(model_points: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None,
               steps: int = 0, depth_weight: float = 1.0, depth_fade_deg: float = 0.0,
               start: np.ndarray | None = None):
    """Scale, rotation, translation with target ≈ s·R·model + t, each point weighted by `weights`.

    The rotation starts from weighted Umeyama on all three axes, the scale and translation are then
    fitted on x and y alone. With `steps` > 0, that many Gauss-Newton steps refine all of them with
    the depth axis weighted by `depth_weight` (a closed form cannot weight an axis without biasing
    the rotation; an iterative one can): the landmarks' depth is the least reliable axis. With
    `depth_fade_deg`, the depth weight falls linearly to 0 at that yaw of the starting rotation.
    `start`: a starting rotation (the last frame's on a stream) instead of Umeyama's."""
    n = len(model_points)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / max(float(w.sum()), 1e-12)
    mu_m, mu_t = w @ model_points, w @ target
    x, y = model_points - mu_m, target - mu_t
    if start is None:
        cov = (y * w[:, None]).T @ x
        u, sv, vt = np.linalg.svd(cov)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rotation = u @ d @ vt
    else:
        rotation = np.asarray(start, dtype=np.float64)
    rx = x @ rotation.T
    scale = float((w[:, None] * y[:, :2] * rx[:, :2]).sum() / max((w[:, None] * rx[:, :2] ** 2).sum(), 1e-12))
    centre = mu_t.copy()  # where the weighted centroid of the model lands
    if steps and depth_fade_deg > 0:
        depth_weight = _faded(depth_weight, depth_fade_deg, rotation)
    if steps:
        used = w > 0
        x, y, w = x[used], y[used], w[used]
        axis_w = np.concatenate([w, w, depth_weight * w])  # rows axis-major: all x, all y, all z
        n = len(x)
        jac = np.zeros((3 * n, 7))
        jac[:n, 4] = jac[n:2 * n, 5] = jac[2 * n:, 6] = 1.0
    for _ in range(steps):
        # Unknowns: a small rotation ω (R ← exp(ω)·R), the scale and the centre's shift; residuals
        # s·R·x + centre − target per point and axis (target − centre = y − shift), d(R·x)/dω = ω × R·x.
        rx = x @ rotation.T
        srx = scale * rx
        jac[:n, 1], jac[:n, 2] = srx[:, 2], -srx[:, 1]
        jac[n:2 * n, 0], jac[n:2 * n, 2] = -srx[:, 2], srx[:, 0]
        jac[2 * n:, 0], jac[2 * n:, 1] = srx[:, 1], -srx[:, 0]
        jac[:, 3] = rx.T.reshape(-1)
        residual = (srx + (centre - mu_t) - y).T.reshape(-1)
        weighted = jac.T * axis_w
        normal = weighted @ jac
        normal[6, 6] += 1e-9  # the depth offset is free when the depth weight is 0
        step = np.linalg.solve(normal, -(weighted @ residual))
        angle = float(np.linalg.norm(step[:3]))
        if angle > 1e-12:
            k = _cross_matrix(step[:3] / angle)
            rotation = (np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k) @ rotation
        scale += float(step[3])
        centre += step[4:]
    translation = centre - scale * rotation @ mu_m
    return scale, rotation, translation


def warm_similarity(model_points: np.ndarray, target: np.ndarray, start: np.ndarray, steps: int = 1,
                    depth_weight: float = 1.0, depth_fade_deg: float = 0.0):
    """similarity() with every point weighted alike, from `start` (the last frame's rotation on a
    stream), compiled: the same scale fit and Gauss-Newton steps in one pass of loops, for the stream's
    every frame, where similarity()'s two dozen small numpy calls cost ~0.1 ms. Its sums run in another
    order, so its results differ from similarity()'s in the last bits; lone images keep similarity(),
    whose bits the synthetic data (texture atlases, target renders) were made with."""
    rotation = np.ascontiguousarray(start, dtype=np.float64)
    if steps and depth_fade_deg > 0:
        depth_weight = _faded(depth_weight, depth_fade_deg, rotation)
    rotation, scale, translation = _warm_similarity(np.ascontiguousarray(model_points, dtype=np.float64),
                                                    np.ascontiguousarray(target, dtype=np.float64), rotation,
                                                    float(depth_weight), int(steps))
    return scale, rotation, translation


@numba.njit(cache=True, nogil=True)
def _warm_similarity(model_points, target, rotation, depth_weight, steps):
    """warm_similarity's loops. Unknowns: a small rotation ω (R ← exp(ω)·R), the scale and the
    centroid's shift; residuals s·R·x + shift − y per point and axis for the centred points x, y,
    d(R·x)/dω = ω × R·x; the depth axis weighs `depth_weight`."""
    n = model_points.shape[0]
    mu_m, mu_t = np.zeros(3), np.zeros(3)
    for i in range(n):
        for a in range(3):
            mu_m[a] += model_points[i, a] / n
            mu_t[a] += target[i, a] / n
    x, y = model_points - mu_m, target - mu_t
    rotation = rotation.copy()
    numerator, denominator = 0.0, 0.0  # the scale, on x and y alone
    for i in range(n):
        for a in range(2):
            rx = rotation[a, 0] * x[i, 0] + rotation[a, 1] * x[i, 1] + rotation[a, 2] * x[i, 2]
            numerator += y[i, a] * rx
            denominator += rx * rx
    scale = numerator / max(denominator, 1e-12)
    shift = np.zeros(3)
    row = np.zeros(7)
    for _ in range(steps):
        normal = np.zeros((7, 7))
        gradient = np.zeros(7)
        for i in range(n):
            rx0 = rotation[0, 0] * x[i, 0] + rotation[0, 1] * x[i, 1] + rotation[0, 2] * x[i, 2]
            rx1 = rotation[1, 0] * x[i, 0] + rotation[1, 1] * x[i, 1] + rotation[1, 2] * x[i, 2]
            rx2 = rotation[2, 0] * x[i, 0] + rotation[2, 1] * x[i, 1] + rotation[2, 2] * x[i, 2]
            s0, s1, s2 = scale * rx0, scale * rx1, scale * rx2
            for a in range(3):
                # The Jacobian's row for this axis: [ω × s·R·x]_a, R·x, the unit shift.
                row[:] = 0.0
                if a == 0:
                    row[1], row[2], row[3], row[4] = s2, -s1, rx0, 1.0
                    residual, weight = s0 + shift[0] - y[i, 0], 1.0
                elif a == 1:
                    row[0], row[2], row[3], row[5] = -s2, s0, rx1, 1.0
                    residual, weight = s1 + shift[1] - y[i, 1], 1.0
                else:
                    row[0], row[1], row[3], row[6] = s1, -s0, rx2, 1.0
                    residual, weight = s2 + shift[2] - y[i, 2], depth_weight
                for j in range(7):
                    gradient[j] += weight * row[j] * residual
                    for k in range(7):
                        normal[j, k] += weight * row[j] * row[k]
        normal[6, 6] += 1e-9 * n  # as similarity()'s 1e-9 with weights summing to 1
        step = np.linalg.solve(normal, -gradient)
        angle = np.sqrt(step[0] ** 2 + step[1] ** 2 + step[2] ** 2)
        if angle > 1e-12:
            kx, ky, kz = step[0] / angle, step[1] / angle, step[2] / angle
            k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
            rotation = (np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)) @ rotation
        scale += step[3]
        shift += step[4:]
    return rotation, scale, mu_t + shift - scale * (rotation @ mu_m)


def _faded(depth_weight, fade_deg, rotation):
    """The depth axis's weight at this rotation: falling linearly to 0 at `fade_deg` of yaw."""
    yaw = math.degrees(math.asin(min(max(-float(rotation[2, 0]), -1.0), 1.0)))
    return depth_weight * max(0.0, 1.0 - abs(yaw) / fade_deg)


def _moment_map():
    """The pose's normal equations as one linear map of a point set's moments.

    Unknowns: a small rotation ω (R ← exp(ω)·R), a relative scale change, the centre. A point's
    residual r = s·R·x + t − y has the 3 × 7 Jacobian J = [−[p]×, p, I] with p = s·R·x, linear in
    z = (p, 1): J = Σₐ zₐ·Gₐ. So with D = diag(1, 1, depth) the axis weights and u a point weight,
    Σ u·JᵀDJ = Σₐᵦ (Σ u·zₐ·zᵦ)·GₐᵀDGᵦ, Σ u·JᵀDr = Σₐ GₐᵀD·(Σ u·zₐ·r) and Σ u·rᵀDr are all linear
    in the 7 × 7 moment matrix Σ u·m·mᵀ of m = (p, 1, r). Returns the map, 49 × 114: moments
    (flattened) → [normal matrix (49), gradient (7), weighted squares (1)] for the x and y axes,
    then the same for the depth axis alone."""
    g = np.zeros((4, 3, 7))
    for a in range(3):
        g[a, :, :3] = -_cross_matrix(np.eye(3)[a])
        g[a, a, 3] = 1.0
    g[3, :, 4:] = np.eye(3)
    out = np.zeros((7, 7, 2, 57))
    for k, axes in enumerate(([1.0, 1.0, 0.0], [0.0, 0.0, 1.0])):
        out[:4, :4, k, :49] = np.einsum("aij,i,bik->abjk", g, axes, g).reshape(4, 4, 49)
        out[:4, 4:, k, 49:56] = np.einsum("aij,i->aij", g, axes)
        out[4:, 4:, k, 56] = np.diag(axes)
    return out.reshape(49, 114)


def angle_rates(rotation: np.ndarray) -> np.ndarray:
    """3×3 d(yaw, pitch, roll)/dω (radians) for a small rotation ω applied as R ← exp(ω)·R.
    With R = Rz·Ry·Rx, ω = Rz·ey·d(yaw) + Rz·Ry·ex·d(pitch) + ez·d(roll), inverted in closed form
    (read off R, no trigonometry: this runs on every frame); singular only at ±90° of yaw."""
    sy = -rotation[2, 0]
    cy2 = max(1.0 - sy * sy, 1e-12)
    cr_cy, sr_cy = rotation[0, 0], rotation[1, 0]  # cos(roll)·cos(yaw), sin(roll)·cos(yaw)
    cy = math.sqrt(cy2)
    return np.array([[-sr_cy / cy, cr_cy / cy, 0.0],
                     [cr_cy / cy2, sr_cy / cy2, 0.0],
                     [sy * cr_cy / cy2, sy * sr_cy / cy2, 1.0]])


def pose_std_terms(model_points, target, scale, rotation, translation, facing, depth_weight):
    """(least-squares std, shift without hidden points), each (yaw, pitch, roll) in degrees, of a
    pose with target ≈ s·R·model + t (camera frame, points weighted alike; the depth axis by
    `depth_weight`). facing: per point, the cosine of the angle between its normal and the view.

    The first is √diag of σ²·(JᵀWJ)⁻¹ (σ² the weighted residual variance) mapped onto the angles;
    the second, |the pose step with the points facing away down-weighted − the step with all|: how
    much the pose rests on points the camera barely sees. Both uncalibrated (see POSE_STD_*)."""
    # It runs on every frame, so it goes through the moments (_moment_map): a few small numpy calls,
    # both weightings at once. The rotation's rows of the covariance and of the steps do not depend
    # on how the scale and the centre are parametrised.
    n = len(model_points)
    mapped = _pose_moments(np.ascontiguousarray(model_points, dtype=np.float64),
                           np.ascontiguousarray(target, dtype=np.float64), float(scale),
                           np.ascontiguousarray(rotation, dtype=np.float64), np.asarray(translation, dtype=np.float64),
                           np.ascontiguousarray(facing, dtype=np.float64), *POSE_STD_FACING) @ _MOMENT_MAP
    mapped = mapped[:, :57] + depth_weight * mapped[:, 57:]
    normals = mapped[:, :49].reshape(2, 7, 7)
    normals[:, 6, 6] += 1e-9  # the depth offset is free when the depth weight is 0
    # LAPACK's Cholesky solve directly: numpy.linalg's wrappers cost several times more on 7 × 7.
    # Every point: the inverse's first 3 columns (the rotation's covariance) and the step.
    _, solved, bad = lapack.dposv(normals[0], np.concatenate([_FIRST_THREE, mapped[0, 49:56, None]], axis=1))
    _, step_seen, bad_seen = lapack.dposv(normals[1], mapped[1, 49:56])
    if bad or bad_seen:  # not positive definite: too few points pin the pose down
        return np.full(3, np.inf), np.full(3, np.inf)
    sigma2 = float(mapped[0, 56]) / max((2.0 + depth_weight) * n - 7.0, 1.0)
    rates = angle_rates(rotation)
    formal = np.sqrt(np.abs(((rates @ solved[:3, :3]) * rates).sum(axis=1) * sigma2))
    shift = np.abs(rates @ (step_seen[:3] - solved[:3, 3]))
    return np.degrees(formal), np.degrees(shift)


@numba.njit(cache=True, nogil=True)
def _pose_moments(model_points, target, scale, rotation, translation, facing, facing_lo, facing_hi):
    """The moments Σ u·m·mᵀ (2 × 49) of m = (p, 1, p + t − y), p = s·R·x, for u = 1 (every point) and
    u = how squarely the point faces the camera (0 at `facing_lo`, 1 from `facing_hi` on). Compiled:
    one pass instead of the dozen numpy calls it took on every frame."""
    out = np.zeros((2, 49))
    m = np.empty(7)
    for i in range(model_points.shape[0]):
        for a in range(3):
            p = scale * (rotation[a, 0] * model_points[i, 0] + rotation[a, 1] * model_points[i, 1]
                         + rotation[a, 2] * model_points[i, 2])
            m[a] = p
            m[4 + a] = p + translation[a] - target[i, a]
        m[3] = 1.0
        seen = min(max((facing[i] - facing_lo) / (facing_hi - facing_lo), 0.0), 1.0)
        for a in range(7):
            for b in range(7):
                product = m[a] * m[b]
                out[0, a * 7 + b] += product
                out[1, a * 7 + b] += seen * product
    return out


def calibrated_std(formal, shift) -> tuple[float, float, float]:
    """(yaw, pitch, roll) std in degrees from pose_std_terms' two parts, with the POSE_STD_* calibration;
    a pose nothing pins down gets 180°."""
    out = []
    for f, s, floor in zip(formal, shift, (0.0, POSE_STD_PITCH_FLOOR, 0.0)):
        std = math.sqrt((POSE_STD_INFLATION * f) ** 2 + (POSE_STD_HIDDEN * s) ** 2 + floor ** 2)
        out.append(float(min(std, 180.0)) if math.isfinite(std) else 180.0)
    return tuple(out)


def _cross_matrix(v):
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


_MOMENT_MAP = _moment_map()
_FIRST_THREE = np.eye(7)[:, :3]


def _rotate(basis, rotation):
    """Rotate an axis-major (3L × n) basis: each vertex's x, y, z rows mixed by R."""
    n = basis.shape[1]
    return (rotation @ basis.reshape(3, -1)).reshape(-1, n)


@dataclass
class Fit:
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    w_id: np.ndarray
    w_exp: np.ndarray
    vertices: np.ndarray  # model frame, V×3 (the frontal shape)
    residual: float       # RMS 2-D landmark error / inter-ocular distance
    angles_std: tuple = (np.nan, np.nan, np.nan)  # std of (yaw, pitch, roll), degrees (Fitter.angles_std)

    @property
    def angles(self) -> tuple[float, float, float]:
        return angles_from_rotation(self.rotation)

    def posed(self) -> np.ndarray:
        """Vertices in frame pixels (x, y down, z nearer-smaller), as the landmarks are given."""
        return camera_to_image(self.scale * self.vertices @ self.rotation.T + self.translation)


@dataclass
class _Basis:
    """One identity's mesh basis (axis-major rows × expression weights): every vertex's (float32) and
    the landmarks' (float64); on a stream also the landmarks' Gram blocks B_aᵀPB_b (9 × n_exp², a the
    axis, P the point weights), with which the expression's normal equations at any rotation cost a
    3 × 3 mixing instead of a product over every landmark."""
    w_id: np.ndarray
    full: np.ndarray
    landmarks: np.ndarray
    gram: np.ndarray | None


class Fitter:
    """Fits frames one at a time. A lone image (`pool_identity=False`) gets a few rounds of pose ⇄
    expression ⇄ identity. On a stream each frame starts from the last one's pose and expression,
    and the identity, pooled over the driver's frames, is solved anew every `identity_every`
    frames: each sample weighs that many frames, so the pool keeps its time constant, and the
    frames between reuse the identity's mesh basis and the Gram blocks cached with it, which makes
    their expression solve a few small products instead of two contractions of the whole core.
    Measured on a synthetic drive (benchmarks.face_quality's `video_quality`): see IDENTITY_EVERY."""

    def __init__(self, model: BilinearModel, iterations: int = 2, expression_noise: float = 0.12,
                 identity_noise: float = 0.25, identity_memory: float = 0.95,
                 identity_every: int = IDENTITY_EVERY):
        if int(identity_every) < 1:
            raise ValueError(f"identity_every must be at least 1, got {identity_every}")
        self.model = model
        self.iterations = iterations
        self.expression_noise = expression_noise
        self.identity_noise = identity_noise
        self.identity_memory = identity_memory
        self.identity_every = int(identity_every)
        lv = model.landmark_vertex
        self.landmarks = np.nonzero(lv >= 0)[0]        # detector points used
        self.vertices = lv[self.landmarks]             # their mesh vertices
        v, n_id, n_exp = model.num_vertices, model.num_identity, model.num_expression
        # Rows axis-major (all x, then all y, then all z) so one 3×3 product rotates a basis.
        axis_major = (3 * np.arange(v)[None, :] + np.arange(3)[:, None]).reshape(-1)
        core = model.core[axis_major]                   # 3V × n_id × n_exp, float32
        self._core_by_id = np.ascontiguousarray(core.transpose(0, 2, 1)).reshape(-1, n_id)
        self._rows = (np.arange(3)[:, None] * v + self.vertices[None, :]).reshape(-1)
        self._landmark_core_by_exp = np.ascontiguousarray(core[self._rows]).reshape(-1, n_exp)
        feature = np.isin(self.landmarks, FEATURE_LANDMARKS)
        # Without FaceMesh's numbering (another detector) every point counts as a feature.
        self._feature = feature if feature.sum() >= 6 else np.ones(len(self.landmarks), dtype=bool)
        self._feature_index = np.nonzero(self._feature)[0]
        # A row's weight is its landmark's (features 1, the rest OTHER_WEIGHT) times its axis's.
        self._point_weight = np.where(self._feature, 1.0, OTHER_WEIGHT)
        self._axis_weight = np.array([1.0, 1.0, Z_WEIGHT])
        self._row_weight = (self._axis_weight[:, None] * self._point_weight).reshape(-1)  # axis-major
        self._point_sqrt_weight = np.sqrt(self._point_weight)
        # The mean face's normals at the features (model frame): which of them a pose turns away.
        mesh = model.mesh().astype(np.float64)
        triangles = model.triangles.astype(np.int64)
        normals = vertex_normals(mesh, triangles, incidence_matrix(len(mesh), triangles))
        self._feature_normals = normals[self.vertices[self._feature_index]]
        self._feature_vertices = self.vertices[self._feature_index]
        self._feature_landmarks = self.landmarks[self._feature_index]
        eyes = [i for i in (33, 263) if i < len(lv)]
        self._eye_pair = eyes if len(eyes) == 2 else None
        self.reset()

    def reset(self):
        """Forget the pooled identity (a new driver)."""
        n = self.model.num_identity
        self._id_normal = np.zeros((n, n))
        self._id_rhs = np.zeros(n)
        self.w_id = self.model.identity_mean.astype(np.float64).copy()
        self._last_exp = None
        self._last_rotation = None
        self._frames = 0       # stream frames since the reset
        self._basis = None     # the _Basis of self.w_id, made when first needed

    def _identity_basis(self, w_id) -> "_Basis":
        full = (self._core_by_id @ w_id.astype(np.float32)).reshape(3 * self.model.num_vertices, -1)
        return _Basis(w_id, full, full[self._rows].astype(np.float64), None)

    def _stream_basis(self) -> "_Basis":
        """The pooled identity's basis with its Gram blocks, kept until the identity is solved anew."""
        if self._basis is None or self._basis.w_id is not self.w_id:
            basis = self._identity_basis(self.w_id)
            n_l, n_exp = len(self.vertices), self.model.num_expression
            # Rows: landmarks (scaled by √weight); columns: (axis, expression weight). LAPACK's syrk on its
            # Fortran layout fills the Gram's upper triangle: a fifth of the time of a weighted product.
            scaled = np.asfortranarray((basis.landmarks.reshape(3, n_l, n_exp) * self._point_sqrt_weight[:, None])
                                       .transpose(1, 0, 2).reshape(n_l, 3 * n_exp))
            upper = blas.dsyrk(1.0, scaled, trans=1)
            gram = upper + np.triu(upper, 1).T
            basis.gram = gram.reshape(3, n_exp, 3, n_exp).transpose(0, 2, 1, 3).reshape(9, n_exp * n_exp)
            self._basis = basis
        return self._basis

    def __call__(self, landmarks: np.ndarray, pool_identity: bool = True, rounds: int | None = None) -> Fit:
        """Fit one frame. A round is pose ⇄ expression (twice) then identity; video frames need one
        (the identity is pooled), a lone image a few (`rounds`, default 1 when pooling, else 3)."""
        target = image_to_camera(landmarks[self.landmarks, :3])
        if pool_identity and self._last_exp is not None:
            scale, rotation, translation, w_exp, basis = self._track(target)
        else:
            scale, rotation, translation, w_exp, basis = self._solve_alone(target, pool_identity, rounds)
        n_l, n_v = len(self.vertices), self.model.num_vertices
        shape = (basis.landmarks @ w_exp).reshape(3, n_l).T
        vertices = (basis.full @ w_exp.astype(np.float32)).reshape(3, n_v).T
        projected = scale * shape @ rotation.T + translation
        error = np.sqrt(((projected[:, :2] - target[:, :2]) ** 2).sum(axis=1).mean())
        fit = Fit(scale, rotation, translation, basis.w_id.astype(np.float32), w_exp.astype(np.float32),
                  np.ascontiguousarray(vertices), float(error / self._interocular(landmarks, scale)))
        fit.angles_std = self.angles_std(landmarks, fit)
        return fit

    def _solve_alone(self, target, pool_identity, rounds):
        """A frame without a last one to start from: `rounds` of pose ⇄ expression (twice) then identity,
        from the neutral expression. With `pool_identity` (a stream's first frame) its identity starts the pool."""
        model = self.model
        rounds = (1 if pool_identity else 3) if rounds is None else rounds
        w_id = self.w_id.copy()
        neutral = model.neutral.astype(np.float64)
        w_exp = neutral.copy()
        n_l = len(self.vertices)
        for round_ in range(rounds):
            basis = self._identity_basis(w_id)
            for _ in range(self.iterations):
                shape = (basis.landmarks @ w_exp).reshape(3, n_l).T
                scale, rotation, translation = self._pose(shape, target)
                local = ((target - translation) / scale).T.reshape(-1)  # unscaled camera frame, axis-major
                w_exp = self._solve(_rotate(basis.landmarks, rotation), local, neutral,
                                    model.expression_std, self.expression_noise)
            new_id = self._pool_identity(w_exp, rotation, local, pool=pool_identity and round_ == rounds - 1)
            if round_ < rounds - 1:
                w_id = new_id
        if pool_identity:
            self._last_exp, self._last_rotation = w_exp, rotation
        # The expression moved in the last step: its pose, refitted, goes with it.
        scale, rotation, translation = self._pose((basis.landmarks @ w_exp).reshape(3, n_l).T, target)
        return scale, rotation, translation, w_exp, basis

    def _track(self, target):
        """A stream's next frame: one pose ⇄ expression step from the last frame's (the expression
        barely moves between frames, so the step's pose stands); the identity now and then."""
        model = self.model
        basis = self._stream_basis()
        n_l = len(self.vertices)
        shape = (basis.landmarks @ self._last_exp).reshape(3, n_l).T
        scale, rotation, translation = self._pose(shape, target, self._last_rotation)
        local = ((target - translation) / scale).T  # 3 × L, unscaled camera frame
        normal, rhs = self._expression_equations(basis, rotation, local)
        w_exp = self._solve_normal(normal, rhs, model.neutral, model.expression_std, self.expression_noise)
        self._frames += 1
        if self._frames % self.identity_every == 0:
            self._pool_identity(w_exp, rotation, local.reshape(-1), pool=True)
            self._stream_basis()  # the new identity's basis now: one slow frame in `identity_every`, not two
        self._last_exp, self._last_rotation = w_exp, rotation
        return scale, rotation, translation, w_exp, basis

    def _expression_equations(self, basis, rotation, local):
        """The expression's normal equations at `rotation` for landmarks `local` (3 × L), from the
        basis's Gram blocks: with the rows weighted by W = D ⊗ P (D the axes', P the points'),
        (R·B)ᵀW(R·B) = Σ_ab (RᵀDR)_ab·B_aᵀPB_b and (R·B)ᵀW·y = Bᵀ·vec(P·RᵀD·y), B_a the axis-a rows."""
        weighted_rotation = self._axis_weight[:, None] * rotation  # D·R
        n_exp = self.model.num_expression
        normal = ((rotation.T @ weighted_rotation).reshape(-1) @ basis.gram).reshape(n_exp, n_exp)
        rhs = basis.landmarks.T @ ((weighted_rotation.T @ local) * self._point_weight).reshape(-1)
        return normal, rhs

    def _pool_identity(self, w_exp, rotation, local, pool: bool):
        """The identity's normal equations for this frame's expression and pose (`local`: the landmarks
        axis-major, unscaled camera frame), solved with the driver's pool; with `pool` they join it,
        weighing `identity_every` frames, and the solution becomes the pooled identity."""
        model = self.model
        basis_id = (self._landmark_core_by_exp @ w_exp.astype(np.float32)).reshape(3 * len(self.vertices), -1)
        normal, rhs = self._weighted_normal(_rotate(basis_id.astype(np.float64), rotation), local)
        if not pool:
            return self._solve_normal(normal, rhs, model.identity_mean, model.identity_std, self.identity_noise)
        weight, memory = self.identity_every, self.identity_memory ** self.identity_every
        self._id_normal = memory * self._id_normal + weight * normal
        self._id_rhs = memory * self._id_rhs + weight * rhs
        self.w_id = self._solve_normal(self._id_normal, self._id_rhs, model.identity_mean, model.identity_std,
                                       self.identity_noise)
        return self.w_id

    def angles_std(self, landmarks: np.ndarray, fit: Fit) -> tuple[float, float, float]:
        """Std of the fit's (yaw, pitch, roll) in degrees: pose_std_terms at the fitted pose (the
        features, the depth weight faded at the fitted yaw, as the pose solve fades it), calibrated."""
        shape = fit.vertices[self._feature_vertices]
        target = landmarks[self._feature_landmarks, :3] * _FLIP_Y_Z  # image_to_camera
        facing = self._feature_normals @ fit.rotation[2]  # the normals' camera-frame z
        formal, shift = pose_std_terms(shape, target, fit.scale, fit.rotation, fit.translation, facing,
                                       _faded(POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG, fit.rotation))
        return calibrated_std(formal, shift)

    def _pose(self, shape, target, start=None):
        """Similarity pose from the features. On a stream (`start`: the last frame's rotation) one
        Gauss-Newton step from there suffices."""
        f = self._feature_index
        if start is not None:
            pose = warm_similarity(shape[f], target[f], start, 1, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG)
        else:
            pose = similarity(shape[f], target[f], None, POSE_STEPS, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG)
        if start is not None and abs(angles_from_rotation(pose[1])[2]) > MAX_ROLL_DEG:
            # One step from a last pose that went wrong (a head turned beyond what FaceMesh follows)
            # can stay upside down, and every later frame would start from there: solve afresh.
            pose = similarity(shape[f], target[f], None, POSE_STEPS, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG, None)
        return pose

    def _interocular(self, landmarks, scale):
        if self._eye_pair:
            d = float(np.linalg.norm(landmarks[self._eye_pair[0], :2] - landmarks[self._eye_pair[1], :2]))
            if d > 1e-6:
                return d
        return max(scale, 1e-6)

    def _weighted_normal(self, basis, target):
        weighted = basis * self._row_weight[:, None]
        return weighted.T @ basis, weighted.T @ target

    def _solve(self, basis, target, mean, std, prior):
        normal, rhs = self._weighted_normal(basis, target)
        return self._solve_normal(normal, rhs, mean, std, prior)

    def _solve_normal(self, normal, rhs, mean, std, noise):
        # MAP estimate: Gaussian landmark noise (`noise` cm per coordinate) and a Gaussian prior
        # N(mean, std²) per component.
        reg = noise ** 2 / np.square(np.asarray(std, dtype=np.float64))
        return np.linalg.solve(normal + np.diag(reg), rhs + reg * np.asarray(mean, dtype=np.float64))
