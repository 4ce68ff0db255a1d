"""FaceMesh's landmarks read from their serialised bytes equal the attribute-by-attribute read, and
anything laid out otherwise falls back to that read."""
import cv2
import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2

from face.landmarks import landmark_array


def attribute_read(face):
    return np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)


@pytest.fixture(scope="module")
def mesh_face(astronaut_bgr):
    from mediapipe.python.solutions import face_mesh

    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        faces = mesh.process(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    assert faces, "FaceMesh found no face on the astronaut photo"
    return faces[0]


def test_a_real_facemesh_face_reads_the_same_both_ways(mesh_face):
    fast = landmark_array(mesh_face)
    assert fast.shape == (478, 3) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, attribute_read(mesh_face))


def landmarks(rows, **extra):
    face = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in rows:
        face.landmark.add(x=x, y=y, z=z, **extra)
    return face


@pytest.mark.parametrize("face", [
    landmarks([(0.1, 0.2, -0.3), (0.0, 1.0, 0.5)], visibility=0.9),   # a field FaceMesh does not set
    landmarks([(0.1, 0.2, -0.3)] * 3, presence=0.5),
    landmarks([]),
], ids=["visibility", "presence", "empty"])
def test_another_layout_takes_the_attribute_read(face):
    got = landmark_array(face)
    assert got.shape == (len(face.landmark), 3)
    np.testing.assert_array_equal(got, attribute_read(face).reshape(-1, 3))


def test_a_partly_set_landmark_is_not_misread():
    face = landmarks([(0.25, 0.5, 0.75)] * 2)
    face.landmark.add(x=0.5, y=0.5)   # no z: 12 bytes where 17 were expected
    np.testing.assert_array_equal(landmark_array(face), attribute_read(face))
