"""Whole frames → face crops aligned by the real face stage (mediapipe), cached; no-face frames and
unreadable files counted. The photo is scikit-image's astronaut, read at test time."""
import cv2
import numpy as np
import pytest

from train.datasets import Sample
from train.datasets.face_crops import crop_faces

skimage_data = pytest.importorskip("skimage.data")


def test_a_portrait_is_cropped_to_the_face_and_cached_and_a_blank_frame_is_used_whole(tmp_path):
    portrait = np.zeros((700, 560, 3), np.uint8)  # a KDEF-like portrait: face in a larger frame
    portrait[100:612, 24:536] = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "AF01HAS.JPG"), portrait)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((200, 200, 3), 90, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    samples = [Sample(tmp_path / name, label=3, subject="F01") for name in ("AF01HAS.JPG", "blank.png", "broken.png")]
    cropped, counts = crop_faces(samples, tmp_path / "cache", size=64, progress=False)
    assert counts == {"cached": 0, "cropped": 1, "no_face": 1, "unreadable": 1}
    crop = cv2.imread(str(cropped[0].path))
    assert crop.shape == (64, 64, 3) and cropped[0].meta["original"] == str(tmp_path / "AF01HAS.JPG")
    assert cropped[0].label == 3 and cropped[0].subject == "F01"
    # The face fills the crop's face oval (mostly skin, not the photo's black border); beyond it, black
    # as in the frontal renders.
    inside = crop.max(axis=2) > 0
    assert inside.mean() > 0.45 and (crop[inside].mean(axis=1) > 40).mean() > 0.9
    assert not crop[[0, 0, -1, -1], [0, -1, 0, -1]].any()
    assert cropped[1].path == samples[1].path and cropped[2].path == samples[2].path
    again, counts = crop_faces(samples, tmp_path / "cache", size=64, progress=False)
    assert counts["cached"] == 1 and counts["no_face"] == 1 and again[0].path == cropped[0].path
