"""The z-buffer rasteriser against a brute-force reference; the fit against known poses."""
import numpy as np
import pytest

from face.fit import Fitter, angles_from_rotation, camera_to_image, rotation_from_angles
from face.raster import rasterize, visible_vertices


def _brute_force(xy, z, triangles, h, w):
    out = np.full((h, w), -1)
    for r in range(h):
        for c in range(w):
            best = -np.inf
            for t, (a, b, d) in enumerate(triangles):
                m = np.array([xy[b] - xy[a], xy[d] - xy[a]]).T
                if abs(np.linalg.det(m)) < 1e-9:
                    continue
                l1, l2 = np.linalg.solve(m, np.array([c, r], float) - xy[a])
                if min(1 - l1 - l2, l1, l2) >= -1e-9:
                    depth = (1 - l1 - l2) * z[a] + l1 * z[b] + l2 * z[d]
                    if depth > best:
                        best, out[r, c] = depth, t
    return out


def test_rasteriser_matches_brute_force_with_overlaps():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-4, 28, (20, 2))
    z = rng.uniform(0, 10, 20)
    triangles = rng.integers(0, 20, (25, 3))
    triangles = triangles[(triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2])
                          & (triangles[:, 0] != triangles[:, 2])]
    raster = rasterize(xy, z, triangles, 24, 26)
    assert np.array_equal(raster.triangle_map, _brute_force(xy, z, triangles, 24, 26))
    # Barycentric weights reproduce the pixel positions.
    pos = raster.interpolate(xy, triangles)
    rows, cols = np.divmod(raster.pixel, 26)
    assert np.allclose(pos, np.stack([cols, rows], axis=1), atol=1e-3)


def test_hidden_vertices_are_found():
    # A small square in front of (nearer than) a big one: the big one's centre vertex is hidden.
    xy = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [5, 5], [4, 4], [6, 4], [6, 6], [4, 6.]])
    z = np.array([0, 0, 0, 0, 0, 5, 5, 5, 5.])
    tri = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4], [5, 6, 7], [5, 7, 8]])
    visible = visible_vertices(xy, z, tri, grid=40)
    assert not visible[4] and visible[[0, 1, 2, 3, 5, 6, 7, 8]].all()


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (35, -10, 5), (-55, 15, -8), (10, 20, 0)])
def test_angles_round_trip(yaw, pitch, roll):
    assert np.allclose(angles_from_rotation(rotation_from_angles(yaw, pitch, roll)), (yaw, pitch, roll), atol=1e-9)


def _landmarks(model, w_id, w_exp, yaw, pitch, roll, scale=12.0, centre=(320, 240)):
    camera = scale * model.mesh(w_id, w_exp).astype(np.float64) @ rotation_from_angles(yaw, pitch, roll).T
    points = camera_to_image(camera) + [centre[0], centre[1], 0]
    out = np.zeros((478, 3))
    out[:468] = points
    return out


def test_fit_recovers_pose_and_shape_from_exact_landmarks(default_model):
    m = default_model
    rng = np.random.default_rng(4)
    w_id = m.identity_mean + m.identity_std * rng.standard_normal(m.num_identity)
    w_exp = m.expression_weights[3]  # happiness
    landmarks = _landmarks(m, w_id, w_exp, 40, -12, 6)
    # Turned 40°, the pose rests on x and y alone (FaceMesh's depth is faded out), so yaw and the
    # face's depth trade off until the identity has converged: a single image's default rounds get
    # within a degree, more rounds closer.
    assert np.allclose(Fitter(m)(landmarks, pool_identity=False).angles, (40, -12, 6), atol=1.0)
    fit = Fitter(m)(landmarks, pool_identity=False, rounds=6)
    assert np.allclose(fit.angles, (40, -12, 6), atol=0.5)
    assert fit.residual < 0.01
    # The shape up to size (size and distance are one unknown for a single camera).
    truth = m.mesh(w_id, w_exp)
    got = fit.vertices - fit.vertices.mean(axis=0)
    want = truth - truth.mean(axis=0)
    got *= (got * want).sum() / (got ** 2).sum()
    assert np.abs(got - want).mean() < 0.1  # cm, on a face ~17 cm tall


def test_identity_pooling_over_a_video_beats_one_frame(default_model):
    m = default_model
    rng = np.random.default_rng(5)
    w_id = m.identity_mean + 1.5 * m.identity_std * rng.standard_normal(m.num_identity)
    truth = m.mesh(w_id)
    def shape_error(fit):
        got, want = fit.vertices - fit.vertices.mean(0), truth - truth.mean(0)
        return np.abs(got * (got * want).sum() / (got ** 2).sum() - want).mean()
    noisy = lambda lm: lm + np.r_[rng.normal(0, 1.0, (468, 3)), np.zeros((10, 3))]
    single = Fitter(m)(noisy(_landmarks(m, w_id, m.neutral, 0, 0, 0)), pool_identity=True)
    video = Fitter(m)
    for i in range(30):
        fit = video(noisy(_landmarks(m, w_id, m.neutral, 30 * np.sin(i / 5), 5 * np.cos(i / 7), 0)))
    assert shape_error(fit) < shape_error(single)


def test_pose_resists_shrunken_depth_and_slid_outline(default_model):
    """What FaceMesh does to a turned head: its depth shrinks (×0.8 at 40–45°) and the outline points
    slide outwards. Umeyama on all points in 3-D under-reads the turn by 3–5°; the fit's pose, from
    the features and mostly their x and y, stays within 2°."""
    from face.fit import FEATURE_LANDMARKS, similarity

    m = default_model
    mesh = m.mesh().astype(np.float64)
    outline = np.setdiff1d(np.arange(468), FEATURE_LANDMARKS)
    for slide in (0.0, 0.08):
        target = _landmarks(m, m.identity_mean, m.neutral, 40, 5, 0)
        target[:, 2] = target[:, 2].mean() + 0.8 * (target[:, 2] - target[:, 2].mean())
        target[outline, 0] += slide * (target[outline, 0] - target[:468, 0].mean())
        _, naive, _ = similarity(mesh, target[:468] * np.array([1.0, -1.0, -1.0]))
        assert angles_from_rotation(naive)[0] < 37
        fit = Fitter(m)(target, pool_identity=False)
        assert abs(fit.angles[0] - 40) < 2.0 and abs(fit.angles[1] - 5) < 1.5


def test_a_stream_in_the_low_rank_space_fits_as_the_direct_form(default_model):
    """The shipped core factors (rank 41 of 468); a stream fitted in that space gives the direct
    form's pose, weights and mesh, frame after frame, to rounding."""
    from face.fit import low_rank_factors

    m = default_model
    rng = np.random.default_rng(7)
    w_id = m.identity_mean + 1.5 * m.identity_std * rng.standard_normal(m.num_identity)
    fast, direct = Fitter(m), Fitter(m, low_rank=False)
    assert fast._factors is not None and fast._factors.k.shape[0] == 41 and direct._factors is None
    for i in range(12):
        w_exp = m.expression_weights[i % 7]
        landmarks = (_landmarks(m, w_id, w_exp, 30 * np.sin(i / 3), 5 * np.cos(i / 4), 3)
                     + np.r_[rng.normal(0, 0.5, (468, 3)), np.zeros((10, 3))])
        a, b = fast(landmarks), direct(landmarks)
        assert np.allclose(a.rotation, b.rotation, atol=1e-6) and abs(a.scale - b.scale) < 1e-6 * b.scale
        assert np.allclose(a.w_exp, b.w_exp, atol=1e-4) and np.allclose(a.w_id, b.w_id, atol=1e-4)
        assert np.abs(a.vertices - b.vertices).max() < 1e-4   # cm
        assert np.allclose(a.angles_std, b.angles_std, atol=1e-3)
    # A core with no low-rank form (random interactions) keeps the direct form.
    core = rng.normal(size=(3 * 50, 6, 5)).astype(np.float32)
    assert low_rank_factors(core, np.arange(150), np.ones(50)) is None


def test_warm_similarity_is_similarity_from_a_start(default_model):
    """The stream's compiled warm-started pose step against similarity() from the same start."""
    from face.fit import similarity, warm_similarity

    rng = np.random.default_rng(3)
    mesh = default_model.mesh().astype(np.float64)[:120]
    for yaw, pitch, roll in ((0, 0, 0), (35, -12, 6), (-50, 18, -9)):
        truth = rotation_from_angles(yaw, pitch, roll)
        target = 11.0 * mesh @ truth.T + np.array([300.0, -200.0, 40.0]) + rng.normal(0, 0.3, mesh.shape)
        start = rotation_from_angles(yaw + 4, pitch - 3, roll + 2)
        for steps, depth in ((1, 0.3), (2, 1.0)):
            want = similarity(mesh, target, None, steps, depth, 20.0, start)
            got = warm_similarity(mesh, target, start, steps, depth, 20.0)
            assert abs(got[0] - want[0]) < 1e-9 * want[0]
            assert np.allclose(got[1], want[1], atol=1e-10) and np.allclose(got[2], want[2], atol=1e-7)


def test_a_warmed_up_fitter_fits_as_a_fresh_one(default_model):
    """Fitter.warm_up (the stage's, so that the compiled kernels load before a stream) leaves nothing
    of its mean face behind: the same fits, frame after frame, as a fitter never used."""
    m = default_model
    fresh, warmed = Fitter(m), Fitter(m)
    warmed.warm_up()
    for i in range(4):
        landmarks = _landmarks(m, m.identity_mean, m.expression_weights[i], 10 * i, 3, 0)
        a, b = fresh(landmarks), warmed(landmarks)
        assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.w_id, b.w_id)
        assert np.array_equal(a.rotation, b.rotation) and a.angles_std == b.angles_std


def test_landmarks_with_a_nan_are_refused_and_leave_the_stream_as_it_was(default_model):
    """A NaN or infinite landmark gets a ValueError that says so, before the stream's state moves: the
    next frames fit exactly as on a stream that never saw it (lone fits refuse it too)."""
    m = default_model
    clean, hit = Fitter(m), Fitter(m)
    frames = [_landmarks(m, m.identity_mean, m.expression_weights[i], 8 * i, 3, 0) for i in range(4)]
    for i, landmarks in enumerate(frames):
        if i == 2:
            for bad in (np.nan, np.inf):
                broken = landmarks.copy()
                broken[33, 1] = bad
                for pool in (True, False):
                    with pytest.raises(ValueError, match="1 NaN or infinite"):
                        hit(broken, pool_identity=pool)
        a, b = clean(landmarks), hit(landmarks)
        assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.w_id, b.w_id)
