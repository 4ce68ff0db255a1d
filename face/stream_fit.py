"""A stream frame's fit after its pose, compiled: the expression, the pooled identity, the mesh and the
landmark residual in one call (face.fit.Fitter's low-rank tracking), and the small symmetric solves
it and the pose's uncertainty need.

Right after FaceMesh every step of the stage runs on cold caches; as some thirty numpy calls this part
of the fit took ~0.3 ms a frame (2 cores, 128² renders), as one compiled pass a fraction of it. The
arithmetic is the numpy version's, in another order: its results differ from it in the last bits.
"""
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
    """The MAP weights of face.fit.Fitter._solve_normal: (normal + diag(reg))⁻¹·(rhs + reg·mean)."""
    regularised = normal.copy()
    for i in range(len(reg)):
        regularised[i, i] += reg[i]
    x, _ = spd_solve(regularised, rhs + reg * mean)   # positive definite: reg > 0
    return x


@numba.njit(cache=True, nogil=True)
def track_rest(target, scale, rotation, translation, axis_weight, point_weight, landmark_factor, vertex_factor,
               gram, by_identity, k_by_expression, neutral, expression_reg, identity_mean, identity_reg,
               memory, pooled_normal, pooled_rhs):
    """A stream frame's fit from its pose on (face.fit.Fitter._track; the core C = U·K, U's landmark
    rows `landmark_factor` (3L × r, axis-major), every vertex's `vertex_factor` (3V × r)).

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
    shape = landmark_factor @ coefficients   # the landmarks' mesh points, axis-major
    squares = 0.0
    for i in range(n_l):
        for a in range(2):
            p = scale * (rotation[a, 0] * shape[i] + rotation[a, 1] * shape[n_l + i]
                         + rotation[a, 2] * shape[2 * n_l + i]) + translation[a]
            squares += (p - target[i, a]) ** 2
    flat = vertex_factor @ coefficients
    n_v = len(flat) // 3
    vertices = np.empty((n_v, 3), dtype=np.float32)
    for v in range(n_v):
        for a in range(3):
            vertices[v, a] = flat[a * n_v + v]
    return w_exp, w_id, normal, rhs, vertices, np.sqrt(squares / n_l)
