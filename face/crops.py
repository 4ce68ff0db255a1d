"""Helpers for already-aligned face crops (training loaders): their side maps."""
import threading

import numpy as np

from face.imageio import to_bgr8
from face.side_map import side_map

_detector = None
_lock = threading.Lock()


def side_map_for_image(bgr_crop: np.ndarray):
    """Side map (H×W×3 uint8) of an aligned face crop from its own landmarks, or None if no face.

    Uses one static-mode FaceMesh per process (created on first call; calls are serialised).
    """
    global _detector
    from face.landmarks import LandmarkDetector

    image = to_bgr8(bgr_crop)
    with _lock:
        if _detector is None:
            _detector = LandmarkDetector(video=False, max_faces=1)
        landmarks, _ = _detector(image)
    if landmarks is None:
        return None
    return side_map(landmarks[:, :2], image.shape[0], image.shape[1])
