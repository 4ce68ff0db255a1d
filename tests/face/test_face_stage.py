"""The face stage end to end on a real photo, and on frames it must refuse politely."""
import numpy as np
import pytest

import face


def test_astronaut_gives_a_full_result(static_stage, astronaut_bgr):
    result = static_stage(astronaut_bgr)
    assert isinstance(result, face.FaceResult), getattr(result, "reason", "")
    x0, y0, x1, y1 = result.box
    # The astronaut's face sits in the upper middle of the 512² photo.
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200
    assert result.landmarks.shape == (478, 2)
    assert abs(result.yaw) < 20 and abs(result.pitch) < 20 and abs(result.roll) < 15
    for image in (result.frontal, result.simulated, result.side_map):
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert result.visibility.shape == (128, 128) and result.visibility.dtype == np.float32
    assert 0.0 <= result.visibility.min() and result.visibility.max() <= 1.0
    # A near-frontal face is seen almost everywhere the mesh covers.
    covered = result.simulated[..., 0] > 0
    assert covered.mean() > 0.4
    assert result.visibility[covered].mean() > 0.8
    assert result.fit_residual < 0.1
    # The texture is really the photo: skin is bright, the background outside the face black.
    assert result.frontal[covered].mean() > 80 and result.frontal[~covered].max() == 0


def test_crop_is_the_aligned_frame_masked_to_the_face_oval(static_stage, astronaut_bgr):
    """The crop path's image: the frame itself aligned (no frontalisation), made exactly as the
    classifier's source training crops are (face.crops.face_crop), black beyond the face oval."""
    from face.crops import face_crop, face_mask

    result = static_stage(astronaut_bgr)
    expected, crop_landmarks = face_crop(static_stage.renderer, astronaut_bgr, result.landmarks)
    assert result.crop.shape == (128, 128, 3) and result.crop.dtype == np.uint8
    np.testing.assert_array_equal(result.crop, expected)
    inside = face_mask(crop_landmarks, 128).astype(bool)
    assert 0.2 < inside.mean() < 0.9
    assert result.crop[~inside].max() == 0 and result.crop[inside].mean() > 80   # skin inside, black outside
    # The same layout as the frontal render: the face sits where the render puts it.
    covered = result.simulated[..., 0] > 0
    assert (inside & covered).sum() > 0.7 * covered.sum()


def test_frontal_render_is_aligned_the_same_way_for_every_face(static_stage, astronaut_bgr):
    import cv2

    small = cv2.resize(astronaut_bgr, (384, 384), interpolation=cv2.INTER_AREA)
    moved = np.zeros((480, 640, 3), np.uint8)
    moved[50:434, 200:584] = small
    a, b = static_stage(astronaut_bgr), static_stage(moved)
    assert isinstance(b, face.FaceResult)
    # Same face, different place and size in the frame: the frontal landmarks land on the same pixels.
    d = np.nanmean(np.linalg.norm(a.frontal_landmarks - b.frontal_landmarks, axis=1))
    assert d < 1.5


@pytest.mark.parametrize("convert", [
    lambda im: im.mean(axis=2).astype(np.uint8),                      # grey
    lambda im: (im.mean(axis=2) * 4).astype(np.uint16),               # 10-bit NIR in 16
    lambda im: im[..., :1].copy(),                                    # H×W×1
    lambda im: np.pad(im, ((0, 3), (0, 5), (0, 0)))[:, :, :3],        # odd size
])
def test_camera_formats_are_accepted(static_stage, astronaut_bgr, convert):
    assert isinstance(static_stage(convert(astronaut_bgr)), face.FaceResult)


@pytest.mark.parametrize("frame, reason", [
    (np.zeros((480, 640, 3), np.uint8), "no face"),
    (np.full((480, 640), 255, np.uint8), "no face"),
    (np.zeros((16, 16, 3), np.uint8), "too small"),
    (np.zeros((4, 4, 4, 4), np.uint8), "bad frame"),
    ("not an image", "bad frame"),
    (np.zeros((0, 10, 3), np.uint8), "bad frame"),
])
def test_bad_frames_give_a_reason_not_an_exception(static_stage, frame, reason):
    result = static_stage(frame)
    assert isinstance(result, face.NoFace) and not result
    assert reason in result.reason


def test_side_map_for_an_aligned_crop(static_stage, astronaut_bgr):
    crop = static_stage.renderer.aligned_crop(astronaut_bgr, static_stage(astronaut_bgr).landmarks)
    side = face.side_map_for_image(crop)
    assert side.shape == (128, 128, 3) and side.dtype == np.uint8
    # Each channel (eyes+brows, oval+nose, lips) has its own ink.
    assert (side.reshape(-1, 3).max(axis=0) > 200).all()
    assert face.side_map_for_image(np.zeros((128, 128, 3), np.uint8)) is None


def test_the_largest_of_several_faces_is_the_driver(static_stage, astronaut_bgr):
    import cv2

    frame = np.zeros((480, 900, 3), np.uint8)
    frame[:, :480] = cv2.resize(astronaut_bgr, (480, 480))[:480]
    frame[100:356, 560:816] = cv2.resize(astronaut_bgr, (256, 256))
    result = static_stage(frame)
    assert isinstance(result, face.FaceResult)
    assert result.faces_found == 2
    assert result.box[2] < 480  # the big face on the left, not the small one on the right


@pytest.mark.parametrize("shift", [-150, 150])
def test_a_face_partly_out_of_frame_gives_a_result_or_a_reason(static_stage, astronaut_bgr, shift):
    frame = np.zeros_like(astronaut_bgr)
    if shift > 0:
        frame[:, shift:] = astronaut_bgr[:, :-shift]
    else:
        frame[:, :shift] = astronaut_bgr[:, -shift:]
    result = static_stage(frame[:, :300] if shift < 0 else frame[:, 300:])
    if isinstance(result, face.FaceResult):
        covered = result.simulated[..., 0] > 0
        # What lies outside the frame was not seen: part of the face is filled from its mirror side.
        assert result.visibility[covered].mean() < 0.95
        assert result.frontal.shape == (128, 128, 3)
    else:
        assert result.reason


def test_a_tiny_face_gives_a_result_or_a_reason(static_stage, astronaut_bgr):
    import cv2

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[200:264, 300:364] = cv2.resize(astronaut_bgr, (64, 64), interpolation=cv2.INTER_AREA)
    result = static_stage(frame)
    assert isinstance(result, (face.FaceResult, face.NoFace))


def test_video_mode_follows_a_moving_face(astronaut_bgr):
    with face.FaceStage(video=True) as stage:
        boxes = []
        for dx in range(0, 40, 4):
            result = stage(np.roll(astronaut_bgr, dx, axis=1))
            assert isinstance(result, face.FaceResult)
            boxes.append(result.box[0])
    assert np.allclose(np.diff(boxes), 4, atol=2)  # tracking follows the 4 px steps


def test_video_mode_switches_to_a_larger_face_that_appears(astronaut_bgr):
    import cv2

    small = np.zeros((480, 640, 3), np.uint8)
    small[130:430, 340:640] = cv2.resize(astronaut_bgr, (300, 300))
    both = small.copy()
    both[:460, :320] = cv2.resize(astronaut_bgr, (460, 460))[:, 60:380]
    with face.FaceStage(video=True) as stage:
        first = stage(small)
        assert isinstance(first, face.FaceResult) and first.box[0] > 340
        boxes = [stage(both).box[0] for _ in range(2 * stage.detector.check_every)]
    assert boxes[0] > 340 and boxes[-1] < 320  # after a check the driver is the big face on the left


def test_aligned_crop_for_a_photo_matches_the_frontal_layout(static_stage, astronaut_bgr):
    crop, side = face.aligned_crop_for_image(astronaut_bgr, with_side_map=True)
    assert crop.shape == side.shape == (128, 128, 3)
    # The crop's own landmarks sit where the layout puts the mean face (the same place as frontal
    # renders), up to this face's own shape.
    seen = static_stage(crop).landmarks[:468]
    template = static_stage.renderer.layout.template
    assert np.linalg.norm(seen - template, axis=1).mean() < 4.0
    assert np.linalg.norm(seen.mean(axis=0) - template.mean(axis=0)) < 2.0
    assert face.aligned_crop_for_image(np.zeros((200, 200), np.uint8)) is None


def test_the_face_stage_runs_its_small_linear_algebra_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    import face
    with face.FaceStage(size=64, video=False):
        pass
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


def test_a_detector_point_that_is_not_finite_gives_a_reason(astronaut_bgr):
    """Landmarks with a NaN (a detector that lost a point) give a NoFace naming it; the stream goes on."""
    stage = face.FaceStage(video=True)
    detect = stage.detector

    def one_point_lost(image):
        landmarks, count = detect(image)
        landmarks = landmarks.copy()
        landmarks[33, 0] = np.nan
        return landmarks, count

    try:
        assert isinstance(stage(astronaut_bgr), face.FaceResult)
        stage.detector = one_point_lost
        result = stage(astronaut_bgr)
        assert isinstance(result, face.NoFace) and "NaN" in result.reason
        stage.detector = detect
        assert isinstance(stage(astronaut_bgr), face.FaceResult)
    finally:
        detect.close()
