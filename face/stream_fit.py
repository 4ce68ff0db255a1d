"""A stream frame's fit, compiled (face.fit.Fitter's low-rank tracking): its pose from the last
frame's in one call (track_pose), then the expression, the pooled identity, the mesh and the landmark
residual in another (track_rest); and the small symmetric solves they and the pose's uncertainty need.

Right after FaceMesh every step of the stage runs on cold caches; as some forty numpy calls this fit
took ~0.5 ms a frame there (profiled on 2 cores), as two compiled calls about half that. The
arithmetic is the numpy version's, in another order: its results differ from it in the last bits.
"""
import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def spd_solve(matrix, rhs):
    """(x, ok): matrix · x = rhs (rhs N or N × K) for a symmetric positive-definite matrix, by
    Cholesky; ok is False (x undefined) where the matrix is not positive definite. Written out because
    LAPACK's dposv cannot be called from compiled code, and numpy's solve there raises where this
    reports (a pose too few points pin down)."""
    n = matrix.shape[0]
    lower = np.zeros((n, n))
    for j in range(n):
        d = matrix[j, j]
        for k in range(j):
            d -= lower[j, k] * lower[j, k]
        if not d > 0.0:   # also NaN
            return np.zeros_like(rhs), False
        lower[j, j] = np.sqrt(d)
        for i in range(j + 1, n):
            s = matrix[i, j]
            for k in range(j):
                s -= lower[i, k] * lower[j, k]
            lower[i, j] = s / lower[j, j]
    x = rhs.astype(np.float64)   # a copy, solved in place: L·z = b, then Lᵀ·x = z
    columns = x.reshape(n, -1)
    for c in range(columns.shape[1]):
        for i in range(n):
            s = columns[i, c]
            for k in range(i):
                s -= lower[i, k] * columns[k, c]
            columns[i, c] = s / lower[i, i]
        for i in range(n - 1, -1, -1):
            s = columns[i, c]
            for k in range(i + 1, n):
                s -= lower[k, i] * columns[k, c]
            columns[i, c] = s / lower[i, i]
    return x, True


@numba.njit(cache=True, nogil=True)
def _map_estimate(normal, rhs, mean, reg):
    """The MAP weights of face.fit.Fitter._solve_normal: (normal + diag(reg))⁻¹·(rhs + reg·mean); the
    prior's mean where that cannot be solved (positive definite, as reg > 0, unless a value is not finite)."""
    regularised = normal.copy()
    for i in range(len(reg)):
        regularised[i, i] += reg[i]
    x, ok = spd_solve(regularised, rhs + reg * mean)
    return x if ok else mean.copy()


@numba.njit(cache=True, nogil=True)
def warm_pose(model_points, target, rotation, depth_weight, steps):
    """face.fit.warm_similarity's loops. Unknowns: a small rotation ω (R ← exp(ω)·R), the scale and the
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


@numba.njit(cache=True, nogil=True)
def faded(depth_weight, fade_deg, rotation):
    """The depth axis's weight at this rotation: falling linearly to 0 at `fade_deg` of yaw."""
    yaw = math.degrees(math.asin(min(max(-rotation[2, 0], -1.0), 1.0)))
    return depth_weight * max(0.0, 1.0 - abs(yaw) / fade_deg)


@numba.njit(cache=True, nogil=True)
def track_pose(k_by_identity, w_id, last_exp, feature_factor, feature_target, last_rotation, depth_weight, fade_deg):
    """A stream frame's pose: the features' model points for the pooled identity and the last frame's
    expression (the core C = U·K; `feature_factor`: U's feature rows, 3F × r, axis-major), then one
    warm_pose step from the last frame's rotation, the depth weight `faded` at it.

    Returns (K contracted with the identity (r × n_exp), the features' model points (F × 3), scale,
    rotation, translation)."""
    by_identity = np.ascontiguousarray((k_by_identity @ w_id).reshape(-1, last_exp.shape[0]))
    flat = feature_factor @ (by_identity @ last_exp)
    count = len(flat) // 3
    features = np.empty((count, 3))
    for i in range(count):
        for a in range(3):
            features[i, a] = flat[a * count + i]
    rotation, scale, translation = warm_pose(features, feature_target, last_rotation,
                                             faded(depth_weight, fade_deg, last_rotation), 1)
    return by_identity, features, scale, rotation, translation


@numba.njit(cache=True, nogil=True)
def track_rest(target, scale, rotation, translation, axis_weight, point_weight, landmark_factor, vertex_factor,
               landmarks_are_vertices, gram, by_identity, k_by_expression, neutral, expression_reg, identity_mean,
               identity_reg, memory, pooled_normal, pooled_rhs):
    """A stream frame's fit from its pose on (face.fit.Fitter._track; the core C = U·K, U's landmark
    rows `landmark_factor` (3L × r, axis-major), every vertex's `vertex_factor` (3V × r); with
    `landmarks_are_vertices` the two are one, the landmarks the vertices in order).

    target: L × 3 landmarks (camera frame); scale, rotation, translation: the frame's pose; by_identity:
    K contracted with the pooled identity (r × n_exp); k_by_expression: K as (r·n_id) × n_exp; gram:
    each axis pair's weighted Gram U_aᵀ·P·U_b (9 × r²). The expression is solved with its prior
    (neutral, expression_reg), then the identity with the driver's pool (`memory` × the pooled normal
    equations, plus this frame's) and its prior.

    Returns (w_exp, w_id, pooled normal, pooled rhs, vertices V × 3 float32 (model frame), RMS 2-D
    landmark residual in frame pixels)."""
    n_l, rank = target.shape[0], by_identity.shape[0]
    weighted_rotation = np.empty((3, 3))   # D·R: the depth axis trusted less
    for a in range(3):
        for b in range(3):
            weighted_rotation[a, b] = axis_weight[a] * rotation[a, b]
    mixing = rotation.T @ weighted_rotation   # RᵀDR
    h = (mixing.reshape(9) @ gram).reshape(rank, rank)
    # vec(P·RᵀD·y) of the landmarks in the unscaled camera frame (rows axis-major)
    weighted = np.empty(3 * n_l)
    for i in range(n_l):
        l0 = (target[i, 0] - translation[0]) / scale
        l1 = (target[i, 1] - translation[1]) / scale
        l2 = (target[i, 2] - translation[2]) / scale
        for a in range(3):
            weighted[a * n_l + i] = (weighted_rotation[0, a] * l0 + weighted_rotation[1, a] * l1
                                     + weighted_rotation[2, a] * l2) * point_weight[i]
    projected = landmark_factor.T @ weighted
    w_exp = _map_estimate(by_identity.T @ (h @ by_identity), by_identity.T @ projected, neutral, expression_reg)
    by_expression = np.ascontiguousarray((k_by_expression @ w_exp).reshape(rank, -1))   # r × n_id
    normal = by_expression.T @ (h @ by_expression) + memory * pooled_normal
    rhs = by_expression.T @ projected + memory * pooled_rhs
    w_id = _map_estimate(normal, rhs, identity_mean, identity_reg)
    coefficients = by_identity @ w_exp
    flat = vertex_factor @ coefficients
    shape = flat if landmarks_are_vertices else landmark_factor @ coefficients   # the landmarks' points, axis-major
    squares = 0.0
    for i in range(n_l):
        for a in range(2):
            p = scale * (rotation[a, 0] * shape[i] + rotation[a, 1] * shape[n_l + i]
                         + rotation[a, 2] * shape[2 * n_l + i]) + translation[a]
            squares += (p - target[i, a]) ** 2
    n_v = len(flat) // 3
    vertices = np.empty((n_v, 3), dtype=np.float32)
    for v in range(n_v):
        for a in range(3):
            vertices[v, a] = flat[a * n_v + v]
    return w_exp, w_id, normal, rhs, vertices, np.sqrt(squares / n_l)
