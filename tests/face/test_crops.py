"""Source-domain face crops share the frontal renders' framing: same alignment, same black surround."""
import numpy as np

from face.crops import face_crop, face_mask


def test_face_crop_is_framed_like_the_frontal_render(static_stage, astronaut_bgr):
    result = static_stage(astronaut_bgr)
    crop, crop_landmarks = face_crop(static_stage.renderer, astronaut_bgr, result.landmarks)
    size = static_stage.size
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    inside = face_mask(crop_landmarks, size).astype(bool)
    assert not crop[~inside].any()  # black beyond the face oval
    aligned = static_stage.renderer.aligned_crop(astronaut_bgr, result.landmarks)
    np.testing.assert_array_equal(crop[inside], aligned[inside])  # the photo itself inside it
    rendered = result.frontal.any(axis=2)
    overlap = (inside & rendered).sum() / (inside | rendered).sum()
    assert overlap > 0.85, f"face oval and frontal render cover different regions (IoU {overlap:.2f})"


def test_face_mask_is_the_filled_oval(static_stage, astronaut_bgr):
    landmarks = static_stage(astronaut_bgr).landmarks
    mask = face_mask(landmarks, astronaut_bgr.shape[0], astronaut_bgr.shape[1])
    assert mask.shape == astronaut_bgr.shape[:2] and set(np.unique(mask)) == {0, 1}
    nose_x, nose_y = np.round(landmarks[1, :2]).astype(int)
    assert mask[nose_y, nose_x] == 1 and mask[0, 0] == 0 and mask[-1, -1] == 0
    x0, y0 = landmarks[:468, :2].min(axis=0)
    x1, y1 = landmarks[:468, :2].max(axis=0)
    assert 0.5 < mask.sum() / ((x1 - x0) * (y1 - y0)) < 1.0  # an oval inside the landmarks' box
