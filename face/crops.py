"""Helpers for face crops in training loaders: align a photo's face, or side-map an aligned crop.

Both use one static-mode FaceMesh per process (created on first call; calls are serialised).
"""
import threading

import cv2
import numpy as np

from face.imageio import to_bgr8
from face.side_map import side_map

_lock = threading.Lock()
_detector = None
_renderers = {}


def _landmarks(image):
    global _detector
    from face.landmarks import LandmarkDetector

    with _lock:
        if _detector is None:
            _detector = LandmarkDetector(video=False, max_faces=2)
        landmarks, _ = _detector(image)
    return landmarks


def side_map_for_image(bgr_crop: np.ndarray):
    """Side map (H×W×3 uint8) of an aligned face crop from its own landmarks, or None if no face."""
    image = to_bgr8(bgr_crop)
    landmarks = _landmarks(image)
    if landmarks is None:
        return None
    return side_map(landmarks[:, :2], image.shape[0], image.shape[1])


def aligned_crop_for_image(bgr: np.ndarray, size: int = 128, with_side_map: bool = False):
    """The largest face of a photo as a size² crop aligned like the face stage's frontal renders
    (similarity to the default model's mean face), or None if no face. With `with_side_map`,
    (crop, side map of the crop) instead."""
    from face.bilinear import load
    from face.render import Renderer

    image = to_bgr8(bgr)
    landmarks = _landmarks(image)
    if landmarks is None:
        return None
    with _lock:
        if size not in _renderers:
            _renderers[size] = Renderer(load(), size)
        renderer = _renderers[size]
    matrix = renderer.alignment(landmarks)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    if not with_side_map:
        return crop
    return crop, side_map(landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2], size)
