"""Dense face landmarks: mediapipe FaceMesh (478 refined points), tracking on streams, static on images.

The driver is the largest face in the frame. Points are returned in frame pixels: x, y, and z
(mediapipe's relative depth, nearer is smaller) scaled like x.

On images (static mode) FaceMesh looks for two faces and the larger wins. On streams it tracks one
face, which saves its detector on every frame (≈3 ms here); every `check_every` frames (30: once a
second at 30 fps) the full-range detector checks that no clearly larger face (a driver who just sat
down behind a passenger's face) is being missed, and if there is one the stage switches to it.

FaceMesh's own detector is short-range: it misses faces under ~15 % of the frame width (a driver
seen by a wide cabin camera). On a miss, the full-range face detector finds the face, and FaceMesh
runs on a square crop around it; while the face stays small, following frames crop around the
previous landmarks directly.

mediapipe's C++ logs (absl, TFLite) write to file descriptor 2 directly, past Python, and neither
GLOG_minloglevel nor TF_CPP_MIN_LOG_LEVEL reaches them. They say the same few lines whenever the
graphs start and once per process on the first face (`CHATTER`): while those can come, fd 2 is
caught and everything else written meanwhile is passed on; after the first face it is left alone.
With EXPRADA_NATIVE_LOGS=1 in the environment (run_pipeline.py --native-logs) nothing is filtered.
"""
import contextlib
import os
import sys
import tempfile
import threading

import cv2
import numpy as np

NUM_LANDMARKS = 478
# The inner lip contour, around the mouth's opening (FaceMesh's canonical mesh spans the opening with
# triangles whose every corner is on it), and its upper half.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
UPPER_INNER_LIPS = (191, 80, 81, 82, 13, 312, 311, 310, 415)
CROP_SIDE = 256      # px: the crop FaceMesh sees for small faces
CROP_MARGIN = 2.0    # crop side / face size
CHATTER = (b"Created TensorFlow Lite XNNPACK delegate", b"before absl::InitializeLog() is called",
           b"inference_feedback_manager.cc", b"landmark_projection_calculator.cc")
_fd2_lock = threading.Lock()   # one redirection of fd 2 at a time (threads of --single-process)
_first_face_seen = False       # in this process: mediapipe has said its first-face line


NATIVE_LOGS = "EXPRADA_NATIVE_LOGS"   # set (to anything but 0): mediapipe's own lines are left alone


@contextlib.contextmanager
def _without_chatter():
    """Run the block with fd 2 caught in a temporary file, then write out what it caught but CHATTER."""
    if os.environ.get(NATIVE_LOGS, "0") != "0":
        yield
        return
    with _fd2_lock, tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught if not any(words in line for words in CHATTER)]
            if kept:
                with open(2, "wb", closefd=False) as stderr:
                    stderr.writelines(kept)


class LandmarkDetector:
    def __init__(self, video: bool = True, max_faces: int | None = None, min_confidence: float = 0.5,
                 check_every: int = 30):
        from mediapipe.python.solutions import face_detection, face_mesh  # heavy: only when used

        self.video = video
        self.check_every = check_every
        self._frames = 0
        max_faces = (1 if video else 2) if max_faces is None else max_faces
        options = dict(refine_landmarks=True, min_detection_confidence=min_confidence,
                       min_tracking_confidence=min_confidence)
        with _without_chatter():
            self._mesh = face_mesh.FaceMesh(static_image_mode=not video, max_num_faces=max_faces, **options)
            self._crop_mesh = face_mesh.FaceMesh(static_image_mode=not video, max_num_faces=1, **options)
            self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
            # The graphs open their models on their own threads; one blank frame waits for that.
            blank = np.zeros((64, 64, 3), np.uint8)
            for graph in (self._mesh, self._crop_mesh, self._detector):
                graph.process(blank)
        self._roi = None  # (x0, y0, side) of the last small face, video mode only
        self._tracked = None  # FaceMesh's own face in the last frame

    def __call__(self, bgr: np.ndarray):
        """(478×3 float32 landmarks of the largest face, number of faces found); (None, 0) if none."""
        global _first_face_seen
        if _first_face_seen:
            return self._landmarks(bgr)
        with _without_chatter():
            points, count = self._landmarks(bgr)
        _first_face_seen = _first_face_seen or points is not None
        return points, count

    def _landmarks(self, bgr):
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._frames += 1
        if self.video and self._tracked is not None and self._frames % self.check_every == 0:
            self._roi = self._larger_face(rgb) or self._roi
        points, count = self._find(rgb)
        if points is not None and _upside_down(points):
            # FaceMesh's tracker carries the face's rotation from frame to frame; after a head turned
            # past what it follows it can lock on upside down and stay so (seen on synthetic drives:
            # roll read as 180° for the rest of the drive). A driver's face is never upside down:
            # forget the track and find the face afresh.
            self._forget_track()
            points, count = self._find(rgb)
            if points is not None and _upside_down(points):
                self._forget_track()
                points, count = None, 0
        self._tracked = points
        return points, count

    def reset(self):
        """A new video (another drive): nothing of the last one's track carries over."""
        self._forget_track()
        self._frames = 0

    def _forget_track(self):
        blank = np.zeros((64, 64, 3), np.uint8)   # a frame without a face ends FaceMesh's own track
        for graph in (self._mesh, self._crop_mesh):
            graph.process(blank)
        self._roi = self._tracked = None

    def _find(self, rgb):
        if self._roi is not None:
            points = self._on_crop(rgb, self._roi)
            if points is not None:
                self._roi = self._roi_around(points) if self.video else None
                return points, 1
            self._roi = None
        points, count = _largest(self._mesh.process(rgb), rgb.shape)
        if points is not None:
            return points, count
        roi, count = self._detect(rgb)
        if roi is None:
            return None, 0
        points = self._on_crop(rgb, roi)
        if points is None:
            return None, 0
        self._roi = self._roi_around(points) if self.video else None
        return points, count

    def _detect(self, rgb):
        """Square crop (x0, y0, side) around the largest face the full-range detector finds."""
        detections = self._detector.process(rgb).detections or []
        if not detections:
            return None, 0
        h, w = rgb.shape[:2]
        boxes = [d.location_data.relative_bounding_box for d in detections]
        box = max(boxes, key=lambda b: b.width * b.height)
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        side = CROP_MARGIN * max(box.width * w, box.height * h)
        return (cx - side / 2, cy - side / 2, side), len(detections)

    def _larger_face(self, rgb):
        """A crop around a face clearly larger than the tracked one and apart from it, or None."""
        roi, _ = self._detect(rgb)
        if roi is None:
            return None
        lo, hi = self._tracked[:, :2].min(axis=0), self._tracked[:, :2].max(axis=0)
        tracked_side = float((hi - lo).max())
        x0, y0, side = roi
        centre = np.array([x0 + side / 2, y0 + side / 2])
        apart = not ((lo <= centre) & (centre <= hi)).all()
        return roi if apart and side / CROP_MARGIN > 1.3 * tracked_side else None

    @staticmethod
    def _roi_around(points):
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        centre, side = (lo + hi) / 2, CROP_MARGIN * 0.8 * float((hi - lo).max())
        return centre[0] - side / 2, centre[1] - side / 2, side

    def _on_crop(self, rgb, roi):
        x0, y0, side = roi
        if side < 8:
            return None
        scale = CROP_SIDE / side
        # Affine crop with a constant border: faces at the frame's edge keep their position.
        matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
        crop = cv2.warpAffine(rgb, matrix, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        points, _ = _largest(self._crop_mesh.process(crop), crop.shape)
        if points is None:
            return None
        points = points / scale
        points[:, 0] += x0
        points[:, 1] += y0
        return points

    def close(self):
        self._mesh.close()
        self._crop_mesh.close()
        self._detector.close()


def _upside_down(points) -> bool:
    """The forehead (FaceMesh point 10) below the chin (152): the face rolled past 90°."""
    return bool(points[10, 1] > points[152, 1])


def _largest(result, shape):
    """The largest face of a FaceMesh result in pixels (x, y, z·width), and how many there were."""
    faces = result.multi_face_landmarks or []
    if not faces:
        return None, 0
    height, width = shape[:2]
    best, best_area = None, -1.0
    for face in faces:
        points = landmark_array(face)
        span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
        area = float(span[0] * width * span[1] * height)
        if area > best_area:
            best, best_area = points, area
    return best * np.array([width, height, width], dtype=np.float32), len(faces)


# A NormalizedLandmarkList as FaceMesh serialises it: per landmark, field 1 (length-delimited, 15
# bytes) holding x, y, z as fixed32 floats (fields 1, 2, 3). Read straight from those bytes.
_LANDMARK = np.dtype([("key", "u1"), ("size", "u1"), ("x_key", "u1"), ("x", "<f4"), ("y_key", "u1"),
                      ("y", "<f4"), ("z_key", "u1"), ("z", "<f4")])
_LANDMARK_KEYS = {"key": 0x0A, "size": 15, "x_key": 0x0D, "y_key": 0x15, "z_key": 0x1D}


def landmark_array(face) -> np.ndarray:
    """A FaceMesh face's landmarks as an N×3 float32 array (normalised x, y, z).

    Why by hand: protobuf's Python API has no bulk read of a repeated message, and reading 478 × 3
    attributes one by one costs ~0.2 ms a face here (once or twice a frame); the serialised bytes,
    read as a record array and checked, ~25 µs (benchmarks.face_quality: `landmark_read`). The
    layout is checked byte for byte: a landmark with visibility or presence set, or any other
    encoding, takes the attribute path instead."""
    data = face.SerializeToString()
    count = len(data) // _LANDMARK.itemsize
    if count and len(data) == count * _LANDMARK.itemsize:
        records = np.frombuffer(data, _LANDMARK)
        if all((records[name] == value).all() for name, value in _LANDMARK_KEYS.items()):
            return np.stack([records["x"], records["y"], records["z"]], axis=1)
    return np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32).reshape(-1, 3)
