"""The per-frame work of each perception stage, free of sockets: (header, arrays) → (header, arrays).

The same steps run in stage processes, in --single-process threads and in the sequential loop the
benchmark compares against. Perception only measures (probabilities); pipeline/decide.py decides.
"""
from __future__ import annotations

import numpy as np

from face.imageio import from_network, to_network
from pipeline.config import PipelineConfig
from pipeline.fusion import PATHS, publish_probs


def load_engine(path, config: PipelineConfig):
    import engines

    options = {"threads": config.threads} if config.engine == "onnxruntime" else {}
    engine = engines.load(path, backend=config.engine, **options)
    engine.warmup(runs=2)
    return engine


class FaceStep:
    """Detect, fit, render frontally; an invalid header (with the reason) when there is no face.
    Arrays out: `frontal`, `side_map`, and `crop` (the aligned frame) when the crop path is classified."""

    def __init__(self, config: PipelineConfig):
        import face

        self.stage = face.FaceStage(size=config.image_size, video=True)
        self.overlay = config.overlay
        self.crop = config.paths[PATHS.index("crop")]

    def __call__(self, header, arrays):
        frame = arrays["frame"]
        result = self.stage(frame)
        out = {}
        if not result:
            header["valid"], header["reason"] = False, result.reason
        else:
            header["face"] = {"box": [round(float(v), 1) for v in result.box], "yaw": round(float(result.yaw), 2),
                              "pitch": round(float(result.pitch), 2), "roll": round(float(result.roll), 2),
                              "fit_residual": round(float(result.fit_residual), 4)}
            out = {"frontal": result.frontal, "side_map": result.side_map}
            if self.crop:
                out["crop"] = result.crop
            if self.overlay:
                out["landmarks"] = np.asarray(result.landmarks, dtype=np.float32)
        if self.overlay:
            out["frame"] = frame
        return header, out

    def close(self):
        self.stage.close()


class TranslateStep:
    """UIT generator: frontal render + side map → the source-domain image the classifier knows.
    Every other array (`frontal`, `crop`, the overlay's) passes through; the side map stops here."""

    def __init__(self, config: PipelineConfig):
        self.engine = load_engine(config.generator, config)

    def __call__(self, header, arrays):
        if not header["valid"]:
            return header, arrays
        import engines

        outputs = self.engine.run({"image": to_network(arrays["frontal"])[None],
                                   "side_map": to_network(arrays["side_map"])[None]})
        engines.check_finite(outputs, f"generator {self.engine.path}")
        out = {k: v for k, v in arrays.items() if k != "side_map"}
        out["translated"] = from_network(outputs["translated"][0])
        return header, out

    def close(self):
        pass


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


IMAGES = {"translated": "translated", "render": "frontal", "crop": "crop"}   # each path's image in the arrays


class ClassifyStep:
    """Classifier on up to three images of the face — the translation, the untranslated frontal
    render, the aligned crop (one batch when the engine takes a dynamic batch, else one by one) —,
    then the published probabilities (pipeline/fusion.py).

    Header out: `probs` = the published choice (`publish_mode`: pose | fusion | translated | render
    | crop; pose pools by `header["face"]["yaw"]`), `probs_translated` / `probs_render` /
    `probs_crop` = each path that was classified (what the mode pools, all three with `baseline`),
    `published_from` = the mode."""

    def __init__(self, config: PipelineConfig):
        self.engine = load_engine(config.classifier, config)
        self.overlay = config.overlay
        self.mode, self.weight, self.crop_yaw = config.publish_mode, config.fusion_weight, config.crop_yaw
        self.paths = [path for path, classified in zip(PATHS, config.paths) if classified]
        self.classes = config.classes
        self.batched = self.engine.inputs[0].shape[0] is None   # a dynamic batch takes every image at once

    def __call__(self, header, arrays):
        if not header["valid"]:
            return header, (arrays if self.overlay else {})
        import engines

        missing = [IMAGES[path] for path in self.paths if IMAGES[path] not in arrays]
        if missing:
            raise ValueError(f"classify needs the {', '.join(missing)} image(s); the frame carries "
                             f"{', '.join(sorted(arrays)) or 'none'}")
        images = [arrays[IMAGES[path]] for path in self.paths]
        if self.batched:
            logits = self._logits(np.stack(images))
        else:
            logits = np.concatenate([self._logits(image[None]) for image in images])
        if logits.shape[-1] != len(self.classes):
            raise ValueError(f"classifier {self.engine.path}: {logits.shape[-1]} logits, metadata names "
                             f"{len(self.classes)} classes")
        engines.check_finite({"logits": logits}, f"classifier {self.engine.path}")
        probs = dict(zip(self.paths, softmax(logits.astype(np.float64))))
        yaw = (header.get("face") or {}).get("yaw") if self.mode == "pose" else None
        header["probs"] = _rounded(publish_probs(probs.get("translated"), probs.get("render"), self.mode,
                                                 self.weight, p_crop=probs.get("crop"), yaw=yaw,
                                                 crop_yaw=self.crop_yaw))
        header["published_from"] = self.mode
        for path, p in probs.items():
            header[f"probs_{path}"] = _rounded(p)
        return header, (arrays if self.overlay else {})

    def _logits(self, images: np.ndarray) -> np.ndarray:
        return self.engine.run({"image": to_network(images)})["logits"]

    def close(self):
        pass


def _rounded(probs) -> list[float]:
    return [round(float(p), 5) for p in probs]


STEPS = {"face": FaceStep, "translate": TranslateStep, "classify": ClassifyStep}
