"""Frames and image files in, one image convention out.

Cameras and datasets give grey, BGR or BGRA frames, 8- or 16-bit. Everything downstream takes
uint8 H×W×3 BGR; networks take NCHW float32 in [-1, 1].
"""
from pathlib import Path

import cv2
import numpy as np


def to_bgr8(frame: np.ndarray) -> np.ndarray:
    """Any camera/dataset frame as uint8 H×W×3 BGR. 16-bit and float frames are scaled, not truncated."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"expected a 2-D or 3-D image array, got {getattr(frame, 'shape', type(frame))}")
    if frame.ndim == 3 and frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got {frame.shape[2]}")
    if frame.dtype != np.uint8:
        frame = _scale_to_uint8(frame)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)


def _scale_to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint16:
        # NIR sensors often use 10–12 of the 16 bits: stretch by the frame's own range of use.
        top = max(int(frame.max()), 1)
        bits = max(8, int(np.ceil(np.log2(top + 1))))
        return (frame.astype(np.float32) * (255.0 / ((1 << bits) - 1))).round().clip(0, 255).astype(np.uint8)
    if np.issubdtype(frame.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(frame)) <= 1.0 else 1.0
        return np.nan_to_num(frame * scale).round().clip(0, 255).astype(np.uint8)
    if np.issubdtype(frame.dtype, np.integer):
        return frame.clip(0, 255).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {frame.dtype}")


def decode_image(data: np.ndarray) -> np.ndarray | None:
    """An encoded image's pixels as stored (16-bit stays 16-bit), None when they cannot be decoded.
    OpenCV returns None for most damage but raises for a header that claims more pixels than its
    limit (2^30: a crafted 60000×60000 PNG of 138 bytes), so that is caught here."""
    if not data.size:
        return None
    try:
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def load_image(path) -> np.ndarray | None:
    """An image file's pixels as stored, None when it cannot be read or decoded."""
    try:
        return decode_image(np.fromfile(path, dtype=np.uint8))
    except OSError:
        return None


def read_image(path) -> np.ndarray:
    """Read an image file as uint8 BGR; ValueError naming the file when it cannot be decoded."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    if data is None:
        raise ValueError(f"{path}: no such image file")
    image = decode_image(data)
    if image is None:
        raise ValueError(f"{path}: not a readable image (corrupt or unsupported format)")
    return to_bgr8(image)


def write_image(path, image: np.ndarray) -> None:
    """Write an image file (its folder made when missing); OSError naming the file when it cannot be
    written (cv2.imwrite only returns False)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def to_network(images: np.ndarray) -> np.ndarray:
    """uint8 (N)HWC BGR → float32 (N)CHW in [-1, 1]."""
    x = np.asarray(images, dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def from_network(x: np.ndarray) -> np.ndarray:
    """float32 (N)CHW in [-1, 1] → uint8 (N)HWC BGR."""
    x = np.moveaxis(np.asarray(x, dtype=np.float32), -3, -1)
    return ((x + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
