"""The overlay for --save-video / --display: the frame with box and landmarks, the driver monitor's
eye state, gaze ray and events in progress, and a side panel with the frontal render, its
translation, the probability bars with their values, the smoothed and the frame's own label, the
frame's index and time, and the recording's ground truth where it has one (green: the smoothed label
agrees). The video plays at the source's own rate (from the frames' media times)."""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from face.eyes import LEFT_EYE, RIGHT_EYE
from face.imageio import to_bgr8
from pipeline.messages import Emotion
from pipeline.truth import NO_FACE

PANEL_WIDTH = 300
TILE = 140
GREEN, WHITE, GREY, AMBER, RED = (80, 220, 80), (240, 240, 240), (120, 120, 120), (0, 190, 255), (60, 60, 230)
IRISES = (LEFT_EYE["iris"], RIGHT_EYE["iris"])   # FaceMesh's iris centres, as face/eyes.py reads them
GAZE_RAY = 80         # pixels: the length of a gaze ray pointing straight into the image plane's side


def draw(arrays: dict, message: Emotion, classes, truth=None) -> np.ndarray:
    """truth: the recording's ground truth for the frame (a class index, NO_FACE), when it has one."""
    frame = to_bgr8(arrays["frame"]).copy()
    height = max(frame.shape[0], 2 * TILE + 30 + 22 * len(classes) + 132)   # room for the four caption lines
    canvas = np.zeros((height, frame.shape[1] + PANEL_WIDTH, 3), np.uint8)
    if message.face:
        x0, y0, x1, y1 = (int(round(v)) for v in message.face.box)
        cv2.rectangle(frame, (x0, y0), (x1, y1), GREEN, 2)
        for x, y in np.asarray(arrays.get("landmarks", np.zeros((0, 2))))[::4]:
            cv2.circle(frame, (int(x), int(y)), 1, AMBER, -1)
    if message.driver is not None:
        draw_driver(frame, message.driver, arrays.get("landmarks"))
    canvas[:frame.shape[0], :frame.shape[1]] = frame
    left = frame.shape[1] + 10
    for row, (name, title) in enumerate((("frontal", "frontal render"), ("translated", "UIT translation"))):
        top = 10 + row * (TILE + 10)
        cv2.putText(canvas, title, (left + TILE + 8, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1)
        if name in arrays:
            canvas[top:top + TILE, left:left + TILE] = cv2.resize(to_bgr8(arrays[name]), (TILE, TILE))
        else:
            cv2.rectangle(canvas, (left, top), (left + TILE, top + TILE), GREY, 1)
    top = 20 + 2 * (TILE + 10)
    probs = message.probs or {}
    for i, name in enumerate(classes):
        y = top + i * 22
        p = float(probs.get(name, 0.0))
        color = GREEN if name == message.label else GREY
        cv2.rectangle(canvas, (left + 90, y), (left + 90 + int(p * (PANEL_WIDTH - 110)), y + 14), color, -1)
        cv2.putText(canvas, name, (left, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.42, WHITE, 1)
        if probs:
            cv2.putText(canvas, f"{p:.2f}", (left + PANEL_WIDTH - 48, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1)
    bottom = top + 22 * len(classes)
    smoothed = message.smoothed_label or ("no face" if not message.valid else "-")
    cv2.putText(canvas, smoothed, (left, bottom + 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, AMBER, 2)
    cv2.putText(canvas, f"this frame: {message.label or message.reason or '-'}", (left, bottom + 50),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1)
    seconds = (message.t_media_ns if message.t_media_ns is not None else message.t_capture_ns) / 1e9
    cv2.putText(canvas, f"frame {message.frame_id}  t {seconds:.2f} s", (left, bottom + 72),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, GREY, 1)
    if truth is not None:
        expected = "no face" if truth == NO_FACE else classes[truth]
        colour = GREEN if expected == smoothed else RED
        cv2.putText(canvas, f"truth: {expected}", (left, bottom + 94), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
    return canvas


def draw_driver(frame: np.ndarray, driver, landmarks):
    """On the frame: each eye's iris ringed green when open, red when closed; the gaze ray from
    between the eyes (green on the road, red off it); the events in progress and the eye figures."""
    eyes = driver.eyes
    closed = eyes is not None and (eyes.closed_prob or 0.0) >= 0.5
    if eyes is not None and landmarks is not None and len(landmarks) > max(IRISES):
        centres = np.asarray(landmarks, dtype=np.float64)[list(IRISES)]
        for centre in centres:
            cv2.circle(frame, tuple(int(v) for v in centre), 6, RED if closed else GREEN, 2)
        yaw, pitch = eyes.camera_gaze_yaw, eyes.camera_gaze_pitch
        if yaw is not None and pitch is not None:
            start = centres.mean(axis=0)
            # The direction's image-plane part: yaw > 0 towards the image's right, pitch > 0 down.
            step = GAZE_RAY * np.array([np.sin(np.radians(yaw)) * np.cos(np.radians(pitch)), np.sin(np.radians(pitch))])
            end = start + step
            cv2.arrowedLine(frame, tuple(int(v) for v in start), tuple(int(v) for v in end),
                            GREEN if driver.on_road else RED, 2, tipLength=0.2)
    lines = [(f"{driver.state}" + (f" {driver.calibration:.0%}" if driver.state == "calibrating" else ""), WHITE)]
    if eyes is not None:
        lines.append((f"eyes {eyes.openness_left:.2f}/{eyes.openness_right:.2f}"
                      + (f"  closed p {eyes.closed_prob:.2f}" if eyes.closed_prob is not None else ""),
                      RED if closed else WHITE))
    if driver.on_road is not None:
        lines.append(("on road" if driver.on_road else f"off road {driver.off_road_s:.1f} s", GREEN if driver.on_road else RED))
    if driver.perclos is not None:
        lines.append((f"PERCLOS {driver.perclos:.0%}", WHITE))
    lines += [(f"! {kind.replace('_', ' ')}", RED) for kind in driver.events]
    for row, (text, colour) in enumerate(lines):
        cv2.putText(frame, text, (10, 22 + 20 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 2 if colour == RED else 1)


class H264File:
    """An H.264 MP4 (yuv420p, faststart) that browsers and every player show, through PyAV's libx264:
    OpenCV's own FFmpeg has no H.264 encoder, and its mp4v plays in no browser. `ultrafast` keeps the
    encoder from slowing the stage that draws the overlay."""

    def __init__(self, path: str, fps: float, shape):
        import av

        self.container = av.open(path, "w", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.height, self.width = (d + d % 2 for d in shape[:2])   # yuv420p needs even sides
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.options = {"preset": "ultrafast", "crf": "23"}

    def write(self, image: np.ndarray):
        import av

        if image.shape[:2] != (self.height, self.width):
            image = cv2.copyMakeBorder(image, 0, self.height - image.shape[0], 0, self.width - image.shape[1],
                                       cv2.BORDER_CONSTANT)
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
            self.container.mux(packet)

    def release(self):
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class OverlayWriter:
    """Writes overlay frames to a video (H.264 MP4) and/or shows them in a window. The video's rate is
    the source's, from the first two frames' media times (a folder replayed at 10 fps plays at 10)."""

    def __init__(self, path: str | None, display: bool, classes, fps: float = 30.0):
        self.path, self.display, self.classes, self.fps = path, display, classes, fps
        self.writer = None
        self.pending = None   # (image, media time) of the first frame, until the second gives the rate

    def write(self, arrays: dict, message: Emotion, truth=None):
        if "frame" not in arrays:
            return
        image = draw(arrays, message, self.classes, truth)
        if self.path:
            self._record(image, message.t_media_ns)
        if self.display:
            cv2.imshow("exprada", image)
            cv2.waitKey(1)

    def _record(self, image, t_media_ns):
        if self.writer is None and self.pending is None:
            self.pending = (image, t_media_ns)
            return
        if self.writer is None:
            first, t_first = self.pending
            if t_first is not None and t_media_ns is not None and t_media_ns > t_first:
                self.fps = 1e9 / (t_media_ns - t_first)
            self._open(first.shape)
            self.writer.write(first)
            self.pending = None
        self.writer.write(image)

    def _open(self, shape):
        try:
            self.writer = H264File(self.path, self.fps, shape)
        except (OSError, ValueError) as error:
            raise OSError(f"{self.path}: cannot write the overlay video ({error})") from None

    def close(self):
        if self.pending is not None:   # a run of one frame
            self._open(self.pending[0].shape)
            self.writer.write(self.pending[0])
        if self.writer is not None:
            self.writer.release()
        if self.display:
            cv2.destroyAllWindows()
