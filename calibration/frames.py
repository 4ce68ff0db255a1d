"""Calibration frames: a video or a folder of images, through the runtime's own face stage.

INT8 scales must be measured on what the engine really sees in the car: the frontal render and
side map that `face.FaceStage` produces from camera frames, not raw frames. Unreadable files and
frames with no face are skipped and counted, never fatal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engines.contract import DEFAULT_IMAGE_SIZE
from face.imageio import read_image, to_network

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"}
SIDE_MAP_SUFFIX = ".side.png"


@dataclass
class CalibrationSet:
    """Network-ready frontal images and side maps, float32 N×3×S×S in [-1, 1], and what was skipped."""

    images: np.ndarray
    side_maps: np.ndarray
    frames_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self):
        return len(self.images)

    def summary(self) -> dict:
        return {"samples": len(self), "frames_read": self.frames_read, "skipped": dict(self.skipped)}


def iter_frames(source, stride: int = 1, skipped: dict | None = None):
    """(name, BGR frame) from a video file or every image under a folder (sorted); bad images counted."""
    source = Path(source)
    skipped = skipped if skipped is not None else {}
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.lower().endswith(SIDE_MAP_SUFFIX))
        if not files:
            raise ValueError(f"calibration folder {source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for path in files[::stride]:
            try:
                yield str(path), read_image(path)
            except ValueError:
                skipped["unreadable"] = skipped.get("unreadable", 0) + 1
        return
    if not source.is_file():
        raise FileNotFoundError(f"calibration frames {source} not found (expected a video file or a folder of images)")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(f"{source}: not a readable video")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % stride == 0:
                yield f"{source}#{index}", frame
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise ValueError(f"{source}: video holds no decodable frames")


def collect(source, size: int = DEFAULT_IMAGE_SIZE, limit: int = 200, stride: int = 1, stage=None,
            progress: bool = True) -> CalibrationSet:
    """Run frames through the face stage until `limit` faces are collected.

    stage: a `face.FaceStage` (tests pass one with a small model); by default one is made with
    video tracking for a video file and per-image fitting for a folder.
    """
    source = Path(source)
    own_stage = stage is None
    if own_stage:
        from face import FaceStage
        stage = FaceStage(size=size, video=not source.is_dir())
    skipped: dict[str, int] = {}
    images, side_maps, read = [], [], 0
    try:
        bar = tqdm(iter_frames(source, stride, skipped), desc="calibration frames", unit="frame",
                   disable=not progress)
        for _, frame in bar:
            read += 1
            result = stage(frame)
            if not result:
                reason = result.reason.split(":")[0]
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            if result.frontal.shape[0] != size:
                raise ValueError(f"face stage renders {result.frontal.shape[0]}², the model takes {size}²")
            images.append(result.frontal)
            side_maps.append(result.side_map)
            bar.set_postfix(faces=len(images))
            if len(images) >= limit:
                break
    finally:
        if own_stage:
            stage.close()
    if not images:
        raise ValueError(f"{source}: no face found in {read} frames (skipped: {skipped}); "
                         "calibration needs frames that show the driver's face")
    return CalibrationSet(to_network(np.stack(images)), to_network(np.stack(side_maps)), read, skipped)


def from_arrays(images: np.ndarray, side_maps: np.ndarray) -> CalibrationSet:
    """A calibration set from uint8 N×S×S×3 frontal images and side maps already at hand."""
    if images.shape != side_maps.shape or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images and side maps N×S×S×3 of one shape, got {images.shape} and {side_maps.shape}")
    return CalibrationSet(to_network(images), to_network(side_maps), len(images))
