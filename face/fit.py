"""Fit the bilinear model to one frame's 3-D landmarks: pose, expression, and a pooled identity.

Landmarks arrive in frame pixels (x right, y down, z nearer-is-smaller). They are turned into a
camera frame with y up and z towards the viewer, so that P ≈ s·R·M + t for model vertices M.
Regularised alternating least squares: similarity pose → expression weights → identity weights,
repeated. The identity is slowly varying, so its normal equations are pooled over the frames of one
driver with exponential forgetting; `reset()` starts a new driver. On a stream the same solves run in
the core's low-rank space when it has one (Fitter).

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

from face.bilinear import BilinearModel
from face.render import incidence_matrix, vertex_normals
from face.stream_fit import faded, spd_solve, track_pose, track_rest, warm_pose

Z_WEIGHT = 0.3  # mediapipe's depth is a network's guess: trust it less than x and y (shape only)
OTHER_WEIGHT = 0.3  # weight of a featureless (cheek, outline) landmark in the shape, a feature's is 1
POSE_STEPS = 2  # Gauss-Newton steps refining the pose
# The depth axis's weight in the pose (x and y weigh 1): FaceMesh's depth helps the pitch of a
# frontal face, but shrinks as the head turns (its scale 1.00, 0.95, 0.86, 0.82 of the truth at yaw
# 0, 15, 30, 45°) and then drags the yaw towards frontal; so it fades out by DEPTH_FADE_DEG of yaw.
POSE_DEPTH_WEIGHT = 0.3
DEPTH_FADE_DEG = 20.0
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
    # numpy's arcsin and arctan2 (math's differ from them in the last bit), on Python floats: a third
    # of the time of numpy scalars and np.clip (twice a frame).
    r = rotation.tolist()
    yaw = float(np.degrees(np.arcsin(min(max(-r[2][0], -1.0), 1.0))))
    pitch = float(np.degrees(np.arctan2(r[2][1], r[2][2])))
    roll = float(np.degrees(np.arctan2(r[1][0], r[0][0])))
    return yaw, pitch, roll


_FLIP_Y_Z = np.array([1.0, -1.0, -1.0])


def image_to_camera(points: np.ndarray) -> np.ndarray:
    """Frame-pixel landmarks (x, y down, z nearer-smaller) → camera frame (x, y up, z to viewer)."""
    return np.asarray(points, dtype=np.float64) * _FLIP_Y_Z


def camera_to_image(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) * _FLIP_Y_Z


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
        depth_weight = faded(depth_weight, depth_fade_deg, rotation)
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
        depth_weight = faded(depth_weight, depth_fade_deg, rotation)
    rotation, scale, translation = warm_pose(np.ascontiguousarray(model_points, dtype=np.float64),
                                             np.ascontiguousarray(target, dtype=np.float64), rotation,
                                             float(depth_weight), int(steps))
    return scale, rotation, translation


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


@numba.njit(cache=True, nogil=True)
def angle_rates(rotation: np.ndarray) -> np.ndarray:
    """3×3 d(yaw, pitch, roll)/dω (radians) for a small rotation ω applied as R ← exp(ω)·R.
    With R = Rz·Ry·Rx, ω = Rz·ey·d(yaw) + Rz·Ry·ex·d(pitch) + ez·d(roll), inverted in closed form
    (read off R, no trigonometry: this runs on every frame); singular only at ±90° of yaw."""
    sy = -rotation[2, 0]
    cy2 = max(1.0 - sy * sy, 1e-12)
    cr_cy, sr_cy = rotation[0, 0], rotation[1, 0]  # cos(roll)·cos(yaw), sin(roll)·cos(yaw)
    cy = math.sqrt(cy2)
    rates = np.zeros((3, 3))
    rates[0, 0], rates[0, 1] = -sr_cy / cy, cr_cy / cy
    rates[1, 0], rates[1, 1] = cr_cy / cy2, sr_cy / cy2
    rates[2, 0], rates[2, 1], rates[2, 2] = sy * cr_cy / cy2, sy * sr_cy / cy2, 1.0
    return rates


def pose_std_terms(model_points, target, scale, rotation, translation, facing, depth_weight):
    """(least-squares std, shift without hidden points), each (yaw, pitch, roll) in degrees, of a
    pose with target ≈ s·R·model + t (camera frame, points weighted alike; the depth axis by
    `depth_weight`). facing: per point, the cosine of the angle between its normal and the view.

    The first is √diag of σ²·(JᵀWJ)⁻¹ (σ² the weighted residual variance) mapped onto the angles;
    the second, |the pose step with the points facing away down-weighted − the step with all|: how
    much the pose rests on points the camera barely sees. Both uncalibrated (see POSE_STD_*); both
    infinite where the points cannot pin the pose down."""
    formal, shift = _pose_std_terms(
        np.ascontiguousarray(model_points, dtype=np.float64), np.ascontiguousarray(target, dtype=np.float64),
        float(scale), np.ascontiguousarray(rotation, dtype=np.float64), np.asarray(translation, dtype=np.float64),
        np.ascontiguousarray(facing, dtype=np.float64), float(depth_weight), _MOMENT_MAP, *POSE_STD_FACING)
    return np.degrees(formal), np.degrees(shift)


@numba.njit(cache=True, nogil=True)
def _pose_std_terms(model_points, target, scale, rotation, translation, facing, depth_weight, moment_map,
                    facing_lo, facing_hi):
    """pose_std_terms in radians, compiled: it runs on every frame. It goes through the moments
    (_moment_map), both weightings at once; the rotation's rows of the covariance and of the steps do
    not depend on how the scale and the centre are parametrised."""
    n = model_points.shape[0]
    moments = _pose_moments(model_points, target, scale, rotation, translation, facing, facing_lo, facing_hi)
    mapped = moments @ moment_map
    mapped = mapped[:, :57] + depth_weight * mapped[:, 57:]
    normals = np.ascontiguousarray(mapped[:, :49]).reshape(2, 7, 7)
    for k in range(2):
        normals[k, 6, 6] += 1e-9  # the depth offset is free when the depth weight is 0
    # Every point: the inverse's first 3 columns (the rotation's covariance) and the step.
    rhs = np.zeros((7, 4))
    for a in range(3):
        rhs[a, a] = 1.0
    rhs[:, 3] = mapped[0, 49:56]
    solved, ok = spd_solve(np.ascontiguousarray(normals[0]), rhs)
    step_seen, ok_seen = spd_solve(np.ascontiguousarray(normals[1]), mapped[1, 49:56].copy())
    if not (ok and ok_seen):  # not positive definite: too few points pin the pose down
        return np.full(3, np.inf), np.full(3, np.inf)
    sigma2 = mapped[0, 56] / max((2.0 + depth_weight) * n - 7.0, 1.0)
    rates = angle_rates(rotation)
    covariance = rates @ np.ascontiguousarray(solved[:3, :3])
    formal = np.sqrt(np.abs((covariance * rates).sum(axis=1) * sigma2))
    shift = np.abs(rates @ (step_seen[:3] - solved[:3, 3]))
    return formal, shift


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
class _Factors:
    """A core whose unfolding has low rank r, C = U·K (landmark rows): the landmarks' U (3L × r,
    axis-major), every vertex's (3V × r; the same array where the landmarks are the vertices in order),
    K (r × n_id × n_exp), and each axis pair's weighted Gram
    U_aᵀ·P·U_b (P the landmark weights). With them a stream frame's contractions and
    normal equations run in the r-dimensional space instead of over every landmark."""
    landmarks: np.ndarray
    full: np.ndarray
    k: np.ndarray            # r × n_id × n_exp
    k_by_identity: np.ndarray  # the same, (r·n_exp) × n_id: contracted with an identity by one product
    k_by_expression: np.ndarray  # the same, (r·n_id) × n_exp: contracted with an expression by one product
    gram: np.ndarray         # 9 × r²: the axis pairs flattened, mixed by one product


def low_rank_factors(core: np.ndarray, rows: np.ndarray, point_weight: np.ndarray,
                     max_unfolding: int = 1024, max_share: float = 0.5) -> _Factors | None:
    """_Factors of an axis-major core (3V × n_id × n_exp) when it has them: its unfolding's rank r
    (singular values above 1e-8 of the largest, float32's noise being ~1e-7 of each entry) is at most
    `max_share` of n_id·n_exp; None otherwise, or when the unfolding is too wide to factor cheaply at
    start-up (a FaceWarehouse-sized core). The shipped model is additive in identity and expression:
    its 1404 × 468 unfolding has rank 41."""
    n_id, n_exp = core.shape[1:]
    if n_id * n_exp > max_unfolding:
        return None
    unfolding = core.reshape(len(core), -1).astype(np.float64)
    u, sv, vt = np.linalg.svd(unfolding, full_matrices=False)
    rank = int((sv > 1e-8 * sv[0]).sum())
    if rank > max_share * n_id * n_exp:
        return None
    full = np.ascontiguousarray(u[:, :rank])
    k = (sv[:rank, None] * vt[:rank]).reshape(rank, n_id, n_exp)
    # The shipped model's landmarks are its vertices, in order: one array then serves both.
    landmarks = full if np.array_equal(rows, np.arange(len(core))) else np.ascontiguousarray(full[rows])
    per_axis = landmarks.reshape(3, -1, rank)
    gram = np.einsum("aik,i,bil->abkl", per_axis, point_weight, per_axis).reshape(9, rank * rank)
    k_by_identity = np.ascontiguousarray(k.transpose(0, 2, 1)).reshape(-1, n_id)
    return _Factors(landmarks, full, k, k_by_identity, np.ascontiguousarray(k.reshape(-1, n_exp)), gram)


class Fitter:
    """Fits frames one at a time: a lone image (`pool_identity=False`) gets a few rounds of pose ⇄
    expression ⇄ identity; on a stream each frame starts from the last one's pose and expression, and
    the identity is pooled over the driver's frames.

    A stream's frame runs in the core's low-rank space when the model has one (`low_rank_factors`;
    the shipped model does): the same solves, a fraction of the arithmetic — the contractions of the
    1404 × 18 × 26 core and the 1404-row normal equations become products of 41-wide factors. Lone
    images keep the direct form, whose bits the synthetic data (texture atlases, target renders) were
    made with."""

    def __init__(self, model: BilinearModel, iterations: int = 2, expression_noise: float = 0.12,
                 identity_noise: float = 0.25, identity_memory: float = 0.95, low_rank: bool = True):
        self.model = model
        self.iterations = iterations
        self.expression_noise = expression_noise
        self.identity_noise = identity_noise
        self.identity_memory = identity_memory
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
        # low_rank=False: streams in the direct form too (to compare the two).
        self._factors = low_rank_factors(core, self._rows, self._point_weight) if low_rank else None
        if self._factors is not None:   # the features' rows of U (axis-major), for a stream's pose
            n_l = len(self.landmarks)
            rows = (np.arange(3)[:, None] * n_l + self._feature_index[None, :]).reshape(-1)
            self._feature_factor = np.ascontiguousarray(self._factors.landmarks[rows])
        # The MAP solves' priors (mean and regulariser, _solve_normal), for both forms of the fit.
        self._neutral = model.neutral.astype(np.float64)
        self._expression_reg = expression_noise ** 2 / np.square(model.expression_std.astype(np.float64))
        self._identity_mean = model.identity_mean.astype(np.float64)
        self._identity_reg = identity_noise ** 2 / np.square(model.identity_std.astype(np.float64))
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

    def warm_up(self):
        """Fit the mean face as a lone image, then as a stream's first frames, and forget it: the
        compiled kernels load (about 0.3 s, from numba's cache) now, not on a live stream's first frames."""
        lv = self.model.landmark_vertex
        landmarks = np.zeros((len(lv), 3))
        landmarks[lv >= 0] = camera_to_image(100.0 * self.model.mesh().astype(np.float64)[lv[lv >= 0]]) + [320, 240, 0]
        self(landmarks, pool_identity=False)
        for _ in range(2):
            self(landmarks)
        self.reset()

    def reset(self):
        """Forget the pooled identity (a new driver)."""
        n = self.model.num_identity
        self._id_normal = np.zeros((n, n))
        self._id_rhs = np.zeros(n)
        self.w_id = self.model.identity_mean.astype(np.float64).copy()
        self._last_exp = None
        self._last_rotation = None

    def _identity_basis(self, w_id):
        """(3V × n_exp) mesh basis for an identity, and its landmark rows. Made anew every frame: the
        pooled identity moves 5–12 % of its spread from one frame to the next on a drive (measured),
        so a basis kept while it "stands still" was never reused."""
        full = (self._core_by_id @ w_id.astype(np.float32)).reshape(3 * self.model.num_vertices, -1)
        return full, full[self._rows].astype(np.float64)

    def __call__(self, landmarks: np.ndarray, pool_identity: bool = True, rounds: int | None = None) -> Fit:
        """Fit one frame. A round is pose ⇄ expression (twice) then identity; video frames need one
        (the identity is pooled), a lone image a few (`rounds`, default 1 when pooling, else 3).
        ValueError for landmarks with a NaN or infinite value, before anything of the stream changes."""
        target = image_to_camera(landmarks[self.landmarks, :3])
        if not np.isfinite(target).all():
            raise ValueError(f"landmarks hold {np.count_nonzero(~np.isfinite(target))} NaN or infinite coordinates")
        if pool_identity and self._last_exp is not None and self._factors is not None and rounds in (None, 1):
            fit = self._track(target, landmarks)
        else:
            fit = self._solve(target, landmarks, pool_identity, rounds)
        fit.angles_std = self.angles_std(landmarks, fit)
        return fit

    def _solve(self, target, landmarks, pool_identity, rounds) -> Fit:
        """The direct form: contractions of the whole core and normal equations over every landmark."""
        model = self.model
        rounds = (1 if pool_identity else 3) if rounds is None else rounds
        w_id = self.w_id.copy()
        neutral = self._neutral
        # On a stream, start from the last frame's expression: one pose/expression step then suffices.
        warm = pool_identity and self._last_exp is not None
        w_exp = self._last_exp.copy() if warm else neutral.copy()
        iterations = 1 if warm else self.iterations
        n_l, n_v, features = len(self.vertices), model.num_vertices, self._feature_index
        for round_ in range(rounds):
            basis_full, basis_exp = self._identity_basis(w_id)  # all vertices; the landmarks' rows
            for _ in range(iterations):
                shape = (basis_exp @ w_exp).reshape(3, n_l).T
                scale, rotation, translation = self._pose(shape[features], target[features],
                                                          self._last_rotation if warm else None)
                local = ((target - translation) / scale).T.reshape(-1)  # unscaled camera frame, axis-major
                normal, rhs = self._weighted_normal(_rotate(basis_exp, rotation), local)
                w_exp = self._solve_normal(normal, rhs, neutral, self._expression_reg)
            basis_id = (self._landmark_core_by_exp @ w_exp.astype(np.float32)).reshape(3 * n_l, -1)
            normal, rhs = self._weighted_normal(_rotate(basis_id.astype(np.float64), rotation), local)
            new_id = self._pool_identity(normal, rhs, pool_identity, keep=round_ == rounds - 1)
            if round_ < rounds - 1:
                w_id = new_id
        if pool_identity:
            self._last_exp = w_exp
            self._last_rotation = rotation
        shape = (basis_exp @ w_exp).reshape(3, n_l).T
        if not warm:  # on a stream the pose of the step above stands: the expression barely moved
            scale, rotation, translation = self._pose(shape[features], target[features])
        vertices = (basis_full @ w_exp.astype(np.float32)).reshape(3, n_v).T
        return self._result(landmarks, target, shape, vertices, scale, rotation, translation, w_id, w_exp)

    def _track(self, target, landmarks) -> Fit:
        """A stream's next frame in the core's low-rank space (C = U·K): one pose ⇄ expression step
        from the last frame's, then the identity, as _solve does. With the landmarks' rows B = U·K_w
        (K_w = K contracted with the identity) weighted W = D ⊗ P, (R·B)ᵀW(R·B) = K_wᵀ·H·K_w with
        H = Σ_ab (RᵀDR)_ab·U_aᵀPU_b, and (R·B)ᵀW·y = K_wᵀ·Uᵀ·vec(P·RᵀD·y); likewise for the identity
        with K contracted with the expression. Two compiled calls (face.stream_fit): the pose, then
        all after it."""
        factors, w_id = self._factors, self.w_id.copy()
        feature_target = target[self._feature_index]
        by_identity, features, *pose = track_pose(
            factors.k_by_identity, w_id, self._last_exp, self._feature_factor, feature_target, self._last_rotation,
            POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG)
        scale, rotation, translation = self._upright(pose, features, feature_target)
        w_exp, new_id, normal, rhs, vertices, error = track_rest(
            target, scale, rotation, translation, self._axis_weight, self._point_weight, factors.landmarks,
            factors.full, factors.landmarks is factors.full, factors.gram, by_identity, factors.k_by_expression,
            self._neutral, self._expression_reg, self._identity_mean, self._identity_reg, self.identity_memory,
            self._id_normal, self._id_rhs)
        self._id_normal, self._id_rhs, self.w_id = normal, rhs, new_id
        self._last_exp, self._last_rotation = w_exp, rotation
        return Fit(scale, rotation, translation, w_id.astype(np.float32), w_exp.astype(np.float32), vertices,
                   float(error / self._interocular(landmarks, scale)))

    def _pool_identity(self, normal, rhs, pool: bool, keep: bool = True):
        """The identity from this frame's normal equations; with `pool` joined with the driver's, and
        with `keep` too the pool and its identity (used from the next frame on) become these."""
        if pool:
            normal = normal + self.identity_memory * self._id_normal
            rhs = rhs + self.identity_memory * self._id_rhs
        new_id = self._solve_normal(normal, rhs, self._identity_mean, self._identity_reg)
        if pool and keep:
            self._id_normal, self._id_rhs, self.w_id = normal, rhs, new_id
        return new_id

    def _result(self, landmarks, target, shape, vertices, scale, rotation, translation, w_id, w_exp) -> Fit:
        projected = scale * shape @ rotation.T + translation
        error = np.sqrt(((projected[:, :2] - target[:, :2]) ** 2).sum(axis=1).mean())
        return Fit(scale, rotation, translation, w_id.astype(np.float32), w_exp.astype(np.float32),
                   np.ascontiguousarray(vertices), float(error / self._interocular(landmarks, scale)))

    def angles_std(self, landmarks: np.ndarray, fit: Fit) -> tuple[float, float, float]:
        """Std of the fit's (yaw, pitch, roll) in degrees: pose_std_terms at the fitted pose (the
        features, the depth weight faded at the fitted yaw, as the pose solve fades it), calibrated."""
        shape = fit.vertices[self._feature_vertices]
        target = landmarks[self._feature_landmarks, :3] * _FLIP_Y_Z  # image_to_camera
        facing = self._feature_normals @ fit.rotation[2]  # the normals' camera-frame z
        formal, shift = pose_std_terms(shape, target, fit.scale, fit.rotation, fit.translation, facing,
                                       faded(POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG, fit.rotation))
        return calibrated_std(formal, shift)

    def _pose(self, shape, target, start=None):
        """Similarity pose from the features' model points and landmarks. On a stream (`start`: the
        last frame's rotation) one Gauss-Newton step from there suffices."""
        if start is None:
            return similarity(shape, target, None, POSE_STEPS, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG)
        return self._upright(warm_similarity(shape, target, start, 1, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG), shape, target)

    def _upright(self, pose, shape, target):
        """A warm-started pose, or the pose solved afresh where it came out upside down: one step from a
        last pose that went wrong (a head turned beyond what FaceMesh follows) can stay upside down, and
        every later frame would start from there."""
        if abs(angles_from_rotation(pose[1])[2]) > MAX_ROLL_DEG:
            return similarity(shape, target, None, POSE_STEPS, POSE_DEPTH_WEIGHT, DEPTH_FADE_DEG, None)
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

    @staticmethod
    def _solve_normal(normal, rhs, mean, reg):
        # MAP estimate: Gaussian landmark noise (`noise` cm per coordinate) and a Gaussian prior
        # N(mean, std²) per component: reg = noise² / std² (the _expression_reg / _identity_reg made
        # at start).
        return np.linalg.solve(normal + np.diag(reg), rhs + reg * mean)
