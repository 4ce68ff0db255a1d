"""Face crops for the source domain: aligned like the frontal renders and masked like them.

The UIT generator maps frontal renders (the face on black, cut at the mesh's outline) to the source
domain, so a source crop must share that framing: the same similarity alignment and the same
surround, black outside the face oval. Otherwise the generator spends itself painting hair and
background the classifier then relies on. `face_crop` is the one place that makes such a crop;
the synthetic writer, the dataset loaders and `aligned_crop_for_image` all use it.

The photo helpers below use one static-mode FaceMesh per process (created on first call; calls
are serialised).
"""
import functools
import threading

import cv2
import numpy as np

from face.imageio import to_bgr8
from face.side_map import side_map

_lock = threading.Lock()
_detector = None
_renderers = {}


@functools.lru_cache(maxsize=1)
def _face_oval() -> np.ndarray:
    """FaceMesh's face-oval landmark indices, in order around the face (the mesh's outline)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    following = dict(FACEMESH_FACE_OVAL)
    start = min(following)
    ring = [start]
    while following[ring[-1]] != start:
        ring.append(following[ring[-1]])
    return np.array(ring, dtype=np.int64)


def face_mask(landmarks_xy: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """H×W uint8 mask, 1 inside the face oval of 468+ landmarks (pixel coordinates), 0 outside."""
    mask = np.zeros((height, height if width is None else width), dtype=np.uint8)
    outline = np.round(np.asarray(landmarks_xy, dtype=np.float64)[_face_oval(), :2] * 16).astype(np.int32)
    cv2.fillPoly(mask, [outline], 1, cv2.LINE_8, shift=4)
    return mask


def face_crop(renderer, frame: np.ndarray, landmarks_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, crop landmarks): the frame aligned by `renderer` (a face.render.Renderer) and blacked
    out beyond the face oval, as the frontal renders are; the landmarks in crop pixels."""
    matrix = renderer.alignment(landmarks_xy)
    crop = cv2.warpAffine(frame, matrix, (renderer.size, renderer.size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT)
    crop_landmarks = np.asarray(landmarks_xy, dtype=np.float64)[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    mask = face_mask(crop_landmarks, renderer.size)
    crop = crop * (mask[..., None] if crop.ndim == 3 else mask)
    return crop, crop_landmarks


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
    """The largest face of a photo as a size² `face_crop` (aligned and masked like the face stage's
    frontal renders), or None if no face. With `with_side_map`, (crop, side map of the crop)."""
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
    crop, crop_landmarks = face_crop(renderer, image, landmarks)
    if not with_side_map:
        return crop
    return crop, side_map(crop_landmarks, size)


class CropFitter:
    """The face stage on an aligned face crop (`fitter(crop)` → FaceResult | NoFace). FaceMesh looks
    for faces in camera-sized frames and misses a 64² crop on its own, so the crop is enlarged to
    ENLARGED px high and placed in the middle of a black CANVAS; the result's positions are in that
    canvas (`offset` and `scale` take them back to the crop). Each image is fitted alone (video=False)."""

    ENLARGED = 256
    CANVAS = (480, 640)

    def __init__(self, model):
        from face.stage import FaceStage   # face.stage uses this module's face_crop

        self.stage = FaceStage(size=64, video=False, model=model)

    def scale(self, crop: np.ndarray) -> float:
        return self.ENLARGED / crop.shape[0]

    def enlarged(self, crop: np.ndarray) -> np.ndarray:
        scale = self.scale(crop)
        return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)

    def offset(self, crop: np.ndarray) -> np.ndarray:
        """(x, y) of the enlarged crop's top-left corner in the canvas."""
        h, w = self.CANVAS
        big_h, big_w = (round(side * self.scale(crop)) for side in crop.shape[:2])
        if big_h > h or big_w > w:
            raise ValueError(f"crop of {crop.shape[1]}x{crop.shape[0]} px does not fit the fitter's canvas")
        return np.array([(w - big_w) // 2, (h - big_h) // 2], dtype=np.float64)

    def __call__(self, crop: np.ndarray):
        big = self.enlarged(to_bgr8(crop))
        x, y = self.offset(crop).astype(int)
        canvas = np.zeros(self.CANVAS + (3,), np.uint8)
        canvas[y:y + big.shape[0], x:x + big.shape[1]] = big
        return self.stage(canvas)

    def close(self):
        self.stage.close()
