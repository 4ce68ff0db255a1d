"""Test material written at test time: tiny ONNX models with the contract's tensor names (real
ONNX Runtime sessions), and short driver clips encoded with OpenCV from an installed photo."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from face.expressions import EXPRESSIONS

HAPPY, SAD = EXPRESSIONS.index("happiness"), EXPRESSIONS.index("sadness")


def _metadata(model, kind, size):
    for key, value in {"exprada.kind": kind, "exprada.classes": json.dumps(list(EXPRESSIONS)),
                       "exprada.image_size": str(size), "exprada.normalization": "x/127.5-1"}.items():
        model.metadata_props.add(key=key, value=value)


def _save(graph, path, kind, size):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests")
    model.ir_version = 8
    _metadata(model, kind, size)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def _image_input(name, size):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, size, size])


def identity_generator(path, size=64):
    """UIT generator stand-in: translated = image, side_map_out = side_map."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["translated"]),
         helper.make_node("Identity", ["side_map"], ["side_map_out"])],
        "identity_generator", [_image_input("image", size), _image_input("side_map", size)],
        [_image_input("translated", size), _image_input("side_map_out", size)])
    return _save(graph, path, "uit_generator", size)


def dimming_generator(path, gain: float, size=64):
    """A UIT generator stand-in that hurts: the translation is the render dimmed towards black,
    (image + 1)·gain − 1 in network units, side map as is. With the brightness classifier, a gain
    well below 1 turns bright renders "sad" and leaves dark ones "sad"."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["image", "gain"], ["scaled"]),
         helper.make_node("Add", ["scaled", "offset"], ["translated"]),
         helper.make_node("Identity", ["side_map"], ["side_map_out"])],
        "dimming_generator", [_image_input("image", size), _image_input("side_map", size)],
        [_image_input("translated", size), _image_input("side_map_out", size)],
        initializer=[numpy_helper.from_array(np.array(gain, np.float32), "gain"),
                     numpy_helper.from_array(np.array(gain - 1, np.float32), "offset")])
    return _save(graph, path, "uit_generator", size)


def brightness_classifier(path, threshold: float, size=64):
    """A classifier that says "happiness" for a render brighter than `threshold` (mean over the
    image in network units) and "sadness" for a darker one: logits = m·w + b, m the mean."""
    w = np.full((1, len(EXPRESSIONS)), 0.0, np.float32)
    b = np.full(len(EXPRESSIONS), -50.0, np.float32)
    w[0, HAPPY], b[HAPPY] = 40.0, -40.0 * threshold
    w[0, SAD], b[SAD] = -40.0, 40.0 * threshold
    nodes = [helper.make_node("ReduceMean", ["image"], ["m4"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Reshape", ["m4", "shape"], ["embedding"]),
             helper.make_node("MatMul", ["embedding", "w"], ["wm"]),
             helper.make_node("Add", ["wm", "b"], ["logits"])]
    inits = [numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    graph = helper.make_graph(nodes, "brightness_classifier", [_image_input("image", size)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 7]),
                               helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1])],
                              initializer=inits)
    return _save(graph, path, "classifier", size)


def driver_photo() -> np.ndarray:
    """A grey (NIR-like) 640×480 frame with a real face: skimage's astronaut, installed with scikit-image."""
    from skimage import data

    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    face = cv2.resize(grey, (400, 400))
    frame = np.full((480, 640), 20, np.uint8)
    frame[40:440, 120:520] = face
    return frame


def drive_frames(plan):
    """plan: list of "bright" | "dark" | "empty" per frame → (frames, ground-truth entries)."""
    photo = driver_photo().astype(np.float32)
    frames, truth = [], []
    for i, kind in enumerate(plan):
        shifted = np.roll(photo, (i % 5) - 2, axis=1)  # a little head motion
        if kind == "empty":
            frame = np.full_like(photo, 20)
            truth.append({"frame": i, "face": False})
        else:
            gain = 1.0 if kind == "bright" else 0.55
            frame = shifted * gain
            truth.append({"frame": i, "expression": EXPRESSIONS[HAPPY if kind == "bright" else SAD]})
        frames.append(cv2.cvtColor(frame.clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    return frames, truth


def write_clip(path, frames, truth=None, fps=30.0, fourcc="mp4v"):
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    if truth is not None:
        path.with_suffix(".json").write_text(json.dumps({"fps": fps, "frames": truth}))
    return path
