"""The side map: a 3-channel landmark heatmap that rides beside the image into the generator.

Channels (B, G, R): eyes and brows; face oval and nose; lips. Each is the landmark contours drawn
anti-aliased at sub-pixel precision and softened by a Gaussian, peak 255. Only the 468 mesh points
are used, so maps from detected landmarks and from fitted meshes look the same.
"""
import functools

import cv2
import numpy as np

SIGMA = 1.0  # px at 128²; scaled with the output size


def _segments():
    from mediapipe.python.solutions import face_mesh_connections as c

    groups = (
        c.FACEMESH_LEFT_EYE | c.FACEMESH_RIGHT_EYE | c.FACEMESH_LEFT_EYEBROW | c.FACEMESH_RIGHT_EYEBROW,
        c.FACEMESH_FACE_OVAL | c.FACEMESH_NOSE,
        c.FACEMESH_LIPS,
    )
    return [np.array(sorted(group), dtype=np.int64) for group in groups]


SEGMENTS = _segments()  # per channel: (n, 2) landmark index pairs


def side_map(landmarks_xy: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """H×W×3 uint8 side map of 2-D landmarks (≥468 points, pixel coordinates of the output image)."""
    width = height if width is None else width
    points = np.asarray(landmarks_xy, dtype=np.float64)[:, :2]
    if points.shape[0] < 468 or not np.isfinite(points[:468]).all():
        raise ValueError(f"side map needs 468 finite 2-D landmarks, got {points.shape}")
    fixed = np.round(points[:468] * 16).astype(np.int32)  # 4 bits of sub-pixel position
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for channel, pairs in enumerate(SEGMENTS):
        plane = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(plane, fixed[pairs], False, 255, 1, cv2.LINE_AA, shift=4)  # (n, 2, 2): one 2-point line each
        out[..., channel] = plane
    sigma = SIGMA * max(height, width) / 128.0
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    return cv2.convertScaleAbs(out, alpha=_line_gain(sigma))


@functools.lru_cache(maxsize=8)
def _line_gain(sigma: float) -> float:
    """Gain that brings a blurred straight contour's crest back to 255 (same for every map)."""
    plane = np.zeros((64, 64), dtype=np.uint8)
    cv2.line(plane, (8 * 16, 32 * 16), (56 * 16, 40 * 16), 255, 1, cv2.LINE_AA, shift=4)
    return 255.0 / max(float(cv2.GaussianBlur(plane, (0, 0), sigma).max()), 1.0)
