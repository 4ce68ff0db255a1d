"""Where frames come from: a V4L2 camera, a video file, a folder of images (the demo is a video file).

Every source yields `Captured(index, frame, t_capture_ns, truth)` (a camera that is reconnecting
yields None now and then, so the caller can report it); `t_capture_ns` is
`time.monotonic_ns()` when the frame was taken, the clock every stage and the end-to-end latency use.
Cameras are live (the pipeline runs latest-wins); files and folders are replays (lossless), paced at
their timestamps unless `fast`. Opening a source that cannot give frames raises SourceError naming it;
a folder's images that cannot be read are skipped and counted (`status.skipped`), not fatal.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face.imageio import decode_image, to_bgr8
from pipeline import truth as truth_io
from pipeline.messages import SourceStatus
from pipeline.wire import ALLOWED_DTYPES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"}
DEFAULT_FPS = 30.0
BACKOFF_S = (0.5, 1.0, 2.0, 4.0)   # camera reconnect waits; the last repeats
HEARTBEAT_S = 0.25                 # while reconnecting, how often frames() yields None
OPENCV_LOG_ERRORS = 2              # cv2.setLogLevel: errors only, no warnings


class SourceError(RuntimeError):
    """The source cannot give frames (missing, unreadable, not a video); the message names it."""


@dataclass
class Captured:
    index: int               # position in the source (frame number of a file; count for a camera)
    frame: np.ndarray
    t_capture_ns: int
    truth: int | None = None  # ground truth: label index, truth.NO_FACE, or None when unknown
    t_media_ns: int | None = None  # the frame's time on the source's clock (None: the capture time)

    @property
    def media_ns(self) -> int:
        """The clock the driver monitor's durations are measured on: a file's timestamps (a fast
        replay decides as the recorded pace would), a camera's capture time."""
        return self.t_capture_ns if self.t_media_ns is None else self.t_media_ns


MONO_FORMATS = ("GREY", "Y16", "Y8")   # NIR sensors: OpenCV must not convert them to BGR
PIXEL_FORMATS = (*MONO_FORMATS, "YUYV", "MJPG")   # the FOURCCs a camera is asked for; "auto": its own


class Pacer:
    """Releases each frame at its media time after the first one (a replay runs at the recorded
    pace); fast: no waiting."""

    def __init__(self, fast: bool, should_stop):
        self.fast, self.should_stop, self.origin = fast, should_stop, None

    def wait(self, media_s: float):
        if self.fast:
            return
        now = time.monotonic()
        if self.origin is None:
            self.origin = now - media_s
        due = self.origin + media_s
        while now < due and not self.should_stop():
            time.sleep(min(due - now, 0.05))
            now = time.monotonic()


# frames(buffer_for): buffer_for(index, shape, dtype) → memory for frame `index` to be decoded into, or
# None (a new array). Capture passes its outlet's shared-memory lease (pipeline/shared_frames.py), so a
# frame is made where the next stage reads it; a frame of another shape than asked gets a new array.
BufferFor = Callable[[int, tuple, np.dtype], "np.ndarray | None"]


class VideoSource:
    live = False

    def __init__(self, path, fast=False, skip=0, should_stop=lambda: False):
        self.path = Path(path)
        self.name = str(path)
        if "://" in str(path):   # OpenCV would try it through FFmpeg; a stream is neither paced nor live-safe here
            raise SourceError(f"{path}: network streams are not a source; give a video file, a folder of frames "
                              "or a camera (/dev/videoN or N)")
        if self.path.exists() and not self.path.is_file():   # a device other than a camera, a pipe
            raise SourceError(f"{path}: not a video file, a folder of frames or a camera (/dev/videoN or N)")
        if not self.path.is_file():
            raise SourceError(f"{path}: no such video file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"{path}: video file not readable (permission denied)")
        self.cap = cv2.VideoCapture(str(self.path))
        ok, self.first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok or self.first is None:
            self.cap.release()
            raise SourceError(f"{path}: not a readable video (corrupt, truncated or unsupported format)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        self.declared = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        truth_file = truth_io.beside(self.path)
        self.truth = truth_io.load(truth_file) if truth_file else {}
        self.fast, self.skip, self.should_stop = fast, int(skip), should_stop
        self.status = SourceStatus()

    def frames(self, buffer_for: BufferFor | None = None):
        pacer = Pacer(self.fast, self.should_stop)
        index, frame, media_s = 0, self.first, 0.0
        self.status.state = "running"
        while frame is not None and not self.should_stop():
            if index >= self.skip:
                pacer.wait(media_s)
                yield Captured(index, frame, time.monotonic_ns(), self.truth.get(index), round(media_s * 1e9))
            index += 1
            # Decoded into the buffer given for it, else a new array: a sent frame is never written again.
            out = buffer_for(index, frame.shape, frame.dtype) if buffer_for and index >= self.skip else None
            ok, frame = self.cap.read(out)
            frame = frame if ok else None
            media_s = self._media_time(index, media_s)
        self.status.state = "ended"
        if self.declared and index < self.declared:
            self.status.note = f"{self.name}: video ended early after {index} of {self.declared} frames (truncated?)"

    def _media_time(self, index: int, previous: float) -> float:
        """The frame's timestamp in the file (variable frame rates replay as recorded); the nominal
        rate where the container gives none that increases."""
        stamp = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return stamp if stamp > previous else index / self.fps

    def close(self):
        self.cap.release()


class FolderSource:
    """Images in name order. A file that cannot be read, or whose pixels the pipeline does not take,
    is skipped: counted in `status.skipped` and named once on stderr."""

    live = False

    def __init__(self, path, fast=False, skip=0, fps=DEFAULT_FPS, should_stop=lambda: False):
        self.path, self.name = Path(path), str(path)
        if not self.path.is_dir():
            raise SourceError(f"{path}: no such folder")
        try:
            names = sorted(os.listdir(self.path))
        except OSError as error:
            raise SourceError(f"{path}: cannot read folder: {error.strerror or error}") from None
        self.files = [self.path / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        if not self.files:
            raise SourceError(f"{path}: no images in folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self._check_one_readable()
        recorded = self.path / "frames.jsonl"
        self.truth = truth_io.load(recorded) if recorded.is_file() else {}
        self.fps, self.fast, self.skip, self.should_stop = fps, fast, int(skip), should_stop
        self.status = SourceStatus()

    def _check_one_readable(self):
        """A folder in which no image at all can be read is not worth starting a run for; the files
        are tried in order until one reads (usually the first)."""
        first_error = None
        for file in self.files:
            try:
                read_frame(file)
                return
            except ValueError as error:
                first_error = first_error or error
        raise SourceError(f"{self.path}: none of the {len(self.files)} images is readable ({first_error})")

    def frames(self, buffer_for: BufferFor | None = None):
        """(buffer_for is not used: an image file's decoder makes its own array.)"""
        pacer = Pacer(self.fast, self.should_stop)
        self.status.state = "running"
        try:
            for index, file in enumerate(self.files):
                if self.should_stop():
                    break
                if index < self.skip:
                    continue
                try:
                    frame = read_frame(file)
                except ValueError as error:
                    self._skip(error)
                    continue
                media_s = index / self.fps if self.fps > 0 else 0.0
                pacer.wait(media_s)
                yield Captured(index, frame, time.monotonic_ns(), self.truth.get(index), round(media_s * 1e9))
            self.status.state = "ended"
        finally:
            if self.status.skipped:   # each file is named in the log already: the last word counts them
                self.status.note = f"{self.name}: skipped {self.status.skipped} unreadable or unsupported image(s)"

    def _skip(self, error: ValueError):
        self.status.skipped += 1
        self.status.note = str(error)
        print(f"exprada pipeline: skipped {error}", file=sys.stderr, flush=True)

    def close(self):
        pass


def read_frame(file: Path) -> np.ndarray:
    """An image file as stored (16-bit NIR stays 16-bit; the face stage converts); ValueError
    "FILE: why" when it cannot be read or its pixels cannot go down the pipeline."""
    try:
        if not file.is_file():   # a folder or a FIFO named like an image: never opened (a FIFO would block)
            raise ValueError(f"{file}: not a regular file")
        data = np.fromfile(file, dtype=np.uint8)
    except OSError as error:
        raise ValueError(f"{file}: cannot read: {error.strerror or error}") from None
    image = decode_quietly(data)
    if image is None:
        raise ValueError(f"{file}: not a readable image (corrupt or unsupported format)")
    problem = why_unsupported(image)
    if problem:
        raise ValueError(f"{file}: {problem}")
    return image


def decode_quietly(data: np.ndarray) -> np.ndarray | None:
    """cv2.imdecode without OpenCV's own warnings about a damaged file: the skip line says it once."""
    previous = cv2.setLogLevel(OPENCV_LOG_ERRORS)
    try:
        return decode_image(data)
    finally:
        cv2.setLogLevel(previous)


def why_unsupported(frame: np.ndarray) -> str | None:
    """Why a frame cannot go down the pipeline, or None: its pixels must travel between stages
    (pipeline/wire.py) and be an image the face stage takes (face/imageio.py: to_bgr8)."""
    if frame.dtype.name not in ALLOWED_DTYPES:
        return f"{frame.dtype.name} pixels are not supported (the pipeline takes {', '.join(ALLOWED_DTYPES)})"
    try:
        to_bgr8(frame[:1, :1])   # a 1×1 corner meets the same checks of shape, channels and type
    except ValueError as error:
        return str(error)
    return None


class CameraSource:
    """A V4L2 camera. NIR sensors give GREY or Y16: ask for it by FOURCC and keep OpenCV from
    converting to BGR; a one-frame driver buffer so a read never returns a stale frame. When the
    camera goes away, reconnect with growing waits and say so in `status`."""

    live = True

    def __init__(self, device: str, pixel_format: str = "auto", should_stop=lambda: False, open_now=True,
                 first_index: int = 0):
        self.device, self.name = device, device
        self.first_index = int(first_index)   # a restarted capture numbers on from where the last one stopped
        self.pixel_format = pixel_format.upper()
        self.should_stop = should_stop
        self.status = SourceStatus()
        self.fps = None
        self.cap = None
        if open_now:
            if not Path(device).exists():
                raise SourceError(f"{device}: no such camera device")
            if not self._open():
                raise SourceError(f"{device}: camera could not be opened (busy, no permission, or not a capture device)")

    def _open(self) -> bool:
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            return False
        if self.pixel_format in PIXEL_FORMATS:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.pixel_format.ljust(4)))
        if self.pixel_format in MONO_FORMATS:
            cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        self.cap = cap
        self.status.state = "running"
        return True

    def frames(self, buffer_for: BufferFor | None = None):
        """Captured frames; while reconnecting, None every HEARTBEAT_S so the caller can report."""
        index, failures, raw = self.first_index, 0, None   # raw: the last read's (shape, dtype), as the driver gives it
        while not self.should_stop():
            out = buffer_for(index, *raw) if buffer_for and raw else None
            ok, frame = self.cap.read(out) if self.cap is not None else (False, None)
            if ok and frame is not None:
                failures = 0
                raw = (frame.shape, frame.dtype)
                yield Captured(index, unpack_raw(frame, self.width, self.height), time.monotonic_ns())
                index += 1
                continue
            yield from self._reconnect(failures)
            failures += 1
        self.status.state = "ended"

    def _reconnect(self, attempt: int):
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        self.status.state = "reconnecting"
        self.status.note = f"{self.device}: camera lost; reconnecting (attempt {attempt + 1})"
        wait_until = time.monotonic() + BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        while time.monotonic() < wait_until and not self.should_stop():
            time.sleep(min(HEARTBEAT_S, max(0.0, wait_until - time.monotonic())))
            yield None
        if Path(self.device).exists() and self._open():
            self.status.reconnects += 1
            self.status.note = f"{self.device}: reconnected"

    def close(self):
        if self.cap is not None:
            self.cap.release()


def unpack_raw(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """With CONVERT_RGB off, OpenCV may hand back the driver's buffer flat (1×N bytes): give it its
    image shape (Y16 as uint16)."""
    if frame.ndim == 2 and frame.shape[0] == 1 and width and height:
        if frame.size == width * height * 2:
            return frame.view(np.uint16).reshape(height, width)
        if frame.size == width * height:
            return frame.reshape(height, width)
    return frame


def is_camera(spec: str) -> bool:
    return spec.startswith("/dev/video") or spec.isdigit()


def open_source(spec: str, fast: bool = False, skip: int = 0, pixel_format: str = "auto",
                fps: float = DEFAULT_FPS, should_stop=lambda: False):
    """`/dev/videoN` (or N) → camera; a folder → images; anything else → a video file.
    skip: frames already sent by a capture that crashed (files resume after them; a camera numbers on)."""
    if not spec.strip():
        raise SourceError("--source is empty: give a video file, a folder of frames or a camera (/dev/videoN or N)")
    if is_camera(spec):
        return CameraSource(f"/dev/video{spec}" if spec.isdigit() else spec, pixel_format, should_stop,
                            first_index=skip)
    if Path(spec).is_dir():
        return FolderSource(spec, fast, skip, fps, should_stop)
    return VideoSource(spec, fast, skip, should_stop)
