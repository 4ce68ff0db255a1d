"""The per-frame work of each transform stage (pipeline/stages.py), free of sockets:
(FrameHeader, arrays) → (FrameHeader, arrays).

The same steps run in stage processes (one step each, or all of them: pipeline/stages.py), in
--single-process threads and in the sequential loop the benchmark compares against. Perception only
measures (probabilities); pipeline/decide.py decides.
"""
from __future__ import annotations

import time

import numpy as np

from engines.chain import logits, softmax, translate
from face.imageio import from_network
from pipeline.config import IDENTITY, PipelineConfig
from pipeline.fusion import PATHS, publish_probs
from pipeline.messages import Eyes, Face, FrameHeader


def load_engine(path, config: PipelineConfig):
    import engines

    options = {"threads": config.threads} if config.engine == "onnxruntime" else {}
    engine = engines.load(path, backend=config.engine, **options)
    engine.warmup(runs=2)
    return engine


class FaceStep:
    """Detect, fit, render frontally; an invalid header (with the reason) when there is no face.
    Header out: the face (box, pose and its uncertainty), the eyes, the identity (for decide's driver
    monitor). Arrays out: `frontal`, `side_map`, and `crop` (the aligned frame) when the crop path is
    classified."""

    name = "face"

    def __init__(self, config: PipelineConfig):
        import face

        self.stage = face.FaceStage(size=config.image_size, video=True)
        self.overlay = config.overlay
        self.crop = config.paths[PATHS.index("crop")]
        model = self.stage.model
        self.identity_mean, self.identity_std = model.identity_mean, np.maximum(model.identity_std, 1e-6)

    def __call__(self, header: FrameHeader, arrays):
        frame = arrays["frame"]
        result = self.stage(frame)
        out = {}
        if not result:
            header.invalidate(result.reason)
        else:
            header.face = face_message(result)
            header.eyes = eyes_message(result.eyes)
            header.identity = _rounded((result.identity_weights - self.identity_mean) / self.identity_std, 3)
            out = {"frontal": result.frontal, "side_map": result.side_map}
            if self.crop:
                out["crop"] = result.crop
            if self.overlay:
                out["landmarks"] = np.asarray(result.landmarks, dtype=np.float32)
        if self.overlay:
            out["frame"] = frame
        return header, out

    def reset(self):
        """A new drive: forget the tracked face and the pooled identity."""
        self.stage.reset()

    def close(self):
        self.stage.close()


def face_message(result) -> Face:
    yaw_std, pitch_std, roll_std = (round(float(v), 2) for v in result.pose_std)
    return Face(box=[round(float(v), 1) for v in result.box], yaw=round(float(result.yaw), 2),
                pitch=round(float(result.pitch), 2), roll=round(float(result.roll), 2),
                fit_residual=round(float(result.fit_residual), 4), yaw_std=yaw_std, pitch_std=pitch_std,
                roll_std=roll_std)


def eyes_message(state) -> Eyes | None:
    """face.eyes.EyeState → the message's Eyes (angles to 0.1°, openness to 0.001)."""
    if state is None:
        return None

    def angle(value):
        return None if value is None else round(float(value), 1)

    return Eyes(openness_left=round(state.openness_left, 4), openness_right=round(state.openness_right, 4),
                left_visible=state.left_visible, right_visible=state.right_visible,
                gaze_yaw=angle(state.gaze_yaw), gaze_pitch=angle(state.gaze_pitch),
                camera_gaze_yaw=angle(state.camera_gaze_yaw), camera_gaze_pitch=angle(state.camera_gaze_pitch))


class TranslateStep:
    """UIT generator: frontal render + side map → the source-domain image the classifier knows.
    Every other array (`frontal`, `crop`, the overlay's) passes through; the side map stops here."""

    name = "translate"

    def __init__(self, config: PipelineConfig):
        # --generator identity: no model, the render passes as its own translation (a baseline)
        self.engine = None if config.generator == IDENTITY else load_engine(config.generator, config)

    def __call__(self, header: FrameHeader, arrays):
        if not header.valid:
            return header, arrays
        out = {k: v for k, v in arrays.items() if k != "side_map"}
        if self.engine is None:
            out["translated"] = arrays["frontal"]
            return header, out
        translated = translate(self.engine, arrays["frontal"][None], arrays["side_map"][None])
        out["translated"] = from_network(translated[0])
        return header, out

    def close(self):
        pass


IMAGES = {"translated": "translated", "render": "frontal", "crop": "crop"}   # each path's image in the arrays


class ClassifyStep:
    """Classifier on up to three images of the face — the translation, the untranslated frontal
    render, the aligned crop (one batch when the engine takes a dynamic batch, else one by one) —,
    then the published probabilities (pipeline/fusion.py).

    Header out: `paths` = {path: probabilities} for each path classified (what the mode pools, all
    three with `all_paths`), `probs` = the published choice (`publish_mode`: pose | fusion |
    translated | render | crop; pose pools by the face's yaw), `published_from` = the mode."""

    name = "classify"

    def __init__(self, config: PipelineConfig):
        self.engine = load_engine(config.classifier, config)
        self.overlay = config.overlay
        self.mode, self.weight, self.crop_yaw = config.publish_mode, config.fusion_weight, config.crop_yaw
        self.paths = [path for path, classified in zip(PATHS, config.paths) if classified]
        self.classes = config.classes
        self.batched = self.engine.inputs[0].shape[0] is None   # a dynamic batch takes every image at once

    def __call__(self, header: FrameHeader, arrays):
        if not header.valid:
            return header, (arrays if self.overlay else {})
        missing = [IMAGES[path] for path in self.paths if IMAGES[path] not in arrays]
        if missing:
            raise ValueError(f"classify needs the {', '.join(missing)} image(s); the frame carries "
                             f"{', '.join(sorted(arrays)) or 'none'}")
        images = np.stack([arrays[IMAGES[path]] for path in self.paths])
        scores = logits(self.engine, images, batch=None if self.batched else 1)
        if scores.shape[-1] != len(self.classes):
            raise ValueError(f"classifier {self.engine.path}: {scores.shape[-1]} logits, metadata names "
                             f"{len(self.classes)} classes")
        probs = dict(zip(self.paths, softmax(scores)))
        yaw = header.face.yaw if self.mode == "pose" and header.face else None
        header.paths = {path: _rounded(p) for path, p in probs.items()}
        header.probs = _rounded(publish_probs(probs.get("translated"), probs.get("render"), self.mode,
                                              self.weight, p_crop=probs.get("crop"), yaw=yaw,
                                              crop_yaw=self.crop_yaw))
        header.published_from = self.mode
        return header, (arrays if self.overlay else {})

    def close(self):
        pass


STEPS = (FaceStep, TranslateStep, ClassifyStep)    # in the order a frame goes through them


def run_steps(steps, header: FrameHeader, arrays) -> tuple[FrameHeader, dict, bool]:
    """A frame through `steps` in order, each one's time stamped under its name. A step that raises
    fails the frame with that step's name and reason and the rest are skipped: a bad frame is
    published as invalid and must never take a stage down. Returns header, arrays, and whether a
    step failed."""
    for step in steps:
        started = time.monotonic_ns()
        try:
            header, arrays = step(header, arrays)
        except Exception as error:
            header.fail(step.name, error).stamp(step.name, started, time.monotonic_ns())
            return header, {}, True
        header.stamp(step.name, started, time.monotonic_ns())
    return header, arrays, False


def _rounded(values, digits: int = 5) -> list[float]:
    return [round(float(v), digits) for v in values]

