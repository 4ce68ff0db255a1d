"""Whole frames (KDEF portraits, MMI video frames) → face crops aligned by the project's face stage.

`face.FaceStage` finds the 478 landmarks and `face.crops.face_crop` warps the frame so the face
lands where the frontal renders put it, black beyond the face oval as they are: the classifier
sees faces laid out exactly like the UIT generator's output. Crops are cached under
CACHE/masked_crops_<size>/ (never inside the dataset), keyed by file path, size and modification
time, so a second run or a resumed one reads them back.
A frame where no face is found is used whole (square centre crop + resize, as for any image) and
counted; an unreadable one is left for the reader to skip and count.
"""
import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import cv2

from face.imageio import read_image

from . import Sample

log = logging.getLogger(__name__)


class FaceCropper:
    def __init__(self, cache_dir, size: int = 128):
        self.dir = Path(cache_dir) / f"masked_crops_{int(size)}"
        self.size = int(size)
        self._stage = None
        self.counts = {"cached": 0, "cropped": 0, "no_face": 0, "unreadable": 0}

    def _key(self, path: Path) -> Path:
        stat = path.stat()
        digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return self.dir / f"{digest}.png"

    def stage(self):
        if self._stage is None:
            import face
            self._stage = face.FaceStage(size=self.size, video=False, max_faces=1)
        return self._stage

    def crop(self, path) -> Path | None:
        """Path of the aligned crop of this frame, or None when it has no face or cannot be read."""
        path = Path(path)
        try:
            cached = self._key(path)
        except OSError:
            self.counts["unreadable"] += 1
            return None
        if cached.is_file():
            self.counts["cached"] += 1
            return cached
        if cached.with_suffix(".noface").is_file():
            self.counts["no_face"] += 1
            return None
        try:
            frame = read_image(path)
        except ValueError:
            self.counts["unreadable"] += 1
            return None
        stage = self.stage()
        result = stage(frame)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not result:
            self.counts["no_face"] += 1
            cached.with_suffix(".noface").write_text(result.reason + "\n")
            return None
        from face.crops import face_crop  # mediapipe's topology: only where crops are made

        crop, _ = face_crop(stage.renderer, frame, result.landmarks)
        tmp = cached.with_name(cached.stem + ".tmp.png")
        if not cv2.imwrite(str(tmp), crop):
            raise OSError(f"cannot write face crop cache {tmp}")
        tmp.replace(cached)
        self.counts["cropped"] += 1
        return cached

    def close(self):
        if self._stage is not None:
            self._stage.close()
            self._stage = None


def crop_faces(samples: list[Sample], cache_dir, size: int = 128, progress: bool = True) -> tuple[list[Sample], dict]:
    """Samples pointing at aligned face crops (`meta["original"]` keeps the frame's path), and the
    counts (cached, cropped, no_face, unreadable). Frames without a face keep their own path."""
    from tqdm import tqdm
    cropper = FaceCropper(cache_dir, size)
    out = []
    try:
        for sample in tqdm(samples, desc="face crops", unit="img", disable=not progress):
            crop = cropper.crop(sample.path)
            if crop is None:
                out.append(sample)
            else:
                out.append(replace(sample, path=crop, meta={**sample.meta, "original": str(sample.path)}))
    finally:
        cropper.close()
    if cropper.counts["no_face"]:
        log.warning("%d of %d frames had no face the face stage could find: used whole (resized)",
                    cropper.counts["no_face"], len(samples))
    return out, dict(cropper.counts)
