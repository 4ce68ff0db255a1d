"""A driver's face is never upside down: the landmark tracker does not report one, and a track that
turned over is dropped and found afresh."""
import cv2
import numpy as np

from face.landmarks import LandmarkDetector, _upside_down


def test_upside_down_landmarks_are_recognised(astronaut_bgr):
    detector = LandmarkDetector(video=False)
    try:
        points, _ = detector(astronaut_bgr)
    finally:
        detector.close()
    height = astronaut_bgr.shape[0]
    assert points is not None and not _upside_down(points)
    turned = points.copy()
    turned[:, 1] = height - turned[:, 1]      # the same face turned over
    assert _upside_down(turned)


def test_the_video_tracker_never_reports_a_face_upside_down_and_recovers(astronaut_bgr):
    detector = LandmarkDetector(video=True)
    try:
        upright = [detector(astronaut_bgr)[0] for _ in range(3)]
        turned = [detector(cv2.rotate(astronaut_bgr, cv2.ROTATE_180))[0] for _ in range(3)]
        again = [detector(astronaut_bgr)[0] for _ in range(3)]
    finally:
        detector.close()
    assert all(p is not None and not _upside_down(p) for p in upright + again)
    assert all(p is None or not _upside_down(p) for p in turned)
    assert np.abs(again[-1][:, :2] - upright[-1][:, :2]).max() < 5.0   # the same face, found afresh


def test_a_warm_started_pose_that_landed_upside_down_is_solved_afresh(default_model, astronaut_bgr):
    """On a stream each frame's pose starts from the last one; one that went wrong (roll 180°) must
    not stay wrong."""
    from face.fit import Fitter, angles_from_rotation, rotation_from_angles

    detector = LandmarkDetector(video=False)
    try:
        points, _ = detector(astronaut_bgr)
    finally:
        detector.close()
    fitter = Fitter(default_model)
    upright = fitter(points)
    fitter._last_rotation = rotation_from_angles(0.0, 0.0, 180.0) @ upright.rotation   # as if it went wrong
    again = fitter(points)
    assert abs(angles_from_rotation(again.rotation)[2] - angles_from_rotation(upright.rotation)[2]) < 5.0
