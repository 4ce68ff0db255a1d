"""FaceResult.pose_std, the per-frame std of the fitted head angles (face.fit.pose_std_terms)."""
import math

import numpy as np
import pytest

from face.fit import (Fitter, angle_rates, angles_from_rotation, calibrated_std, camera_to_image,
                      pose_std_terms, rotation_from_angles)


def _small_rotation(omega):
    angle = float(np.linalg.norm(omega))
    k = np.array([[0, -omega[2], omega[1]], [omega[2], 0, -omega[0]], [-omega[1], omega[0], 0]]) / angle
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (35, -12, 7), (-58, 18, -9)])
def test_angle_rates_match_finite_differences(yaw, pitch, roll):
    rotation = rotation_from_angles(yaw, pitch, roll)
    for axis in range(3):
        omega = np.zeros(3)
        omega[axis] = 1e-6
        moved = np.array(angles_from_rotation(_small_rotation(omega) @ rotation))
        numeric = np.radians(moved - angles_from_rotation(rotation)) / 1e-6
        assert np.allclose(numeric, angle_rates(rotation)[:, axis], atol=1e-4)


def _explicit_terms(points, target, scale, rotation, translation, facing, depth_weight):
    """The same two terms the slow way: the pose Jacobian written out row by row."""
    n = len(points)
    x = points - points.mean(axis=0)
    p = scale * x @ rotation.T
    jac = np.zeros((3 * n, 7))
    for i in range(n):
        for axis in range(3):
            row = axis * n + i
            jac[row, :3] = np.cross(p[i], np.eye(3)[axis])  # ∂(ω × p)·e/∂ω = p × e
            jac[row, 3] = p[i, axis] / scale
            jac[row, 4 + axis] = 1.0
    residual = (scale * points @ rotation.T + translation - target).T.reshape(-1)
    w = np.repeat([1.0, 1.0, depth_weight], n)
    seen = w * np.tile(np.clip((facing - 0.2) / 0.3, 0, 1), 3)
    ridge = np.diag([0, 0, 0, 0, 0, 0, 1e-9])
    normal = jac.T @ (w[:, None] * jac) + ridge
    sigma2 = (w * residual ** 2).sum() / (w.sum() - 7)
    rates = angle_rates(rotation)
    covariance = rates @ (sigma2 * np.linalg.inv(normal))[:3, :3] @ rates.T
    step = np.linalg.solve(normal, jac.T @ (w * residual))
    step_seen = np.linalg.solve(jac.T @ (seen[:, None] * jac) + ridge, jac.T @ (seen * residual))
    return np.degrees(np.sqrt(np.diag(covariance))), np.degrees(np.abs(rates @ (step_seen - step)[:3]))


@pytest.mark.parametrize("yaw, depth_weight", [(5, 0.3), (45, 0.0)])
def test_terms_match_the_written_out_jacobian(default_model, yaw, depth_weight):
    rng = np.random.default_rng(3)
    points = default_model.mesh().astype(np.float64)[:120]
    rotation = rotation_from_angles(yaw, -8, 4)
    target = 11.0 * points @ rotation.T + [300, -200, 5] + rng.normal(0, 0.8, points.shape)
    facing = rng.uniform(-0.3, 1.0, len(points))
    got = pose_std_terms(points, target, 11.0, rotation, np.array([300, -200, 5.0]), facing, depth_weight)
    want = _explicit_terms(points, target, 11.0, rotation, np.array([300, -200, 5.0]), facing, depth_weight)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-9)


def test_an_undetermined_pose_gets_180_degrees():
    points = np.array([[0.0, 0, 0], [1, 0, 0]])  # two points cannot pin a rotation down
    terms = pose_std_terms(points, points, 1.0, np.eye(3), np.zeros(3), np.ones(2), 0.0)
    assert calibrated_std(*terms) == (180.0, 180.0, 180.0)
    std = calibrated_std([np.nan, 1.0, 0.0], [0.0, 0.0, np.inf])
    assert std[0] == std[2] == 180.0 and 0 < std[1] < 180


def test_fit_on_clean_landmarks_has_a_small_positive_std(default_model):
    m = default_model
    camera = 12.0 * m.mesh().astype(np.float64) @ rotation_from_angles(25, -6, 3).T
    landmarks = np.zeros((478, 3))
    landmarks[:468] = camera_to_image(camera) + [320, 240, 0]
    fit = Fitter(m)(landmarks + np.random.default_rng(0).normal(0, 0.3, landmarks.shape), pool_identity=False)
    std = np.array(fit.angles_std)
    assert std.shape == (3,) and np.isfinite(std).all() and (std > 0).all()
    assert std[0] < 2.0 and std[2] < 2.0   # degrees: yaw and roll of a clean face are well pinned


def _rendered(model, seed, yaws, drivers):
    """NIR frames of known pose: [(driver, pose, frame)]."""
    from train.synthetic.camera import NirCamera
    from train.synthetic.scene import DriverFactory, Pose, SceneRenderer

    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed)
    out = []
    for d in range(drivers):
        person, camera = factory.driver(rng), NirCamera(rng, 480, 640)
        for yaw in yaws:
            pose = Pose(yaw=yaw, pitch=float(rng.uniform(-15, 15)), roll=float(rng.uniform(-8, 8)))
            canvas = camera.backdrop(rng)
            scene.draw(canvas, person, factory.expression(rng, int(rng.integers(7))), pose)
            out.append((d, pose, camera.expose(canvas, pose.height)))
    return out


def test_std_on_rendered_faces_grows_with_yaw_and_covers_the_errors(default_model):
    """3 drivers × 7 yaws: the std is honest (≥ 80 % of errors within 2 std, 95 % expected; errors
    less each driver's median, its face's own offset) and larger on turned heads."""
    import face

    rows = []
    with face.FaceStage(video=False, model=default_model) as stage:
        for d, pose, frame in _rendered(default_model, 0, (-55, -40, -20, 0, 20, 40, 55), 3):
            result = stage(frame)
            assert result, result.reason
            std = result.pose_std
            assert len(std) == 3 and all(isinstance(v, float) and 0 < v < 180 for v in std)
            rows.append((d, pose.yaw, result.yaw - pose.yaw, result.pitch - pose.pitch, result.roll - pose.roll, *std))
    rows = np.array(rows)
    errors, std = rows[:, 2:5], rows[:, 5:8]
    for d in np.unique(rows[:, 0]):
        errors[rows[:, 0] == d] -= np.median(errors[rows[:, 0] == d], axis=0)
    within = (np.abs(errors) < 2 * std).mean(axis=0)
    assert (within >= 0.8).all(), within
    turned, frontal = np.abs(rows[:, 1]) >= 40, rows[:, 1] == 0
    assert np.median(std[turned, 0]) > 1.5 * np.median(std[frontal, 0])


def test_video_stage_gives_a_std_on_every_frame(default_model):
    import face

    with face.FaceStage(video=True, model=default_model) as stage:
        results = [stage(frame) for _, _, frame in _rendered(default_model, 1, (0, 10, 20, 30, 20, 10), 1)]
    assert all(results)
    assert all(np.isfinite(r.pose_std).all() and min(r.pose_std) > 0 for r in results)
